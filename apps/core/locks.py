"""Redis locks so that one piece of long work runs once at a time (one sync per cluster, one drain per node)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from django.utils.translation import gettext as _
from redis.exceptions import LockError

from apps.core.redis import REDIS_DOWN_ERRORS, ServiceUnavailable, get_redis


class LockBusy(Exception):
    """Someone else holds the lock; the sentence says what is already running."""


@contextmanager
def redis_lock(name: str, *, timeout: float = 600, wait: float = 0) -> Iterator[None]:
    """Hold ``kubemate:lock:<name>`` for the block.

    ``timeout`` bounds how long a crashed holder can block others; ``wait`` is
    how long to wait for a busy lock before raising ``LockBusy``.
    """
    lock = get_redis().lock(f"kubemate:lock:{name}", timeout=timeout, blocking=wait > 0, blocking_timeout=wait or None)
    try:
        acquired = lock.acquire()
    except REDIS_DOWN_ERRORS:
        raise ServiceUnavailable() from None
    if not acquired:
        raise LockBusy(
            _("Another task is already working on %(name)s; try again when it has finished.") % {"name": name}
        )
    try:
        yield
    finally:
        # The lock may have expired and been taken by another holder; releasing it then fails harmlessly.
        with suppress(LockError, *REDIS_DOWN_ERRORS):
            lock.release()
