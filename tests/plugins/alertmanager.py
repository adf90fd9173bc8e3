"""pytest plugin: a real Alertmanager (Debian's /usr/bin/prometheus-alertmanager) mailing an SMTP server run here.

The session fixture ``alertmanager_server`` starts, on free loopback ports:

- an SMTP server in this process (aiosmtpd) that keeps every message it is given in ``mailbox.messages``;
- a webhook receiver (a small HTTP server) that keeps every notification posted to it in ``webhook.posts``;
- Alertmanager with gossip off (``--cluster.listen-address=``), its own storage folder, and a configuration
  (checked with Debian's ``amtool check-config``) whose default route mails the SMTP server and posts to the
  webhook, with one-second group waits so a notification arrives within seconds.

The function fixture ``alertmanager`` hands a test the same server and, at its end, expires the silences and
resolves the alerts the test left, so each test starts from an Alertmanager with nothing active. Tests can post
alerts straight to Alertmanager's API (as Prometheus does), or use ``alerting`` to have the session's Prometheus
(tests/plugins/prometheus.py) evaluate rule files and send what fires to this Alertmanager:

    def test_something(alerting):
        alerting.prometheus.write_rules("mine", RULES)
        alerting.alertmanager.wait_for_alert(lambda a: a["labels"]["alertname"] == "AppDown")
        alerting.alertmanager.mailbox.wait_for(lambda m: "AppDown" in m["Subject"])

``stop()`` and ``start()`` stop Alertmanager mid-test and bring it back on the same port and storage. If the
binaries are missing or Alertmanager does not start, the fixture raises: tests fail, they are never skipped
(``make system-packages`` installs Debian's prometheus-alertmanager with amtool).
"""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.plugins.served import Served, free_port, wait

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
AMTOOL = "/usr/bin/amtool"
# Alerts of this name inhibit the warnings of their namespace (the test of "inhibited shown as such").
INHIBITING_ALERT = "NamespaceOutage"


class Mailbox:
    """An SMTP server in this process (aiosmtpd) that keeps what it receives, as email.message objects."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        self.recipients: list[list[str]] = []
        self._lock = threading.Lock()
        box = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
                with box._lock:
                    box.messages.append(message)
                    box.recipients.append(list(envelope.rcpt_tos))
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.recipients.clear()

    def wait_for(self, predicate, timeout: float = 30) -> email.message.EmailMessage:
        """The first message for which ``predicate(message)`` holds, waiting for it to arrive."""

        def found():
            with self._lock:
                return next((m for m in self.messages if predicate(m)), None)

        return wait(found, timeout, "an email")

    @staticmethod
    def text(message: email.message.EmailMessage) -> str:
        body = message.get_body(preferencelist=("plain", "html"))
        return body.get_content() if body is not None else ""

    def stop(self) -> None:
        self.controller.stop()


class Webhook:
    """Keeps the JSON notifications Alertmanager posts to it."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                hook.posts.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate, timeout: float = 30) -> dict:
        return wait(lambda: next((p for p in list(self.posts) if predicate(p)), None), timeout, "a webhook post")


def _config(mailbox: Mailbox, webhook: Webhook) -> str:
    return f"""
global:
  smtp_smarthost: '127.0.0.1:{mailbox.port}'
  smtp_from: 'alertmanager@bank.example'
  smtp_require_tls: false
  smtp_hello: 'alertmanager.test'
route:
  receiver: ops
  group_by: ['alertname', 'namespace']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 4h
receivers:
  - name: ops
    email_configs:
      - to: 'ops@bank.example'
        send_resolved: true
    webhook_configs:
      - url: '{webhook.url}'
        send_resolved: true
inhibit_rules:
  - source_matchers: ['alertname="{INHIBITING_ALERT}"']
    target_matchers: ['severity="warning"']
    equal: ['namespace']
"""


