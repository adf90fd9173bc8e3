"""pytest plugin: a real Prometheus (Debian's /usr/bin/prometheus) scraping an exporter the test controls.

The session fixture ``prometheus`` starts an HTTP exporter on a free loopback
port and a Prometheus server that scrapes it every second, and stops both at the
end of the session. Tests set the series the exporter shows, then wait until
Prometheus has scraped them:

    def test_something(prometheus):
        prometheus.exporter.set("app_error_ratio", {"service": "web"}, 0.02)
        prometheus.wait_for('app_error_ratio{service="web"}', 0.02)

A series removed from the exporter goes stale in Prometheus at the next scrape,
so a query for it returns no data, as with an app that stopped reporting. If
Prometheus is missing or does not start, the fixture raises: tests fail, they
are never skipped (``make test`` installs Debian's prometheus package).

Prometheus also evaluates the rule files tests write (``write_rules``, every
second) and, once told where (``send_alerts_to``, done by the ``alerting``
fixture of tests/plugins/alertmanager.py), sends what fires to Alertmanager.
Both reload its configuration (``--web.enable-lifecycle``, ``reload``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.plugins.served import free_port

PROMETHEUS = "/usr/bin/prometheus"


class Exporter:
    """Serves /metrics in the Prometheus text format from a dict the test changes."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, tuple], float] = {}
        self._lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = exporter.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, name: str, labels: dict[str, str], value: float) -> None:
        with self._lock:
            self._series[(name, tuple(sorted(labels.items())))] = value

    def remove(self, name: str, labels: dict[str, str]) -> None:
        with self._lock:
            self._series.pop((name, tuple(sorted(labels.items()))), None)

    def clear(self) -> None:
        with self._lock:
            self._series.clear()

    def text(self) -> str:
        with self._lock:
            lines = []
            for (name, labels), value in sorted(self._series.items()):
                inner = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{name}{{{inner}}} {value!r}")
        return "\n".join(lines) + "\n"


