"""A shell in a pod from the browser: xterm.js, the terminal service, kwok running the command (issue: the
operator's day, item 9). The password is asked in the confirmation dialog, the output is read off the screen,
and the audit log shows the session's start and end."""

from importlib import import_module

import pytest
from django.conf import settings
from playwright.sync_api import expect

from apps.core.models import AuditEvent
from apps.core.reauth import REAUTH_AT_KEY
from tests.factories import PASSWORD
from tests.helpers import confirm_dialog, sign_in_page, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.sandbox,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def make_password_proof_stale(page) -> None:
    """As if the person signed in long ago: the terminal then asks for the password again."""
    cookie = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = import_module(settings.SESSION_ENGINE).SessionStore(cookie["value"])
    session[REAUTH_AT_KEY] = 0
    session.save()


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_open_a_terminal_in_a_pod_type_a_command_and_read_its_output(
    page, screenshot, live_server, shell_team, terminal_service, inventory_sync, language
):
    inventory_sync(["Pod"])
    # The browser sends the console's session cookie to the terminal service: same host name as the console.
    host = live_server.url.split("//", 1)[1].split(":", 1)[0]
    settings.KUBEMATE_TERMINAL_URL = terminal_service.replace("127.0.0.1", host)
    owner, namespace, pod = shell_team["owner"], shell_team["namespace"], shell_team["pod"]
    sign_in_page(page, owner)
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}])
    make_password_proof_stale(page)

    page.goto(f"/clusters/{shell_team['cluster'].pk}/pods/{namespace}/{pod}/")
    page.click("[data-testid=action-terminal]")
    page.select_option("[data-testid=terminal-shell]", "sh")
    page.click("[data-testid=terminal-open]")
    expect(page.locator("[data-testid=confirm-password]")).to_be_visible()
    suffix = "" if language == "en" else "-zh"
    screenshot(f"terminal-confirm{suffix}")
    confirm_dialog(page, reason="INC-2207 read the config", password=PASSWORD)

    expect(page.locator("[data-testid=terminal-state]")).to_have_attribute("data-state", "open", timeout=20_000)
    page.locator("#terminal").click()
    page.keyboard.type("echo kubemate-$((6*7))")
    page.keyboard.press("Enter")
    expect(page.locator("#terminal .xterm-rows")).to_contain_text("kubemate-42", timeout=20_000)
    screenshot(f"terminal{suffix}")

    page.click("[data-testid=terminal-close]")
    expect(page.locator("[data-testid=terminal-state]")).to_have_attribute("data-state", "ended")
    assert wait_for(lambda: AuditEvent.objects.filter(action="clusters.pod.terminal.end").exists(), timeout=10)
    opened = AuditEvent.objects.get(action="clusters.pod.terminal.open")
    ended = AuditEvent.objects.get(action="clusters.pod.terminal.end")
    assert (opened.actor_name, opened.object_name, opened.reason) == (owner.username, pod, "INC-2207 read the config")
    assert ended.detail["end"] == "closed" and ended.detail["bytes_in"] >= len("echo kubemate-$((6*7))")

    # The audit log page shows the session to someone who may read it.
    page.goto("/accounts/audit/?action=clusters.pod.terminal")
    if owner.is_superuser:
        expect(page.locator("[data-testid=audit-row]")).to_have_count(2)
