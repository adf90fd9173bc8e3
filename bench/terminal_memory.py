"""Memory of the web terminal service beside the console's web process, in the same run.

Starts ``manage.py terminal_server`` and the console's gunicorn web process (one gthread worker, as the demo runs
it) on free loopback ports, waits until both answer, and prints each one's resident memory; then opens N idle
websocket connections to the terminal service (refused after the handshake checks, as a stranger's would be) to
show it does not grow with connection attempts. Uses the database and Redis of ``make services``:

    .venv/bin/python bench/terminal_memory.py [--attempts 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (gunicorn's master and worker), in MiB."""
    total = 0
    pids = [pid] + [
        int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    ]
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def wait_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()  # noqa: S310 (a loopback http address built here)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


async def attempts(url: str, count: int) -> int:
    import aiohttp

    refused = 0
    async with aiohttp.ClientSession() as http:
        for _ in range(count):
            try:
                async with http.ws_connect(url, headers={"Origin": "http://127.0.0.1"}):
                    pass
            except aiohttp.WSServerHandshakeError:
                refused += 1
    return refused


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", type=int, default=200)
    args = parser.parse_args()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "kubemate.settings"}
    python = str(ROOT / ".venv" / "bin" / "python")
    tport, wport = free_port(), free_port()
    terminal = subprocess.Popen(
        [python, "manage.py", "terminal_server", "--port", str(tport)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    web = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "kubemate.wsgi",
            "--bind",
            f"127.0.0.1:{wport}",
            "--worker-class",
            "gthread",
            "--workers",
            "1",
            "--threads",
            "8",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{tport}/healthz")
        wait_http(f"http://127.0.0.1:{wport}/readyz")
        time.sleep(1)
        idle_terminal, idle_web = rss_mib(terminal.pid), rss_mib(web.pid)
        refused = asyncio.run(
            attempts(f"ws://127.0.0.1:{tport}/ws/terminal/00000000-0000-0000-0000-000000000000/", args.attempts)
        )
        after = rss_mib(terminal.pid)
        print(f"{'process':<34}{'RSS MiB':>10}")
        print(f"{'terminal service, idle':<34}{idle_terminal:>10.1f}")
        print(f"{'console web (gunicorn, 1 worker)':<34}{idle_web:>10.1f}")
        print(f"{f'terminal after {refused} refused attempts':<34}{after:>10.1f}")
    finally:
        for process in (terminal, web):
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
