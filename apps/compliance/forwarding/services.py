"""Audit forwarding: each syslog destination receives every audit event, in chain order, at least once.

``forward`` sends what a destination has not confirmed yet, batch by batch, under a Redis lock per destination (one
sender at a time keeps the order); a batch the receiver did not confirm leaves the cursor where it was, and the
next pass (beat, every 5 s) sends it again. Destinations are changed here, as a person, audited.
"""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.compliance.forwarding import events as formats
from apps.compliance.forwarding import syslog
from apps.compliance.models import SyslogDestination
from apps.core import audit, deferred
from apps.core.locks import LockBusy, redis_lock
from apps.core.models import AuditEvent, AuditHead

logger = logging.getLogger(__name__)
BATCH = 200
# What the form may change; the cursor and the delivery state are the forwarder's.
EDITABLE = ("name", "host", "port", "transport", "ca_pem", "server_name", "format", "enabled")


def receiver(destination: SyslogDestination) -> syslog.Receiver:
    return syslog.Receiver(
        host=destination.host,
        port=destination.port,
        transport=destination.transport,
        ca_pem=destination.ca_pem,
        server_name=destination.server_name,
    )


def head_seq() -> int:
    head = AuditHead.objects.filter(pk=1).only("seq").first()
    return head.seq if head else 0


def forward(destination: SyslogDestination, *, budget_seconds: float = 20) -> int:
    """Deliver the events after the destination's cursor, in order, until none is left, the receiver fails or the
    time budget is spent. Returns how many were confirmed."""
    try:
        with redis_lock(f"syslog-forward:{destination.pk}", timeout=budget_seconds + 30):
            return _forward(destination, budget_seconds)
    except LockBusy:
        return 0  # another worker is sending to this receiver; order needs one sender


def _forward(destination: SyslogDestination, budget_seconds: float) -> int:
    destination.refresh_from_db()
    if not destination.enabled:
        return 0
    target, delivered = receiver(destination), 0
    deadline = time.monotonic() + budget_seconds
    while time.monotonic() < deadline:
        batch = list(AuditEvent.objects.filter(seq__gt=destination.cursor).order_by("seq")[:BATCH])
        if not batch:
            break
        try:
            syslog.deliver(target, [formats.encode(event, destination.format) for event in batch])
        except syslog.SyslogError as exc:
            SyslogDestination.objects.filter(pk=destination.pk).update(
                last_error=deferred.fit(exc.stored, 500),
                failing_since=Coalesce(F("failing_since"), timezone.now()),
            )
            logger.warning(
                "syslog destination did not confirm a batch",
                extra={"destination": destination.name, "from_seq": batch[0].seq, "error": str(exc)},
            )
            return delivered
        # Only from the cursor this pass read: a destination reset meanwhile (edited to start again) wins.
        moved = SyslogDestination.objects.filter(pk=destination.pk, cursor=destination.cursor).update(
            cursor=batch[-1].seq, delivered_at=timezone.now(), failing_since=None, last_error=""
        )
        if not moved:
            return delivered
        destination.cursor = batch[-1].seq
        delivered += len(batch)
    return delivered


def forward_all() -> int:
    from apps.compliance.forwarding import alerts

    delivered = sum(forward(destination) for destination in SyslogDestination.objects.filter(enabled=True))
    alerts.watch()  # a receiver failing for two minutes, or back, is told to the security contacts
    return delivered


def lag(destination: SyslogDestination, head: int | None = None) -> int:
    """Events written but not yet confirmed by this destination."""
    return max((head_seq() if head is None else head) - destination.cursor, 0)


def _described(destination: SyslogDestination) -> dict:
    return {
        "host": destination.host,
        "port": destination.port,
        "transport": destination.transport,
        "format": destination.format,
        "enabled": destination.enabled,
        "verifies_against_own_ca": bool(destination.ca_pem),
    }


def create(user, destination: SyslogDestination, *, from_start: bool, request=None) -> SyslogDestination:
    """Save a new destination. It receives the events written from now on, or the whole log when ``from_start``."""
    with transaction.atomic():
        destination.cursor = 0 if from_start else head_seq()
        destination.save()
        audit.record(
            actor=user,
            action="compliance.syslog_create",
            kind="SyslogDestination",
            name=destination.name,
            detail={**_described(destination), "from_start": from_start},
            request=request,
        )
    return destination


def update(user, destination: SyslogDestination, changed: list[str], *, request=None) -> SyslogDestination:
    with transaction.atomic():
        destination.save(update_fields=[*EDITABLE, "updated_at"])
        audit.record(
            actor=user,
            action="compliance.syslog_update",
            kind="SyslogDestination",
            name=destination.name,
            detail={**_described(destination), "changed": sorted(changed)},
            request=request,
        )
    return destination


def delete(user, destination: SyslogDestination, *, request=None) -> None:
    with transaction.atomic():
        audit.record(
            actor=user,
            action="compliance.syslog_delete",
            kind="SyslogDestination",
            name=destination.name,
            detail=_described(destination),
            request=request,
        )
        destination.delete()


def send_test(user, destination: SyslogDestination, *, request=None) -> AuditEvent:
    """Write an audit event naming the destination; it goes to every destination like any other event."""
    return audit.record(
        actor=user,
        action="compliance.syslog_test",
        kind="SyslogDestination",
        name=destination.name,
        detail={"destination": destination.name},
        request=request,
    )
