"""The audit forwarding page as a platform administrator sees it: one receiver up to date, one failing with the
reason in the reader's language, and the form; in English and Chinese."""

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from apps.compliance.forwarding import services
from apps.compliance.models import SyslogDestination
from apps.core import deferred
from tests.factories import AdminFactory
from tests.helpers import sign_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORDS = {
    "en": {"title": "Audit forwarding", "failing": "not receiving", "ok": "receiving", "error": "could not be reached"},
    "zh-hans": {"title": "审计转发", "failing": "未在接收", "ok": "接收中", "error": "无法连接"},
}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_page_shows_each_receiver_its_lag_and_why_one_fails(page, screenshot, live_server, language):
    words = WORDS[language]
    admin = AdminFactory()
    head = services.head_seq()
    SyslogDestination.objects.create(
        name="qradar", host="siem.bank.example", port=6514, cursor=head, delivered_at=timezone.now()
    )
    SyslogDestination.objects.create(
        name="splunk-dr",
        host="10.20.30.40",
        port=514,
        transport="tcp",
        format="cef",
        cursor=max(head - 12, 0),
        failing_since=timezone.now(),
        last_error=deferred.text(
            deferred.N_("The syslog receiver %(address)s could not be reached: %(error)s"),
            address="10.20.30.40:514",
            error="Connection refused",
        ),
    )
    sign_in_page(page, admin)
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}])

    page.goto("/compliance/siem/")
    expect(page.locator("h2.page-title")).to_have_text(words["title"])
    failing = page.locator("[data-testid=destination-row][data-destination=splunk-dr]")
    expect(failing.locator("[data-testid=destination-failing]")).to_have_text(words["failing"])
    expect(failing.locator("[data-testid=destination-error]")).to_contain_text(words["error"])
    expect(failing.locator("[data-testid=destination-lag]")).to_be_visible()
    ok = page.locator("[data-testid=destination-row][data-destination=qradar]")
    expect(ok.locator("[data-testid=destination-ok]")).to_have_text(words["ok"])
    screenshot(f"compliance-siem-{language}")

    page.click("[data-testid=destination-create]")
    expect(page.locator("[data-testid=destination-form]")).to_be_visible()
    screenshot(f"compliance-siem-form-{language}")


REVIEW_WORDS = {
    "en": {"policies": "Approval policies", "review": "Access review of Team A", "revoke": "Revoke"},
    "zh-hans": {"policies": "审批策略", "review": "Team A 的权限复核", "revoke": "撤销"},
}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_policies_windows_and_an_access_review_as_the_platform_administrator_sees_them(
    page, screenshot, live_server, language
):
    from datetime import time, timedelta

    from apps.accounts.models import Project, Role
    from apps.compliance.models import AccessReview, AccessReviewItem, ApprovalPolicy, ChangeWindow
    from tests.factories import ClusterFactory

    words = REVIEW_WORDS[language]
    admin = AdminFactory()
    project = Project.objects.create(cluster=ClusterFactory(), slug="team-a", name="Team A", namespaces=["team-a"])
    ApprovalPolicy.objects.create(
        name="Production changes", cluster_labels={"env": "prod"}, actions=["releases.deploy", "yaml.edit"]
    )
    ChangeWindow.objects.create(
        name="Weeknights", cluster_labels={"env": "prod"}, weekdays=[0, 1, 2, 3], start_time=time(20), end_time=time(23)
    )
    now = timezone.now()
    ChangeWindow.objects.create(
        name="Year-end freeze", kind="freeze", starts_at=now + timedelta(days=20), ends_at=now + timedelta(days=27)
    )
    review = AccessReview.objects.create(project=project, period="2026-Q4", due_at=now + timedelta(days=14))
    developer = Role.objects.get(slug="developer")
    AccessReviewItem.objects.create(
        review=review,
        subject="wu.lei",
        role=developer.name_en,
        role_zh=developer.name_zh,
        capabilities=developer.capabilities,
        granted_at=now - timedelta(days=200),
        granted_by="admin",
        last_login=now - timedelta(days=3),
        last_used={"releases.deploy": (now - timedelta(days=5)).isoformat()},
    )
    AccessReviewItem.objects.create(
        review=review,
        subject="@team-a-auditors",
        members=["he.min"],
        role="Viewer",
        role_zh="只读用户",
        granted_at=now - timedelta(days=90),
        granted_by="admin",
    )
    sign_in_page(page, admin)
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}])

    page.goto("/compliance/changes/policies/")
    expect(page.locator("h2.page-title")).to_have_text(words["policies"])
    expect(page.locator("[data-testid=window-row]")).to_have_count(2)
    screenshot(f"compliance-policies-{language}")

    page.goto(f"/compliance/access-reviews/{review.pk}/")
    expect(page.locator("h2.page-title")).to_contain_text(words["review"])
    expect(page.locator("[data-testid=review-line]")).to_have_count(2)
    expect(page.locator("[data-testid=review-revoke]").first).to_have_text(words["revoke"])
    screenshot(f"compliance-access-review-{language}")


SSO_WORDS = {
    "en": {"button": "Sign in with Bank SSO", "confirm": "Confirm with Bank SSO"},
    "zh-hans": {"button": "使用 Bank SSO 登录", "confirm": "通过 Bank SSO 确认"},
}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_sign_in_and_confirmation_pages_offer_single_sign_on(page, screenshot, live_server, settings, language):
    from importlib import import_module

    from apps.core.reauth import SSO_AUTH_TIME_KEY
    from kubemate.settings.oidc import oidc_settings

    env = {
        "KUBEMATE_OIDC_ISSUER": "https://sso.bank.example",
        "KUBEMATE_OIDC_CLIENT_ID": "kubemate",
        "KUBEMATE_OIDC_CLIENT_SECRET": "not-used-here",
        "KUBEMATE_OIDC_NAME": "Bank SSO",
    }
    for name, value in oidc_settings(env, settings.AUTHENTICATION_BACKENDS).items():
        setattr(settings, name, value)
    words = SSO_WORDS[language]
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}])

    page.goto("/login/")
    expect(page.locator("[data-testid=login-sso]")).to_have_text(words["button"])
    screenshot(f"sign-in-sso-{language}")

    # A session that came from single sign-on confirms at the provider, not with a password here.
    page.context.clear_cookies()  # signs in through the form, in English, then reads in the language again
    sign_in_page(page, AdminFactory())
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}])
    cookie = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=cookie["value"])
    store[SSO_AUTH_TIME_KEY] = 1.0
    store.save()
    page.goto("/reauth/?next=/accounts/users/")
    expect(page.locator("[data-testid=reauth-sso]")).to_contain_text(words["confirm"])
    expect(page.locator("#id_password")).to_have_count(0)
    screenshot(f"reauth-sso-{language}")
