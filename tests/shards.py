"""Run the whole suite as two pytest processes side by side (what `make test` calls).

Much of the suite waits: for a controller to reconcile, a rollout to finish, a receiver to come back. Two
processes fill each other's waits on a two-core machine. Each shard keeps apart from the other as two
checkouts would: its own test database (KUBEMATE_TEST_DB), its own Redis database (KUBEMATE_TEST_REDIS_URL),
its own sandbox cluster and outside components (each session starts its own on free loopback ports).

Shard "b" holds the folders in SHARD_B; shard "a" everything else, so a new folder runs without being listed.
Both reports are merged into .run/test-report.xml (JUnit), the file to read for where the time goes.

    .venv/bin/python tests/shards.py                 # both shards, as `make test`
    .venv/bin/python tests/shards.py -- -x           # extra pytest arguments go to both
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / ".run"


# Balanced by the JUnit times of a whole run (2026-12-05: about 700 s of test time on each side). The deployment
# tests (CPU: offline installs) sit beside the waits of shard "a" (browser, sync, faults).
SHARD_B = [
    "tests/deploy",
    "tests/inspection",
    "tests/observability",
    "tests/backups",
    "tests/compliance",
    "tests/ai",
    "tests/cicd",
    "tests/fieldcrypt",
]


def redis_base() -> str:
    """The project-local Redis without its database number, read as the settings read it (kubemate/startup.py's
    load_env_file: the environment first, then .run/services.env), so that the shards and the console agree. Not
    imported from there: importing the kubemate package would set DJANGO_SETTINGS_MODULE for the shards."""
    url = os.environ.get("REDIS_URL", "")
    path = RUN / "services.env"
    if not url and path.is_file():
        for line in path.read_text().splitlines():
            if line.strip().startswith("REDIS_URL="):
                url = line.split("=", 1)[1].strip().strip("'\"")
    return (url or "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]


def shards(extra: list[str]) -> dict[str, tuple[list[str], dict[str, str]]]:
    base = redis_base()
    python = str(REPO / ".venv" / "bin" / "python")
    a_args = [python, "-m", "pytest", *[f"--ignore={path}" for path in SHARD_B], "tests"]
    b_args = [python, "-m", "pytest", *SHARD_B]
    a_env = {"KUBEMATE_TEST_DB": "test_kubemate", "KUBEMATE_TEST_REDIS_URL": f"{base}/15"}
    b_env = {
        "KUBEMATE_TEST_DB": "test_kubemate_b",
        "KUBEMATE_TEST_REDIS_URL": f"{base}/14",
        # The deployment tests' installed web and worker processes get a Redis database of their own.
        "KUBEMATE_TEST_DEPLOY_REDIS_URL": f"{base}/13",
    }
    return {
        "a": ([*a_args, f"--junitxml={RUN / 'test-report-a.xml'}", *extra], a_env),
        "b": ([*b_args, f"--junitxml={RUN / 'test-report-b.xml'}", *extra], b_env),
    }


def pump(name: str, stream, out, lock: threading.Lock) -> None:
    """Copy a shard's output line by line, each line marked with the shard's name."""
    for raw in iter(stream.readline, b""):
        with lock:
            out.write(f"[{name}] ".encode() + raw)
            out.flush()


def merge_reports(names: list[str]) -> None:
    """One JUnit file of both shards' test suites."""
    merged = ET.Element("testsuites")
    for name in names:
        path = RUN / f"test-report-{name}.xml"
        if not path.is_file():
            continue
        root = ET.parse(path).getroot()  # noqa: S314 (pytest's own report of this run)
        suites = [root] if root.tag == "testsuite" else list(root)
        for suite in suites:
            suite.set("name", f"shard-{name}")
            merged.append(suite)
    ET.ElementTree(merged).write(RUN / "test-report.xml", encoding="utf-8", xml_declaration=True)


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    RUN.mkdir(exist_ok=True)
    for name in ("a", "b"):  # a shard that dies before writing its report must not leave an old one to merge
        (RUN / f"test-report-{name}.xml").unlink(missing_ok=True)
    lock = threading.Lock()
    out = sys.stdout.buffer
    started = time.monotonic()
    procs: dict[str, subprocess.Popen] = {}
    pumps = []
    for name, (args, env) in shards(extra).items():
        proc = subprocess.Popen(
            args,
            cwd=REPO,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs[name] = proc
        thread = threading.Thread(target=pump, args=(name, proc.stdout, out, lock), daemon=True)
        thread.start()
        pumps.append(thread)

    def stop(signum, frame):  # Ctrl-C or CI's timeout: both shards end and clean up their sandboxes
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    codes = {}
    for name, proc in procs.items():
        codes[name] = proc.wait()
        print(f"[{name}] shard ended with exit code {codes[name]} after {time.monotonic() - started:.0f} s", flush=True)
    for thread in pumps:
        thread.join(timeout=5)
    merge_reports(list(procs))
    print(f"both shards: {', '.join(f'{n}={c}' for n, c in codes.items())}; {time.monotonic() - started:.0f} s")
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
