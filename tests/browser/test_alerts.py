"""Silencing a firing alert from the browser, in English and in Chinese: the alerts page shows the alert as
Alertmanager groups it, "Silence" opens the form with the alert's labels as matchers, the confirmation dialog takes
the reason, and the silences page lists the silence made as the person; the alert then shows as silenced.
Debian's real Alertmanager (tests/plugins/alertmanager.py) holds the alert and the silence."""

import pytest
from playwright.sync_api import expect

from apps.core.models import AuditEvent
from tests.factories import AdminFactory, ClusterFactory
from tests.helpers import confirm_dialog, sign_in_page, unique, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WORDS = {
    "en": {"alerts": "Alerts", "silences": "Silences", "new": "New silence", "firing": "Firing"},
    "zh-hans": {"alerts": "告警", "silences": "静默", "new": "新建静默", "firing": "告警中"},
}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_silence_a_firing_alert_from_its_row_and_see_it_listed(page, screenshot, live_server, alertmanager, language):
    from django.core.cache import cache

    cache.clear()
    cluster = ClusterFactory(name=unique("prod-bj"), alertmanager_url=alertmanager.url)
    namespace = unique("payments")
    alertmanager.post_alert(
        {"alertname": "PaymentsErrorRateHigh", "namespace": namespace, "service": "pay-api", "severity": "critical"},
        {"summary": "8 % of payment requests fail", "description": "pay-api answers HTTP 500 to 8 % of requests."},
    )
    alertmanager.post_alert(
        {"alertname": "PaymentsLatencyHigh", "namespace": namespace, "service": "pay-api", "severity": "warning"},
        {"summary": "p99 latency above 1.2 s"},
    )
    wait_for(lambda: [a["status"]["state"] for a in alertmanager.alerts()] == ["active", "active"])
    admin = AdminFactory()
    sign_in_page(page, admin)
    page.context.add_cookies([{"name": "kubemate_language", "value": language, "url": live_server.url}])
    words, suffix = WORDS[language], "" if language == "en" else "-zh"

    # The dashboard counts what fires, once the card has loaded.
    page.goto("/")
    expect(page.locator("[data-testid=alert-count]")).to_have_attribute("data-critical", "1")
    screenshot(f"alerts-dashboard{suffix}")

    page.goto("/observability/alerts/")
    expect(page.locator("h2.page-title")).to_have_text(words["alerts"])
    row = page.locator("[data-testid=alert-row][data-alert=PaymentsErrorRateHigh]")
    expect(row.locator("[data-testid=alert-state]")).to_have_text(words["firing"])
    expect(row.locator("[data-testid=alert-summary]")).to_have_text("8 % of payment requests fail")
    screenshot(f"alerts{suffix}")

    row.locator("[data-testid=alert-silence]").click()
    expect(page.locator("h2.page-title")).to_have_text(words["new"])
    expect(page.locator("[data-testid=silence-from-alert]")).to_be_visible()
    names = [page.locator(f"[data-testid=matcher-name-{i}]").input_value() for i in range(4)]
    assert names == ["alertname", "namespace", "service", "severity"]
    expect(page.locator("[data-testid=matcher-value-0]")).to_have_value("PaymentsErrorRateHigh")
    # The end is chosen from the durations; "custom" shows the time field only when chosen.
    expect(page.locator("[data-testid=silence-ends-at]")).to_be_hidden()
    page.select_option("[data-testid=silence-duration]", "custom")
    expect(page.locator("[data-testid=silence-ends-at]")).to_be_visible()
    page.select_option("[data-testid=silence-duration]", "4h")
    page.fill("[data-testid=silence-comment]", "INC-2041 payment provider outage, provider is on it")
    page.click("[data-testid=silence-preview-button]")
    expect(page.locator("[data-testid=preview-alert]")).to_have_count(1)
    screenshot(f"silence-form{suffix}")
    page.click("[data-testid=silence-create]")
    confirm_dialog(page, reason="INC-2041")

    expect(page.locator("h2.page-title")).to_have_text(words["silences"])
    listed = page.locator("[data-testid=silence-row][data-state=active]")
    expect(listed).to_have_count(1)
    expect(listed.locator("[data-testid=silence-creator]")).to_have_text(admin.username)
    expect(listed).to_contain_text(cluster.name)
    expect(listed.locator("[data-testid=silence-matcher]").first).to_have_text('alertname="PaymentsErrorRateHigh"')
    screenshot(f"silences{suffix}")
    silence = next(s for s in alertmanager.silences() if s["status"]["state"] == "active")
    assert (silence["createdBy"], silence["comment"]) == (
        admin.username,
        "INC-2041 payment provider outage, provider is on it",
    )
    assert AuditEvent.objects.get(action="observability.silence.create").reason == "INC-2041"

    wait_for(lambda: any(a["status"]["silencedBy"] for a in alertmanager.alerts()))
    page.goto("/observability/alerts/")
    expect(page.locator("[data-testid=alert-row][data-alert=PaymentsErrorRateHigh]")).to_have_attribute(
        "data-state", "suppressed"
    )
    expect(page.locator("[data-testid=alert-silenced]")).to_have_count(1)
    expect(page.locator("[data-testid=alert-row][data-alert=PaymentsLatencyHigh]")).to_have_attribute(
        "data-state", "active"
    )
