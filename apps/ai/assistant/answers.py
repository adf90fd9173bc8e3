"""What the assistant keeps in Redis: answers by (model, knowledge base versions, normalised question), and each
person's question counters. Redis away means no cache and no counting, never a failed answer: ``get`` answers
None, ``put`` and ``count`` do nothing and say so to the caller (``available``)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import unicodedata

from django.conf import settings

from apps.core.redis import REDIS_DOWN_ERRORS, bump, get_redis

logger = logging.getLogger(__name__)

PREFIX = "kubemate:ai:answer:"
COUNTER = "kubemate:ai:asked:"
CACHED_MAX = 64 * 1024  # bytes of one cached answer (text and citations)
_SPACES = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?？!！.。,，;；:：]+$")


def normalise(question: str) -> str:
    """The question as the cache compares it: NFKC (full-width forms folded), case folded, runs of space made one,
    trailing punctuation dropped. "How do I restart Pay?" and "how do i  restart pay" are one question."""
    text = unicodedata.normalize("NFKC", question or "").casefold()
    return _TRAILING.sub("", _SPACES.sub(" ", text).strip())


def key(*, endpoint_id: int, model: str, versions: dict[int, int], question: str) -> str:
    """The cache key. ``versions`` are the knowledge bases actually searched ({id: version}): a changed document
    changes its knowledge base's version and so the key, and people who may read other knowledge bases never share
    a key with those who may not."""
    parts = {
        "endpoint": int(endpoint_id),
        "model": model,
        "kb": sorted([int(k), int(v)] for k, v in versions.items()),
        "q": normalise(question),
    }
    return PREFIX + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


PENDING = "kubemate:ai:pending:"


def remember_key(message_id: int, cache_key: str) -> None:
    """Which cache key an answer being written will be kept under (the stream runs in another request)."""
    with contextlib.suppress(REDIS_DOWN_ERRORS):
        get_redis().set(f"{PENDING}{int(message_id)}", cache_key, ex=3600)


def key_of(message_id: int) -> str:
    try:
        value = get_redis().getdel(f"{PENDING}{int(message_id)}")
    except REDIS_DOWN_ERRORS:
        return ""
    return value.decode() if value else ""


def ttl() -> int:
    return int(settings.KUBEMATE_AI_CACHE_SECONDS)


def get(cache_key: str) -> dict | None:
    """The cached answer ({"text", "citations", "model"}), or None (not cached, or Redis away)."""
    try:
        raw = get_redis().get(cache_key)
    except REDIS_DOWN_ERRORS:
        logger.warning("the answer cache is not reachable")
        return None
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("text"), str) else None


def put(cache_key: str, value: dict) -> bool:
    raw = json.dumps(value, ensure_ascii=False).encode()
    if len(raw) > CACHED_MAX:
        return False
    try:
        get_redis().set(cache_key, raw, ex=ttl())
    except REDIS_DOWN_ERRORS:
        logger.warning("the answer cache is not reachable")
        return False
    return True


def available() -> bool:
    try:
        get_redis().ping()
    except REDIS_DOWN_ERRORS:
        return False
    return True


def count(user_id: int, window: str, seconds: int) -> int | None:
    """Add one to the person's counter for ``window`` ("minute" or "day") and answer the new value; None when
    Redis is away (nothing counted)."""
    value = bump(f"{COUNTER}{window}:{int(user_id)}", seconds)
    if value is None:
        logger.warning("the question counters are not reachable")
    return value


def uncount(user_id: int, window: str) -> None:
    """Give back one question (it was refused by another limit)."""
    with contextlib.suppress(REDIS_DOWN_ERRORS):
        get_redis().decr(f"{COUNTER}{window}:{int(user_id)}")