@dataclass
class Prometheus:
    url: str
    exporter: Exporter
    process: subprocess.Popen
    folder: Path
    _log: object = field(default=None, repr=False)
    alertmanager: str = ""  # host:port Prometheus sends alerts to ("" for none)

    @property
    def rules_folder(self) -> Path:
        return self.folder / "rules"

    def reload(self) -> None:
        """Read the configuration and the rule files again (POST /-/reload); raises when Prometheus refuses them."""
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")  # noqa: S310 (http URL built here)
        try:
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310
                pass
        except urllib.error.HTTPError as exc:
            said = exc.read().decode(errors="replace")
            raise AssertionError(f"Prometheus refused its configuration: {said}") from None

    def send_alerts_to(self, address: str) -> None:
        """Send firing alerts to the Alertmanager at ``address`` (host:port)."""
        if self.alertmanager != address:
            self.alertmanager = address
            (self.folder / "prometheus.yml").write_text(_config(self.exporter.address, self.folder, address))
            self.reload()
        # Prometheus takes the new Alertmanager into use a few seconds after the reload (its discovery updates
        # every 5 s); an alert firing before that is dropped and sent again only after the resend delay.
        deadline = time.monotonic() + 30
        while not any(address in a["url"] for a in self._get("/api/v1/alertmanagers")["activeAlertmanagers"]):
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus did not take Alertmanager {address} into use")
            time.sleep(0.2)

    def _get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:  # noqa: S310 (http URL built here)
            return json.load(response)["data"]

    def write_rules(self, name: str, text: str) -> None:
        """Write rule file ``name`` (Prometheus's own rule-file YAML) and load it."""
        self.rules_folder.mkdir(exist_ok=True)
        (self.rules_folder / f"{name}.yml").write_text(text)
        self.reload()

    def remove_all_rules(self) -> None:
        files = list(self.rules_folder.glob("*.yml"))
        for path in files:
            path.unlink()
        if files:
            self.reload()

    def query(self, promql: str) -> list:
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(address, timeout=5) as response:  # noqa: S310 (http URL built here)
            return json.load(response)["data"]["result"]

    def wait_for(self, promql: str, value: float | None, timeout: float = 20) -> None:
        """Wait until the query answers ``value`` (None: until it answers no data)."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            result = self.query(promql)
            seen = [float(r["value"][1]) for r in result]
            if (value is None and not seen) or (value is not None and seen and abs(max(seen) - value) < 1e-9):
                return
            time.sleep(0.25)
        raise AssertionError(f"Prometheus still answers {seen} for {promql}, expected {value}")


def _config(exporter: str, folder: Path, alertmanager: str = "") -> str:
    text = (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - '{folder / 'rules'}/*.yml'\n"
        "scrape_configs:\n  - job_name: app\n    honor_labels: true\n"
        f"    static_configs:\n      - targets: ['{exporter}']\n"
    )
    if alertmanager:
        text += f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager}']\n"
    return text


def _start(folder: Path, *, password_hash: str = "") -> Prometheus:
    """Start Prometheus in ``folder``; with ``password_hash`` (bcrypt) it asks for basic auth as user ``ops``."""
    if not Path(PROMETHEUS).exists():
        raise RuntimeError(f"{PROMETHEUS} is missing: install Debian's prometheus package (make system-packages)")
    exporter = Exporter()
    port = free_port()
    config = folder / "prometheus.yml"
    (folder / "rules").mkdir(exist_ok=True)
    config.write_text(_config(exporter.address, folder))
    log = (folder / "prometheus.log").open("wb")
    arguments = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
        "--web.enable-lifecycle",
        # Firing alerts are sent again every 2 s (1 min by default), so a test never waits a minute for one that
        # was dropped.
        "--rules.alert.resend-delay=2s",
    ]
    if password_hash:
        (folder / "web.yml").write_text(f"basic_auth_users:\n  ops: '{password_hash}'\n")
        arguments.append(f"--web.config.file={folder / 'web.yml'}")
    process = subprocess.Popen(
        arguments,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (folder / "prometheus.log").read_text()
            raise RuntimeError(f"Prometheus exited with {process.returncode}: {output}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:  # noqa: S310 (http URL built here)
                if response.status == 200:
                    return Prometheus(url=url, exporter=exporter, process=process, folder=folder, _log=log)
        except urllib.error.HTTPError as exc:
            if exc.code == 401 and password_hash:  # up, and asking for the password as configured
                return Prometheus(url=url, exporter=exporter, process=process, folder=folder, _log=log)
            time.sleep(0.2)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"Prometheus did not become ready in 60 s: {(folder / 'prometheus.log').read_text()}")


def _stop(server: Prometheus) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
    server.exporter.server.shutdown()
    server._log.close()
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def prometheus():
    server = _start(Path(tempfile.mkdtemp(prefix="kubemate-prometheus-")))
    yield server
    _stop(server)


@pytest.fixture
def prometheus_with_password():
    """A second Prometheus that answers only user ``ops`` with password ``s3cret`` (web.config basic_auth_users)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated, but libxcrypt gives the bcrypt hash Prometheus's web config wants

        hashed = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH))  # noqa: S324 (bcrypt)
    server = _start(Path(tempfile.mkdtemp(prefix="kubemate-prometheus-")), password_hash=hashed)
    yield server
    _stop(server)


@pytest.fixture
def metrics(prometheus):
    """The session's Prometheus with an empty exporter for this test."""
    prometheus.exporter.clear()
    yield prometheus
    prometheus.exporter.clear()


@pytest.fixture
def prometheus_to_stop():
    """A Prometheus of the test's own, which the test may stop halfway (``server.stop()``) to see what the
    console says when Prometheus goes away."""
    server = _start(Path(tempfile.mkdtemp(prefix="kubemate-prometheus-")))
    server.stop = lambda: _stop(server)
    yield server
    if server.process.returncode is None:
        _stop(server)
