"""One Redis client per process, shared by locks, heartbeats and health checks; and what "Redis is down" means.

Redis carries the task queue, the locks and the cache. When it is down, pages still render (sessions and
everything else read PostgreSQL, the cache answers "nothing cached": apps/core/cache.py), while work that
needs Redis (queueing a job, taking a lock) raises ``ServiceUnavailable``; apps.core.middleware turns that
into a sentence (503) wherever it is raised.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings
from django.utils.translation import gettext as _

# What a Redis outage raises in redis-py (refused, reset, timed out, name not resolving).
REDIS_DOWN_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class ServiceUnavailable(Exception):
    """Work that needs Redis (the task queue, a lock) while Redis is not reachable; the message is the sentence."""

    def __init__(self, message: str = ""):
        super().__init__(
            message
            or _(
                "Kubemate's task queue (Redis) is not reachable, so this cannot start now. Pages still show what "
                "is known; try again in a minute, and tell your administrator if it lasts."
            )
        )


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=5)


def require_redis() -> None:
    """Raise ServiceUnavailable unless Redis answers a ping (about a millisecond when it is up)."""
    try:
        get_redis().ping()
    except REDIS_DOWN_ERRORS:
        raise ServiceUnavailable() from None


def bump(key: str, seconds: int) -> int | None:
    """Add one to the counter ``key`` and answer its new value; the counter lives ``seconds`` from its first bump.
    None when Redis is away (nothing counted): each caller says what an uncounted event means for it."""
    try:
        pipe = get_redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, seconds, nx=True)
        value, _expired = pipe.execute()
    except REDIS_DOWN_ERRORS:
        return None
    return int(value)
