"""Change requests by e-mail: approvers learn a request waits, the maker learns the decision, the security contact
learns every break-glass change. Each person reads the mail in the language they chose in the console
(accounts' Preference.language), others in the installation's. Links use KUBEMATE_PUBLIC_URL when it is set."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.template.loader import render_to_string

from apps.accounts import access
from apps.accounts.capabilities import CHANGES_APPROVE
from apps.compliance import mail
from apps.compliance.models import ChangeRequest
from apps.core.deferred import N_, render

SUBJECTS = {
    "requested": N_("Change request #%(number)s waits for your approval: %(summary)s"),
    "approved": N_("Change request #%(number)s was approved and applied: %(summary)s"),
    "rejected": N_("Change request #%(number)s was rejected: %(summary)s"),
    "stale": N_("Change request #%(number)s was refused as stale: %(summary)s"),
    "failed": N_("Change request #%(number)s was approved but applying failed: %(summary)s"),
    "expired": N_("Change request #%(number)s expired: %(summary)s"),
    "break_glass": N_("BREAK GLASS: %(maker)s applied change #%(number)s without approval: %(summary)s"),
}


def approvers(exclude_pk: int | None = None) -> list:
    return list(access.platform_holders(CHANGES_APPROVE, with_email=True).exclude(pk=exclude_pk))


def security_contacts() -> list[str]:
    return [a.strip() for a in getattr(settings, "KUBEMATE_SECURITY_CONTACTS", []) if a.strip()]


def recipients(cr: ChangeRequest, event: str) -> dict[str, str]:
    """Address -> the language its reader reads."""
    if event == "requested":
        return mail.readers(approvers(exclude_pk=cr.maker_id))
    if event == "break_glass":
        return mail.readers(approvers(exclude_pk=cr.maker_id), security_contacts())
    return mail.readers([cr.maker])


def send(request_id: int, event: str) -> int:
    """Mail ``event`` of change request ``request_id`` to whoever reads it; how many messages were sent."""
    cr = ChangeRequest.objects.select_related("maker", "decided_by", "cluster").get(pk=request_id)
    address = mail.link("compliance:change_detail", cr.pk)

    def compose() -> tuple[str, str]:
        values = {"number": cr.pk, "summary": render(cr.summary), "maker": cr.maker.get_username()}
        body = render_to_string("compliance/change_mail.txt", {"cr": cr, "event": event, "link": address})
        return render(SUBJECTS[event]) % values, body

    return mail.send_each(recipients(cr, event), compose)


@shared_task(name="compliance.mail_change", **mail.RETRY)
def mail_change(request_id: int, event: str) -> int:
    """The mail of one change request event, sent by a worker (retried while the mail server is away)."""
    return send(request_id, event)
