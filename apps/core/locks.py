"""Redis locks so that one piece of long work runs once at a time (one sync per cluster, one drain per node).

A lock lives in Redis only as long as its holder does: the key expires after ``KUBEMATE_LOCK_KEEP_SECONDS``
(30 s) unless the holder's keeper thread renews it, every third of that, while the block runs. A worker
killed mid-drain therefore releases its lock within 30 s, and a new drain of the node is accepted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from django.conf import settings
from django.utils.translation import gettext as _
from redis.exceptions import LockError

from apps.core.redis import REDIS_DOWN_ERRORS, ServiceUnavailable, get_redis


class LockBusy(Exception):
    """Someone else holds the lock; the sentence says what is already running."""


def keep_seconds() -> float:
    return float(getattr(settings, "KUBEMATE_LOCK_KEEP_SECONDS", 30))


@contextmanager
def redis_lock(
    name: str, *, timeout: float = 600, wait: float = 0, busy: Callable[[], str] | None = None
) -> Iterator[None]:
    """Hold ``kubemate:lock:<name>`` for the block.

    ``timeout`` bounds how long a holder that hangs (alive, but stuck) keeps the lock: the keeper stops
    renewing after it. ``wait`` is how long to wait for a busy lock before raising ``LockBusy``.
    """
    keep = keep_seconds()
    # thread_local=False: the keeper thread renews with the token the holder's thread took.
    lock = get_redis().lock(
        f"kubemate:lock:{name}", timeout=keep, blocking=wait > 0, blocking_timeout=wait or None, thread_local=False
    )
    try:
        acquired = lock.acquire()
    except REDIS_DOWN_ERRORS:
        raise ServiceUnavailable() from None
    if not acquired:
        # The lock's name is internal: the caller's ``busy`` words what holds it for a person.
        raise LockBusy(
            (busy() if busy else "") or _("Another task is already working on this; try again when it has finished.")
        )
    stop = threading.Event()

    def renew() -> None:
        deadline = time.monotonic() + timeout
        while not stop.wait(keep / 3) and time.monotonic() < deadline:
            try:
                lock.reacquire()
            except (LockError, *REDIS_DOWN_ERRORS):
                return  # lost or unreachable: the key expires by itself

    keeper = threading.Thread(target=renew, name=f"kubemate-lock-{name}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join(5)
        # The lock may have expired and been taken by another holder; releasing it then fails harmlessly.
        with suppress(LockError, *REDIS_DOWN_ERRORS):
            lock.release()
