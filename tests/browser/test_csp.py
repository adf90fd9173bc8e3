"""Content-Security-Policy in a real browser: the main pages, htmx and ECharts run under the policy with no
violation (issue 11, item 10).

Chromium reports each blocked script, style or connection as a console error naming the Content Security
Policy and as a ``securitypolicyviolation`` event; both are collected on every page.
"""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.clusters.inventory_rows import build_bank, list_url
from tests.factories import AdminFactory
from tests.helpers import sign_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

COLLECT_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_the_main_pages_run_under_the_policy_without_a_violation(page, transactional_db):
    bank = build_bank()
    cluster = bank["cluster"]
    console_errors = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.add_init_script(COLLECT_VIOLATIONS)
    sign_in_page(page, AdminFactory())
    violations = {}

    for url in [
        reverse("dashboard"),
        reverse("clusters:cluster_list"),
        reverse("clusters:cluster_overview", args=[cluster.pk]),
        list_url(cluster, "pods"),
        reverse("releases:release_list"),
        reverse("accounts:audit_list"),
        reverse("accounts:role_list"),
        reverse("core:job_list"),
    ]:
        response = page.goto(url)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        found = page.evaluate("window.__violations")
        if found:
            violations[url] = found

    # The overview's charts were drawn by ECharts (a script the policy must allow) and htmx is loaded.
    page.goto(reverse("clusters:cluster_overview", args=[cluster.pk]))
    expect(page.locator("[data-chart] svg").first).to_be_visible()
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    assert violations == {}
    assert [text for text in console_errors if "Content Security Policy" in text] == []
