"""pytest plugin: a real VictoriaLogs (v1.52.2, built by ``deploy/sandbox/build --only victoria-logs``).

The session fixture ``victorialogs`` starts it on a free loopback port with its own ``-storageDataPath`` in a
temporary folder and a retention of 100 years (lines pushed with times in the past are kept, not refused), and
waits for ``/health``. Tests push lines the way promtail or Alloy do, through VictoriaLogs' Loki push API (JSON
form), and wait until a LogsQL query counts them:

    def test_something(victorialogs):
        ns = unique("shop")
        victorialogs.push([{"namespace": ns, "pod": "web-1", "level": "error", "line": "boom"}])
        victorialogs.wait_for(f'{{namespace="{ns}"}}', 1)

VictoriaLogs has no API to delete lines for a test, so each test pushes under namespace and pod names of its own
(``tests.helpers.unique``) and never sees another test's lines. ``stop()`` and ``start()`` stop the server
mid-test ("store stopped" sentences; start it again in a ``finally``) and bring it back on the same port and
storage. If the binary is missing or the server does not start, the fixture raises: tests fail, they are never
skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.plugins.served import Served, free_port

ROOT = Path(__file__).resolve().parents[2]
STREAM_LABELS = ("namespace", "pod", "container", "level", "app")


def _binary() -> Path:
    done = subprocess.run(
        [str(ROOT / "deploy/sandbox/build"), "--print-paths"], capture_output=True, text=True, timeout=60
    )
    for row in done.stdout.splitlines():
        if row.startswith("VICTORIA_LOGS="):
            return Path(row.split("=", 1)[1])
    raise RuntimeError(f"deploy/sandbox/build --print-paths names no VICTORIA_LOGS: {done.stdout}{done.stderr}")


def _ns(moment) -> int:
    if moment is None:
        return time.time_ns()
    if isinstance(moment, int):
        return moment
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


@dataclass
class VictoriaLogs(Served):
    name = "VictoriaLogs"
    log_name = "victoria-logs"
    stop_timeout = 20

    binary: Path
    folder: Path
    port: int
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- process ------------------------------------------------------------------------------------------------

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"-storageDataPath={self.folder / 'data'}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=100y",
            "-loggerLevel=WARN",
        ]

    def ready_url(self) -> str:
        return f"{self.url}/health"

    # --- its own API ----------------------------------------------------------------------------------------------

    def push(self, lines: Iterable[dict]) -> int:
        """Push lines through the Loki push API, as promtail does. A line is a dict: ``line`` (the text), ``time``
        (aware datetime or nanoseconds; now when missing), and stream labels (namespace, pod, container, level,
        app, or any other). Lines are kept as written (``disable_message_parsing``). Returns how many were sent."""
        streams: dict[tuple, list] = {}
        count = 0
        for item in lines:
            labels = {k: str(v) for k, v in item.items() if k not in ("line", "time")}
            labels.setdefault("container", "app")
            streams.setdefault(tuple(sorted(labels.items())), []).append([str(_ns(item.get("time"))), item["line"]])
            count += 1
        body = {"streams": [{"stream": dict(key), "values": values} for key, values in streams.items()]}
        request = urllib.request.Request(  # noqa: S310 (http URL built here)
            f"{self.url}/insert/loki/api/v1/push?disable_message_parsing=1",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            if response.status not in (200, 204):
                raise AssertionError(f"VictoriaLogs refused the push: HTTP {response.status}")
        return count

    def query(self, logsql: str, **params) -> list[dict]:
        """Rows of /select/logsql/query as typed, with no tenancy: what a test compares the door's answers with."""
        data = urllib.parse.urlencode({"query": logsql, **params}).encode()
        with urllib.request.urlopen(f"{self.url}/select/logsql/query", data=data, timeout=10) as response:  # noqa: S310
            return [json.loads(row) for row in response.read().splitlines() if row.strip()]

    def count(self, logsql: str) -> int:
        rows = self.query(f"{logsql} | stats count() as n", start="1970-01-01T00:00:00Z")
        return int(rows[0]["n"]) if rows else 0

    def flush(self) -> None:
        """Make the lines pushed so far searchable now: VictoriaLogs buffers them about two seconds otherwise
        (its ``/internal/force_flush``)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10) as response:  # noqa: S310
            if response.status != 200:
                raise AssertionError(f"VictoriaLogs refused to flush: HTTP {response.status}")

    def wait_for(self, logsql: str, n: int, timeout: float = 20) -> int:
        """Wait until ``logsql`` matches at least ``n`` lines (flushing first, so that pushed lines count at once
        rather than in a second or two); the count."""
        deadline = time.monotonic() + timeout
        self.flush()
        found = self.count(logsql)
        while found < n and time.monotonic() < deadline:
            time.sleep(0.1)
            self.flush()
            found = self.count(logsql)
        if found < n:
            raise AssertionError(f"waited {timeout} s for {n} lines of {logsql}; found {found}")
        return found


def _start_server() -> VictoriaLogs:
    binary = _binary()
    if not binary.exists():
        raise RuntimeError(
            f"{binary} is missing: build it with deploy/sandbox/build --only victoria-logs (make deps builds it too)"
        )
    server = VictoriaLogs(
        binary=binary, folder=Path(tempfile.mkdtemp(prefix="kubemate-victorialogs-")), port=free_port()
    )
    server.start()
    return server


@pytest.fixture(scope="session")
def victorialogs():
    """The session's VictoriaLogs; a test that stops it starts it again in a ``finally``."""
    server = _start_server()
    yield server
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)
