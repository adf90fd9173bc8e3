"""The C heap levers of apps/core/memory.py, seen from glibc itself in a fresh interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Sixteen threads each allocate and free while the others do; glibc's malloc_stats() then prints one "Arena n:"
# block per arena on stderr.
PROBE = """
import ctypes, threading
{start}
def work():
    for _ in range(200):
        chunk = [bytearray(2048) for _ in range(200)]
        del chunk
threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL("libc.so.6").malloc_stats()
"""


def arenas(start: str, **env) -> int:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    environment.update(DJANGO_SETTINGS_MODULE="kubemate.settings.test", PYTHONPATH=str(REPO), **env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(start=start)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return len(re.findall(r"^Arena \d+:", done.stderr, re.M))


@pytest.fixture(autouse=True)
def glibc():
    if not Path("/proc/self/maps").read_text().count("libc.so.6"):
        pytest.fail("these levers are for glibc, which every supported platform (Debian, the image) has")


def test_importing_the_project_caps_the_arenas_at_two():
    plain = arenas("")
    capped = arenas("import kubemate")
    assert capped <= 2 < plain, (plain, capped)
    print(f"\n16 allocating threads: {plain} arenas without the cap, {capped} with it")


def test_an_explicit_malloc_arena_max_wins_and_the_project_setting_changes_the_cap():
    assert arenas("import kubemate", MALLOC_ARENA_MAX="4") > 2
    assert arenas("import kubemate", KUBEMATE_MALLOC_ARENAS="1") == 1


def test_trim_hands_freed_heap_back_and_is_throttled():
    code = """
import ctypes, gc
from apps.core import memory
def rss():
    return int([l for l in open('/proc/self/status') if l.startswith('VmRSS:')][0].split()[1])
keep = []
junk = [bytes(3000) for _ in range(40000)]  # ~120 MB of blocks above Python's small-object allocator
for i in range(0, 40000, 400):
    keep.append(junk[i])  # one block in a hundred stays: the heap cannot shrink from its top alone
del junk
gc.collect()
before = rss()
first = memory.trim(60)
after = rss()
second = memory.trim(60)
print(before, after, first, second)
"""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "kubemate.settings.test", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    before, after, first, second = done.stdout.split()
    assert first == "True" and second == "False"
    assert int(before) - int(after) > 50 * 1024, (before, after)
    print(f"\nRSS {int(before) / 1024:.0f} MB before the trim, {int(after) / 1024:.0f} MB after")
