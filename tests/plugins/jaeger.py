"""pytest plugin: a real Jaeger v2 (v1.75.0, built by ``deploy/sandbox/build --only jaeger``) with memory storage.

The session fixture ``jaeger_server`` writes a Jaeger v2 configuration (OpenTelemetry collector style): an OTLP/HTTP
receiver, the ``jaeger_storage`` extension with a memory backend, the ``jaeger_query`` extension (HTTP and gRPC on
free loopback ports) and the ``jaeger_storage_exporter``; nothing else listens (no health check, zpages or
metrics port). It starts Jaeger and waits until the query API answers. The function fixture ``jaeger`` hands a
test the same server, running:

    def test_something(jaeger):
        trace_id = jaeger.send(send_traces.checkout("payments"))
        jaeger.wait_for_trace(trace_id)

``send`` sends spans through deploy/local/send_traces.py (OTLP/HTTP in its JSON encoding); ``stop()`` and
``start()`` stop Jaeger mid-test and bring it back on the same ports (memory storage: traces sent before are gone).
If the binary is missing or Jaeger does not start, the fixture raises: tests fail, they are never skipped.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.plugins.served import Served, free_port, wait

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "deploy" / "sandbox" / "build"
SEND_TRACES = ROOT / "deploy" / "local" / "send_traces.py"


def send_traces():
    """deploy/local/send_traces.py as a module (it is a script beside the demo, not a package)."""
    if "kubemate_send_traces" in sys.modules:
        return sys.modules["kubemate_send_traces"]
    spec = importlib.util.spec_from_file_location("kubemate_send_traces", SEND_TRACES)
    module = importlib.util.module_from_spec(spec)
    sys.modules["kubemate_send_traces"] = module
    spec.loader.exec_module(module)
    return module


def binary() -> Path:
    """The Jaeger binary the sandbox build put in its cache."""
    done = subprocess.run([str(BUILD), "--print-paths"], capture_output=True, text=True, timeout=60)
    for line in done.stdout.splitlines():
        if line.startswith("JAEGER="):
            path = Path(line.split("=", 1)[1])
            if path.exists():
                return path
            raise RuntimeError(f"{path} is missing: build it with deploy/sandbox/build --only jaeger")
    raise RuntimeError(f"deploy/sandbox/build --print-paths names no JAEGER: {done.stdout}{done.stderr}")


def _config(query_port: int, grpc_port: int, otlp_port: int) -> str:
    return f"""
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_query:
    # No traces of its own: they go to localhost:4317, where nothing listens, and stopping Jaeger waited 10 s
    # for them to be sent.
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query_port}
    grpc:
      endpoint: 127.0.0.1:{grpc_port}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


@dataclass
class Jaeger(Served):
    name = "Jaeger"
    log_name = "jaeger"

    url: str  # the query API (what a cluster's jaeger_url is set to)
    otlp: str  # the OTLP/HTTP receiver
    folder: Path
    binary: Path
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    def command(self) -> list[str]:
        return [str(self.binary), "--config", f"file:{self.folder / 'config.yaml'}"]

    def ready_url(self) -> str:
        return f"{self.url}/api/services"

    # --- sending and reading ----------------------------------------------------------------------------------

    def send(self, spans, **kwargs) -> str:
        """Send ``spans`` (send_traces.Spec) as one trace; its id."""
        return send_traces().send(self.otlp, spans, **kwargs)

    def api(self, path: str):
        with urllib.request.urlopen(f"{self.url}/api/{path}", timeout=5) as response:  # noqa: S310 (local)
            return json.loads(response.read())

    def wait_for_trace(self, trace_id: str, spans: int = 1, timeout: float = 30) -> dict:
        """The trace as Jaeger answers it, once it holds at least ``spans`` spans."""

        def found():
            try:
                data = self.api(f"traces/{trace_id}")["data"]
            except urllib.error.HTTPError:
                return None
            return data[0] if data and len(data[0]["spans"]) >= spans else None

        return wait(found, timeout, f"trace {trace_id} in Jaeger")


def _start_server(folder: Path) -> Jaeger:
    path = binary()
    query_port, grpc_port, otlp_port = free_port(), free_port(), free_port()
    (folder / "config.yaml").write_text(_config(query_port, grpc_port, otlp_port))
    server = Jaeger(
        url=f"http://127.0.0.1:{query_port}", otlp=f"http://127.0.0.1:{otlp_port}", folder=folder, binary=path
    )
    server.start()
    return server


@pytest.fixture(scope="session")
def jaeger_server():
    server = _start_server(Path(tempfile.mkdtemp(prefix="kubemate-jaeger-")))
    yield server
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture
def jaeger(jaeger_server):
    """The session's Jaeger, running (a test that stopped it and failed is followed by one that finds it up)."""
    jaeger_server.start()
    yield jaeger_server
    jaeger_server.start()
