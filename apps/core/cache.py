"""The Redis cache, degrading to "nothing cached" while Redis is down.

Sessions (cached_db) read the cache first and PostgreSQL on a miss, the capacity figures are recomputed
on a miss: with every cache failure turned into a miss (and writes skipped), pages keep rendering from
PostgreSQL during a Redis outage instead of answering 500. After a failure the cache is skipped for a few
seconds, so a page with several cache calls does not wait for Redis on each. Failures are logged at most
once a minute.
"""

from __future__ import annotations

import logging
import time

from django.core.cache.backends.redis import RedisCache

from apps.core.redis import REDIS_DOWN_ERRORS

logger = logging.getLogger(__name__)
SKIP_SECONDS = 5


class _Breaker:
    down_until = 0.0
    warned_at = 0.0


def _guarded(operation: str, fallback):
    def method(self, *args, **kwargs):
        if time.monotonic() < _Breaker.down_until:
            return fallback(*args, **kwargs)
        try:
            return getattr(super(ResilientRedisCache, self), operation)(*args, **kwargs)
        except REDIS_DOWN_ERRORS as exc:
            now = time.monotonic()
            _Breaker.down_until = now + SKIP_SECONDS
            if now - _Breaker.warned_at > 60:
                _Breaker.warned_at = now
                extra = {"operation": operation, "error": str(exc)}
                logger.warning("cache unavailable, serving without it", extra=extra)
            return fallback(*args, **kwargs)

    method.__name__ = operation
    return method


class ResilientRedisCache(RedisCache):
    """Django's RedisCache; each operation answers its "nothing there" value when Redis is not reachable."""

    add = _guarded("add", lambda *a, **k: False)
    get = _guarded("get", lambda key, default=None, version=None: default)
    set = _guarded("set", lambda *a, **k: None)
    touch = _guarded("touch", lambda *a, **k: False)
    delete = _guarded("delete", lambda *a, **k: False)
    get_many = _guarded("get_many", lambda *a, **k: {})
    has_key = _guarded("has_key", lambda *a, **k: False)
    set_many = _guarded("set_many", lambda data, timeout=None, version=None: list(data))
    delete_many = _guarded("delete_many", lambda *a, **k: None)
    clear = _guarded("clear", lambda *a, **k: None)
