"""Writing and verifying the audit log.

``record`` must be called inside the transaction of the change it describes,
so the change and its event commit or roll back together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone

from apps.core.models import AuditEvent, AuditHead

HASHED_FIELDS = (
    "seq",
    "created_at",
    "actor_id",
    "actor_name",
    "action",
    "result",
    "cluster",
    "namespace",
    "object_kind",
    "object_name",
    "detail",
    "ip",
    "prev_hash",
)


def _canonical(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def event_hash(event: AuditEvent) -> str:
    payload = {name: _canonical(getattr(event, name)) for name in HASHED_FIELDS}
    if event.reason:  # hashed when given; events written before reasons existed keep their hashes
        payload["reason"] = event.reason
    data = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


REASON_MAX = 500


def reason_of(request) -> str:
    """The reason typed in the confirmation dialog (the form field ``reason``): one line, at most 500 characters."""
    if request is None or getattr(request, "method", "") != "POST":
        return ""
    try:
        value = request.POST.get("reason", "")
    except (SuspiciousOperation, MultiPartParserError, OSError, ValueError):
        # An unreadable body: the view answers for it; the audit row has no reason.
        return ""
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in str(value)[: REASON_MAX * 2]).split())
    return cleaned[:REASON_MAX]


def record(
    *,
    actor,
    action: str,
    result: str = AuditEvent.Result.SUCCESS,
    cluster: str = "",
    namespace: str = "",
    kind: str = "",
    name: str = "",
    detail: dict | None = None,
    request=None,
    actor_name: str | None = None,
    reason: str | None = None,
) -> AuditEvent:
    """Append one event to the chain. ``detail`` must never hold secrets.

    ``reason`` defaults to the one the person gave with the request (``reason_of``)."""
    with transaction.atomic():
        head, _created = AuditHead.objects.select_for_update().get_or_create(pk=1)
        event = AuditEvent(
            seq=head.seq + 1,
            created_at=timezone.now(),
            actor_id=getattr(actor, "pk", None),
            actor_name=actor_name or (getattr(actor, "username", "") or "system"),
            action=action,
            result=result,
            cluster=str(cluster or ""),
            namespace=namespace or "",
            object_kind=kind,
            object_name=name,
            detail=detail or {},
            ip=client_ip(request),
            reason=(reason if reason is not None else reason_of(request))[:REASON_MAX],
            prev_hash=head.hash,
        )
        event.hash = event_hash(event)
        event.save()
        head.seq, head.hash = event.seq, event.hash
        head.save(update_fields=["seq", "hash"])
    return event


@dataclass(frozen=True)
class Problem:
    seq: int
    sentence: str


def verify(using: str | None = None) -> Iterator[Problem]:
    """Walk the chain from seq 1 and yield every break: altered, removed or re-ordered events. ``using`` names
    another database connection (a restored copy checked before it replaces the live database)."""
    expected_seq, prev = 1, "0" * 64
    for event in AuditEvent.objects.using(using).order_by("seq").iterator(chunk_size=2000):
        if event.seq != expected_seq:
            yield Problem(expected_seq, f"events {expected_seq} to {event.seq - 1} are missing")
        if event.prev_hash != prev:
            yield Problem(event.seq, f"event {event.seq} does not follow the event before it")
        if event_hash(event) != event.hash:
            yield Problem(event.seq, f"event {event.seq} was altered after it was written")
        expected_seq, prev = event.seq + 1, event.hash
    head = AuditHead.objects.using(using).filter(pk=1).first()
    last_seq = expected_seq - 1
    if head is not None and (head.seq != last_seq or head.hash != prev):
        yield Problem(head.seq, f"the newest events after {last_seq} (up to {head.seq}) are missing")
