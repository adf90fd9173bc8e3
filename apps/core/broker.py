"""The one door to the task queue's storage: which queued or unacknowledged messages Redis still holds.

Celery's Redis transport (kombu) keeps a queue as Redis lists (``celery``, and ``celery\\x06\\x16<priority>``
for the other priority steps) and the messages delivered but not yet acknowledged in the hash ``unacked``.
Each message is JSON whose headers carry the task id; Kubemate sends a Job's task with the Job's id as task id
(core.jobs), so "is this job's message still somewhere" is a substring search, bounded by ``SCAN_LIMIT``
messages per key. A Redis restart without persistence empties all of it: core.jobs.resend_lost_jobs then
queues those jobs again.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings

SCAN_LIMIT = 20_000
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
UNACKED = "unacked"


@lru_cache(maxsize=1)
def _broker() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=5)


def queue_keys() -> list[str]:
    queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
    return [queue, *(f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS if step)]


def held(task_ids: set[str]) -> set[str]:
    """The ids among ``task_ids`` whose message is still queued or delivered-but-unacknowledged."""
    if not task_ids:
        return set()
    client, found = _broker(), set()

    def look(raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        found.update(task_id for task_id in task_ids if task_id in text)

    for key in queue_keys():
        for raw in client.lrange(key, 0, SCAN_LIMIT - 1):
            look(raw)
    for count, (_tag, raw) in enumerate(client.hscan_iter(UNACKED, count=500)):
        if count >= SCAN_LIMIT:
            break
        look(raw)
    return found
