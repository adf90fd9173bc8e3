"""pytest plugin: the AI components, real and project-local, each on a free loopback port with its files and log in a
temporary folder, built by ``deploy/ai/build`` (``make ai-build``; cached by version under ~/.cache/kubemate):

- ``milvus`` (session): Milvus Lite's gRPC server, ``milvus-lite server --data-dir D --host 127.0.0.1 --port P``
  from its own virtualenv. ``uri`` (``http://127.0.0.1:P``), ``data_dir``, ``stop()`` (SIGTERM), ``start()`` (the
  same port and data). While the session holds it, ``settings.KUBEMATE_MILVUS_URI`` points at it, so
  ``apps/ai/milvus.py`` talks to it (a test may still point the setting elsewhere with the ``settings`` fixture).
- ``llm`` (session): llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct (Q4_1 GGUF, CPU, the
  chat template of the GGUF), ``python -m llama_cpp.server --model M --host 127.0.0.1 --port P --n_ctx 2048
  --model_alias smollm2-135m-instruct``. ``base_url`` (``http://127.0.0.1:P/v1``), ``model``, ``stop()``,
  ``start()``.

    def test_something(milvus, llm):
        MilvusClient(uri=milvus.uri).list_collections()
        requests.post(f"{llm.base_url}/chat/completions", json={"model": llm.model, "messages": [...]})

Each starts when a test first asks for it and stops at the session's end. ``start()`` waits until the server
answers (Milvus: pymilvus' ``list_collections``; the model server: ``GET /v1/models`` naming the model), at most
``KUBEMATE_TEST_AI_START_SECONDS`` (default 120), and raises with the log's tail otherwise. When ``make ai-build`` has
not run, the fixture fails with a sentence saying so: tests fail, they are never skipped. A test that stops a server
starts it again in a ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from tests.plugins.served import free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "deploy" / "ai" / "build"


def start_seconds() -> float:
    return float(os.environ.get("KUBEMATE_TEST_AI_START_SECONDS", "120"))


def built_paths() -> dict[str, str]:
    """``deploy/ai/build --print-paths``: NAME -> path (builds nothing)."""
    done = subprocess.run([str(BUILD), "--print-paths"], capture_output=True, text=True, timeout=60, check=True)
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def require_built(what: str, *paths: Path) -> None:
    """Fail the test (never skip) when ``make ai-build`` has not made ``paths`` (or their cache entry's mark)."""
    for path in paths:
        complete = (path.parents[1] if path.parent.name == "bin" else path.parent) / ".complete"  # venv/bin/python
        if not path.exists() or not complete.is_file():
            pytest.fail(f"{what} is not built ({path} is missing): run `make ai-build` first.", pytrace=False)


@dataclass
class _Server:
    """One server process: its log in ``folder``, started and stopped with the same port and files."""

    name: ClassVar[str]
    log_name: ClassVar[str]

    folder: Path
    port: int
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.alive():
            return
        self._log = (self.folder / f"{self.log_name}.log").open("ab")
        self.process = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.folder
        )
        timeout = start_seconds()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self._closed()
                raise RuntimeError(f"{self.name} exited with {code}; its log ends with:\n{self.log()}")
            if self._listening() and self.ready():
                return
            time.sleep(0.2)
        self.process.kill()
        self.process.wait(timeout=10)
        self._closed()
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s; its log ends with:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 20 s); ``start()`` brings it back on the same port with the same files."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._closed()

    def _closed(self) -> None:
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _listening(self) -> bool:
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def log(self, chars: int = 4000) -> str:
        path = self.folder / f"{self.log_name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class MilvusLite(_Server):
    name = "Milvus Lite"
    log_name = "milvus-lite"

    python: Path = Path()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def command(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            str(self.python), "-m", "milvus_lite", "server", "--data-dir", str(self.data_dir),
            "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip

    def client(self, timeout: float = 10):
        """A new pymilvus ``MilvusClient`` on this server (close it when done)."""
        from pymilvus import MilvusClient

        return MilvusClient(uri=self.uri, timeout=timeout)

    def ready(self) -> bool:
        try:
            client = self.client(timeout=3)
        except Exception:  # noqa: BLE001 - not answering yet
            return False
        try:
            client.list_collections(timeout=3)
            return True
        except Exception:  # noqa: BLE001
            return False
        finally:
            with contextlib.suppress(Exception):
                client.close()


@dataclass
class LlamaServer(_Server):
    name = "The local model server (llama-cpp-python)"
    log_name = "llm-server"

    python: Path = Path()
    model_path: Path = Path()
    model: str = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            str(self.python), "-m", "llama_cpp.server", "--model", str(self.model_path),
            "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048", "--model_alias", self.model,
        ]  # fmt: skip

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=3) as response:  # noqa: S310 - loopback
                served = json.loads(response.read(1 << 20))
        except (OSError, ValueError):
            return False
        return any(item.get("id") == self.model for item in served.get("data", []))


@pytest.fixture(scope="session")
def milvus():
    """Milvus Lite's server for the session; ``settings.KUBEMATE_MILVUS_URI`` points at it meanwhile."""
    from django.test import override_settings

    python = Path(built_paths()["MILVUS_LITE_PYTHON"])
    require_built("Milvus Lite", python)
    server = MilvusLite(folder=Path(tempfile.mkdtemp(prefix="kubemate-milvus-")), port=free_port(), python=python)
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    override = override_settings(KUBEMATE_MILVUS_URI=server.uri, KUBEMATE_MILVUS_TOKEN="")
    override.enable()
    try:
        yield server
    finally:
        override.disable()
        with contextlib.suppress(Exception):  # the door's cached client for this address
            from apps.ai import milvus as door

            door._forget()
        server.close()


@pytest.fixture(scope="session")
def llm():
    """The local model server (llama-cpp-python with SmolLM2-135M-Instruct) for the session."""
    paths = built_paths()
    python, model_path = Path(paths["LLM_SERVER_PYTHON"]), Path(paths["LLM_MODEL"])
    require_built("The local model server", python, model_path)
    server = LlamaServer(
        folder=Path(tempfile.mkdtemp(prefix="kubemate-llm-")),
        port=free_port(),
        python=python,
        model_path=model_path,
        model=paths["LLM_MODEL_ALIAS"],
    )
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    yield server
    server.close()
