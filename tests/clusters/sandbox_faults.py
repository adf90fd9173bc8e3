"""Faults the inventory must survive, done to the real sandbox: etcd compaction and an apiserver restart."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path


def compact_etcd(sandbox) -> int:
    """Compact etcd at its current revision, so that every older resourceVersion answers 410 Gone."""
    revision = sandbox.etcd_revision()
    sandbox.etcd("/v3/kv/compaction", {"revision": revision, "physical": True})
    return revision


def restart_apiserver(sandbox, down_seconds: float = 2.0, timeout: float = 180, while_down=None) -> None:
    """Stop the kube-apiserver, keep it down a moment (``while_down()`` runs then, after ``down_seconds``), start it
    again with the same command line."""
    pid_file = Path(sandbox.run_dir) / "pids" / "kube-apiserver"
    pid = int(pid_file.read_text().split()[0])
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    cwd = os.readlink(f"/proc/{pid}/cwd")
    # SIGKILL, a crash: a SIGTERM'd apiserver stops listening at once but exits only after its HTTP server's 60 s
    # shutdown timeout (open watches never drain), a minute per restart for the same "down" the tests need.
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(down_seconds)
    if while_down is not None:
        while_down()
    log = open(Path(sandbox.run_dir) / "logs" / "kube-apiserver.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen([a.decode() for a in argv], cwd=cwd, stdout=log, stderr=log, start_new_session=True)
    pid_file.write_text(f"{process.pid}\n")
    wait_ready(sandbox, timeout)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs. An apiserver an earlier restart started is this process's child: reap it, or it
    stays a zombie (its /proc entry there) until the timeout."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_ready(sandbox, timeout: float = 180) -> None:
    import ssl

    context = ssl.create_default_context(cafile=sandbox.ca_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{sandbox.server}/livez", context=context, timeout=2):  # noqa: S310
                return
        except Exception:  # noqa: BLE001 - not up yet (connection refused or 401 before authn is ready)
            time.sleep(0.3)
    raise RuntimeError("kube-apiserver did not come back")
