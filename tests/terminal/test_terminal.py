"""The web terminal against the real sandbox: kwok answers pods/exec by running the shell on this machine
(deploy/sandbox: ClusterExec), so what is typed runs and its output comes back (issue: the operator's day, item 9)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from django.conf import settings
from django.urls import reverse

from apps.core.models import AuditEvent
from apps.terminal.models import TerminalSession
from tests.helpers import login, wait_for

pytestmark = [pytest.mark.sandbox, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
ORIGIN = "http://127.0.0.1:8000"


def run(coroutine):
    """Run a coroutine to its end in a thread of its own (the browser tests leave an event loop in this one)."""
    import threading

    outcome = {}

    def target():
        outcome["value"] = asyncio.run(coroutine)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    return outcome["value"]


def page_url(team) -> str:
    return reverse("terminal:terminal_page", args=[team["cluster"].pk, team["namespace"], team["pod"]])


def open_session(client, team, **post) -> TerminalSession:
    response = client.post(page_url(team), {"container": "web", "shell": "sh", **post})
    assert response.status_code == 200, response.content.decode()[:500]
    assert 'data-testid="terminal"' in response.content.decode(), response.content.decode()[:3000]
    return TerminalSession.objects.filter(user=team["owner"]).latest("created_at")


async def talk(
    url: str, cookie: str, inputs: list[str], *, until: str = "", then: list[str] = (), origin: str = ORIGIN, wait=20
):
    """Connect as a browser would, type ``inputs`` and collect what comes back until ``until`` shows (or the end);
    with ``then``, type those once ``until`` showed and go on to the end."""
    import aiohttp

    shown, end = "", None
    async with (
        aiohttp.ClientSession(cookies={settings.SESSION_COOKIE_NAME: cookie}) as http,
        http.ws_connect(url, headers={"Origin": origin}) as ws,
    ):
        await ws.send_str(json.dumps({"t": "resize", "cols": 100, "rows": 30}))
        for text in inputs:
            await ws.send_str(json.dumps({"t": "in", "d": text}))
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                message = await ws.receive(timeout=max(deadline - time.monotonic(), 0.1))
            except TimeoutError:
                break
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if data["t"] == "out":
                shown += data["d"]
                if until and until in shown:
                    if not then:
                        await ws.close()
                        break
                    for text in then:
                        await ws.send_str(json.dumps({"t": "in", "d": text}))
                    until = ""
            elif data["t"] == "end":
                end = data
    return shown, end


def test_a_shell_runs_what_is_typed_as_the_person_and_the_session_is_audited(client, shell_team, terminal_service):
    login(client, shell_team["owner"], recent_auth=True)
    session = open_session(client, shell_team, reason="INC-2207 check the config file")
    url = f"{terminal_service}/ws/terminal/{session.pk}/"
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value

    # The output is read before the shell is told to exit (a pty closing with its process may drop its last bytes).
    shown, end = run(talk(url, cookie, ["echo kubemate-$((6*7))\r"], until="kubemate-42", then=["exit\r"], wait=20))

    assert "kubemate-42" in shown
    assert end is not None and end["end"] == "exited" and end["sentence"] == "The shell exited."
    assert wait_for(lambda: TerminalSession.objects.get(pk=session.pk).state == "ended", timeout=10)
    session.refresh_from_db()
    assert (session.state, session.end) == ("ended", "exited") and session.bytes_in == len(
        "echo kubemate-$((6*7))\rexit\r"
    )
    assert session.bytes_out >= len("kubemate-42")
    opened = AuditEvent.objects.get(action="clusters.pod.terminal.open")
    ended = AuditEvent.objects.get(action="clusters.pod.terminal.end")
    assert (opened.actor_name, opened.object_name, opened.reason) == (
        shell_team["owner"].username,
        shell_team["pod"],
        "INC-2207 check the config file",
    )
    assert opened.detail["command"] == ["/bin/sh"] and opened.detail["container"] == "web"
    assert ended.detail["end"] == "exited" and ended.detail["bytes_in"] == session.bytes_in
    # The session is claimed once: the same address again is refused.
    assert run(refused(url, cookie)) == 404


async def refused(url: str, cookie: str, origin: str = ORIGIN) -> int:
    import aiohttp

    async with aiohttp.ClientSession(cookies={settings.SESSION_COOKIE_NAME: cookie} if cookie else {}) as http:
        try:
            async with http.ws_connect(url, headers={"Origin": origin}):
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def test_another_origin_another_person_or_no_session_cannot_take_the_terminal(client, shell_team, terminal_service):
    login(client, shell_team["owner"], recent_auth=True)
    session = open_session(client, shell_team)
    url = f"{terminal_service}/ws/terminal/{session.pk}/"
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    from django.test import Client

    stranger = login(Client(), shell_team["viewer"]).cookies[settings.SESSION_COOKIE_NAME].value

    assert run(refused(url, cookie, origin="https://evil.example")) == 403
    assert run(refused(url, "")) == 403
    assert run(refused(url, stranger)) == 404
    session.refresh_from_db()
    assert session.state == "waiting"  # none of them claimed it


def test_a_terminal_left_idle_closes_and_says_why(client, shell_team, terminal_service, settings):
    settings.KUBEMATE_TERMINAL_IDLE_SECONDS = 2
    login(client, shell_team["owner"], recent_auth=True)
    session = open_session(client, shell_team)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value

    _shown, end = run(talk(f"{terminal_service}/ws/terminal/{session.pk}/", cookie, [], wait=15))

    assert end is not None and end["end"] == "idle"
    assert wait_for(lambda: AuditEvent.objects.filter(action="clusters.pod.terminal.end").exists(), timeout=10)
    assert end["sentence"] == "Closed after 1 minute without input."
    assert AuditEvent.objects.get(action="clusters.pod.terminal.end").detail["end"] == "idle"


def test_an_input_over_the_limit_ends_the_session(client, shell_team, terminal_service):
    login(client, shell_team["owner"], recent_auth=True)
    session = open_session(client, shell_team)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value

    _shown, end = run(talk(f"{terminal_service}/ws/terminal/{session.pk}/", cookie, ["x" * (20 * 1024)], wait=15))

    assert wait_for(lambda: TerminalSession.objects.get(pk=session.pk).state == "ended", timeout=10)
    session.refresh_from_db()
    assert session.end == "too_large"
    assert end is None or end["end"] == "too_large"


def test_the_password_is_asked_again_and_a_viewer_has_no_terminal(client, shell_team):
    login(client, shell_team["owner"])  # signed in long ago: the password proof is stale
    response = client.post(page_url(shell_team), {"container": "web", "shell": "sh"})
    assert response.status_code == 302 and reverse("security:reauth") in response["Location"]
    assert not TerminalSession.objects.exists()

    page = client.get(page_url(shell_team)).content.decode()
    assert "data-confirm-password" in page and 'data-testid="terminal-container"' in page

    login(client, shell_team["viewer"], recent_auth=True)
    assert client.get(page_url(shell_team)).status_code == 404
