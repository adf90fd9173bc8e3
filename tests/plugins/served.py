"""What the plugins that run a server of their own share: a free loopback port, waiting for a condition, and
starting, stopping and reading the log of one server process (``Served``, mixed into each plugin's dataclass)."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from typing import ClassVar


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate, timeout: float, what: str):
    """``predicate()``'s first true answer within ``timeout`` seconds; AssertionError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout} s for {what}")


class Served:
    """One server process of a plugin. The dataclass it is mixed into has ``folder`` (where ``<log_name>.log`` is
    written), ``process`` and ``_log``, and says how the server starts (``command``) and where it answers 200
    once ready (``ready_url``). ``start`` is idempotent and raises with the log's tail when the server exits or
    does not become ready; ``stop`` can be followed by ``start`` on the same port and storage."""

    name: ClassVar[str]  # in the error messages
    log_name: ClassVar[str]
    stop_timeout: ClassVar[float] = 10

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready_url(self) -> str:
        raise NotImplementedError

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        self._log = (self.folder / f"{self.log_name}.log").open("ab")
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(self.ready_url(), timeout=2) as response:  # noqa: S310 (local)
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.process.kill()
        raise RuntimeError(f"{self.name} did not become ready in 60 s: {self.log()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        self._log.close()

    def log(self) -> str:
        path = self.folder / f"{self.log_name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""
