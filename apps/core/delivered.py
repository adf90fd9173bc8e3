"""Which addresses a mail already reached, kept in Redis for a week, so that a task sending one message per reader
and retried after a failure halfway sends only to the others (apps/inspection/reports/mail.py, apps/compliance/
mail.py)."""

from __future__ import annotations

from datetime import timedelta

from apps.core.redis import get_redis

DELIVERED_DAYS = 7


class Delivered:
    def __init__(self, key: str) -> None:
        self.key = key
        self.redis = get_redis()

    def all(self) -> set[str]:
        return {v.decode() for v in self.redis.smembers(self.key)}

    def add(self, address: str) -> None:
        self.redis.sadd(self.key, address)
        self.redis.expire(self.key, int(timedelta(days=DELIVERED_DAYS).total_seconds()))