@dataclass
class Alertmanager(Served):
    name = "Alertmanager"
    log_name = "alertmanager"

    url: str
    port: int
    folder: Path
    mailbox: Mailbox
    webhook: Webhook
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- process ------------------------------------------------------------------------------------------------

    def command(self) -> list[str]:
        return [
            ALERTMANAGER,
            f"--config.file={self.folder / 'alertmanager.yml'}",
            f"--storage.path={self.folder / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
            "--log.level=info",
        ]

    def ready_url(self) -> str:
        return f"{self.url}/-/ready"

    # --- its own API ----------------------------------------------------------------------------------------------

    def api(self, path: str, body=None, method: str | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (http URL built here)
            f"{self.url}/api/v2/{path}",
            data=data,
            method=method or ("POST" if data is not None else "GET"),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            raw = response.read()
        return json.loads(raw) if raw.strip() else None

    def post_alert(self, labels: dict, annotations: dict | None = None, *, minutes: int = 60) -> None:
        """An alert as Prometheus sends one: firing from now for ``minutes`` unless sent again."""
        now = datetime.now(UTC)
        alert = {
            "labels": labels,
            "annotations": annotations or {},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
            "generatorURL": "http://prometheus.test/graph",
        }
        self.api("alerts", [alert])

    def alerts(self) -> list[dict]:
        return self.api("alerts")

    def silences(self) -> list[dict]:
        return self.api("silences")

    def wait_for_alert(self, predicate, timeout: float = 30) -> dict:
        return wait(lambda: next((a for a in self.alerts() if predicate(a)), None), timeout, "an alert")

    def amtool(self, *args: str) -> str:
        """Debian's amtool against this Alertmanager; its standard output."""
        done = subprocess.run(
            [AMTOOL, f"--alertmanager.url={self.url}", *args], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise AssertionError(f"amtool {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def reset(self) -> None:
        """Expire every silence and resolve every alert; forget what was mailed and posted."""
        for silence in self.silences():
            if silence["status"]["state"] != "expired":
                self.api(f"silence/{silence['id']}", method="DELETE")
        now = datetime.now(UTC).isoformat()
        alerts = self.alerts()
        if alerts:
            self.api("alerts", [{"labels": a["labels"], "startsAt": a["startsAt"], "endsAt": now} for a in alerts])
        self.mailbox.clear()
        self.webhook.posts.clear()


def _start_server(folder: Path) -> Alertmanager:
    for binary in (ALERTMANAGER, AMTOOL):
        if not Path(binary).exists():
            raise RuntimeError(
                f"{binary} is missing: install Debian's prometheus-alertmanager package (make system-packages)"
            )
    mailbox, webhook = Mailbox(), Webhook()
    (folder / "alertmanager.yml").write_text(_config(mailbox, webhook))
    checked = subprocess.run(
        [AMTOOL, "check-config", str(folder / "alertmanager.yml")], capture_output=True, text=True, timeout=30
    )
    if checked.returncode != 0:
        raise RuntimeError(f"amtool check-config refused the test configuration: {checked.stdout}{checked.stderr}")
    port = free_port()
    server = Alertmanager(url=f"http://127.0.0.1:{port}", port=port, folder=folder, mailbox=mailbox, webhook=webhook)
    server.start()
    return server


@pytest.fixture(scope="session")
def alertmanager_server():
    server = _start_server(Path(tempfile.mkdtemp(prefix="kubemate-alertmanager-")))
    yield server
    server.stop()
    server.mailbox.stop()
    server.webhook.server.shutdown()
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture
def alertmanager(alertmanager_server):
    """The session's Alertmanager, running, with nothing active when the test starts and ends."""
    alertmanager_server.start()  # a test that stopped it and failed before starting it again
    alertmanager_server.reset()
    yield alertmanager_server
    alertmanager_server.start()
    alertmanager_server.reset()


@dataclass
class Alerting:
    prometheus: object
    alertmanager: Alertmanager


@pytest.fixture
def alerting(prometheus, alertmanager):
    """The session's Prometheus sending what its rules fire to the test's Alertmanager; rule files written by the
    test are removed at its end."""
    prometheus.send_alerts_to(alertmanager.address)
    yield Alerting(prometheus=prometheus, alertmanager=alertmanager)
    prometheus.remove_all_rules()


class Hostile:
    """Not an Alertmanager: answers every GET with ``status`` and ``body`` (bytes, or a function yielding chunks,
    sent without a length) after ``delay`` seconds, and keeps each request's path and Authorization header in
    ``seen``. For what a real Alertmanager does not answer: too large, malformed, too slow."""

    def __init__(self) -> None:
        self.status, self.body, self.delay, self.seen = 200, b"[]", 0.0, []
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hostile.seen.append((self.path, self.headers.get("Authorization", "")))
                time.sleep(hostile.delay)
                self.send_response(hostile.status)
                self.send_header("Content-Type", "application/json")
                body = hostile.body
                if isinstance(body, bytes):
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.end_headers()  # no length: read until the server closes
                try:
                    for chunk in body():
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hostile_alertmanager():
    server = Hostile()
    yield server
    server.server.shutdown()


@pytest.fixture
def alertmanager_with_password():
    """A second, real Alertmanager that answers only user ``ops`` with password ``s3cret`` (its web config); its
    URL."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated, but libxcrypt gives the bcrypt hash Alertmanager's web config wants

        hashed = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH))  # noqa: S324 (bcrypt)
    folder = Path(tempfile.mkdtemp(prefix="kubemate-alertmanager-auth-"))
    (folder / "alertmanager.yml").write_text("route:\n  receiver: none\nreceivers:\n  - name: none\n")
    (folder / "web.yml").write_text(f"basic_auth_users:\n  ops: '{hashed}'\n")
    port = free_port()
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={folder / 'alertmanager.yml'}",
            f"--web.config.file={folder / 'web.yml'}",
            f"--storage.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def asks_for_the_password():
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=2)  # noqa: S310 (local)
        except urllib.error.HTTPError as exc:
            return exc.code == 401
        except OSError:
            return False
        return False

    try:
        wait(asks_for_the_password, 30, "Alertmanager with a password to start")
        yield url
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
