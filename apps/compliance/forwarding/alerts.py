"""A SIEM receiver that stops receiving is itself a security event: the bank's security team must hear of it.

``watch`` (after each forwarding pass) mails the security contacts (KUBEMATE_SECURITY_CONTACTS) and the people
holding ``audit.forward`` once a destination has failed for ``ALERT_AFTER``, and once more when it receives again;
both are audit events. The dashboard shows the failing destinations to the same people (``failing``).
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.accounts import access
from apps.accounts.capabilities import AUDIT_FORWARD
from apps.compliance import mail
from apps.compliance.models import SyslogDestination
from apps.core import audit
from apps.core.deferred import N_, render
from apps.core.models import AuditEvent, AuditHead

ALERT_AFTER = timedelta(minutes=2)
SUBJECTS = {
    "failing": N_("The SIEM receiver %(name)s has not received the audit log since %(since)s"),
    "recovered": N_("The SIEM receiver %(name)s receives the audit log again"),
}
BODIES = {
    "failing": N_(
        "Kubemate could not deliver audit events to %(name)s (%(address)s) since %(since)s: %(error)s "
        "%(waiting)s events wait and will be sent in order when it answers. %(link)s"
    ),
    "recovered": N_("%(name)s (%(address)s) receives the audit log again; nothing was lost. %(link)s"),
}


def failing(user) -> list[SyslogDestination]:
    """The destinations failing for longer than ALERT_AFTER, for a person who may see them."""
    if not access.may(user, AUDIT_FORWARD):
        return []
    since = timezone.now() - ALERT_AFTER
    return list(SyslogDestination.objects.filter(enabled=True, failing_since__lte=since))


def watch(now=None) -> int:
    """Report destinations that started failing or came back (beat, after forwarding); how many were reported."""
    now = now or timezone.now()
    reported = 0
    # A receiver switched off is no longer watched: its failure report is cleared without a "back" mail, and
    # switched on again while still failing it is reported again.
    SyslogDestination.objects.filter(enabled=False, alerted_at__isnull=False).update(alerted_at=None)
    failing = SyslogDestination.objects.filter(enabled=True, failing_since__lte=now - ALERT_AFTER)
    for destination in failing.filter(alerted_at__isnull=True):
        if SyslogDestination.objects.filter(pk=destination.pk, alerted_at__isnull=True).update(alerted_at=now):
            _report(destination, "failing")
            reported += 1
    for destination in SyslogDestination.objects.filter(failing_since__isnull=True, alerted_at__isnull=False):
        if SyslogDestination.objects.filter(pk=destination.pk, alerted_at__isnull=False).update(alerted_at=None):
            _report(destination, "recovered")
            reported += 1
    return reported


def _report(destination: SyslogDestination, event: str) -> None:
    audit.record(
        actor=None,
        action=f"compliance.siem.{event}",
        result=AuditEvent.Result.FAILURE if event == "failing" else AuditEvent.Result.SUCCESS,
        kind="SyslogDestination",
        name=destination.name,
        detail={"cursor": destination.cursor, **({"error": destination.last_error} if event == "failing" else {})},
    )
    mail_destination.delay(destination.pk, event)


def send(destination_id: int, event: str) -> int:
    destination = SyslogDestination.objects.get(pk=destination_id)
    people = list(access.platform_holders(AUDIT_FORWARD, with_email=True))
    head = AuditHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0  # services.lag's (it imports us)
    waiting = max(head - destination.cursor, 0)
    address = mail.link("compliance:destination_list")

    def compose() -> tuple[str, str]:
        since = destination.failing_since
        values = {
            "name": destination.name,
            "address": f"{destination.host}:{destination.port}",
            "since": timezone.localtime(since).strftime("%Y-%m-%d %H:%M") if since else "",
            "error": render(destination.last_error),
            "waiting": waiting,
            "link": address,
        }
        return render(SUBJECTS[event]) % values, render(BODIES[event]) % values

    return mail.send_each(mail.readers(people, getattr(settings, "KUBEMATE_SECURITY_CONTACTS", [])), compose)


@shared_task(name="compliance.mail_siem", **mail.RETRY)
def mail_destination(destination_id: int, event: str) -> int:
    return send(destination_id, event)
