"""The C heap of a long-lived process: fewer malloc arenas, and freed memory handed back to the system.

glibc gives each thread that allocates concurrently an arena of its own, up to eight per core, and keeps what a
burst freed inside them. The worker runs many threads (Celery's pool, beat, one per cluster and kind of the
inventory sync, the writer): after the initial list of 15,000 pods its arenas kept tens of megabytes that
Python had already freed (bench/README.md, "the footprint"). Two levers, both no-ops off glibc:

* ``limit_arenas()`` caps the arenas at two per process (``mallopt(M_ARENA_MAX)``, what ``MALLOC_ARENA_MAX=2``
  does, set from inside so that every way of starting the console gets it: systemd, the chart, the demo). It
  must run before threads start: ``kubemate/__init__.py`` calls it first.
* ``trim()`` returns the free pages at the top and inside every arena to the system (``malloc_trim(0)``), after
  work that allocated and freed a lot: an inventory list, a Celery task. At most once a ``min_seconds``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time

M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2

_lock = threading.Lock()
_last = 0.0
_libc = None


def _glibc():
    global _libc
    if _libc is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _libc = libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else False
        except OSError:
            _libc = False
    return _libc


def limit_arenas(arenas: int | None = None) -> bool:
    """Cap glibc's arenas (``KUBEMATE_MALLOC_ARENAS`` overrides; an explicit ``MALLOC_ARENA_MAX`` wins)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _glibc()
    if not libc:
        return False
    count = arenas or int(os.environ.get("KUBEMATE_MALLOC_ARENAS", ARENAS))
    return bool(libc.mallopt(M_ARENA_MAX, count))


def trim(min_seconds: float = 0.0) -> bool:
    """Give freed heap back to the system; skipped when the last trim is younger than ``min_seconds``."""
    global _last
    libc = _glibc()
    if not libc:
        return False
    with _lock:
        now = time.monotonic()
        if min_seconds and now - _last < min_seconds:
            return False
        _last = now
    libc.malloc_trim(0)
    return True
