"""Change requests by e-mail: approvers learn a request waits, the maker learns the decision, the security contact
learns every break-glass change. Each person reads the mail in the language they chose in the console
(accounts' Preference.language), others in the installation's. Links use KUBEMATE_PUBLIC_URL when it is set."""

from __future__ import annotations

import smtplib

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from apps.accounts import access
from apps.accounts.capabilities import CHANGES_APPROVE
from apps.accounts.models import Preference
from apps.compliance.models import ChangeRequest
from apps.core.deferred import N_, render

SUPPORTED = {code for code, _name in settings.LANGUAGES}
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
    people = get_user_model().objects.filter(is_active=True).exclude(email="").exclude(pk=exclude_pk)
    return [person for person in people if access.may(person, CHANGES_APPROVE)]


def security_contacts() -> list[str]:
    return [a.strip() for a in getattr(settings, "KUBEMATE_SECURITY_CONTACTS", []) if a.strip()]


def recipients(cr: ChangeRequest, event: str) -> dict[str, str]:
    """Address -> the language its reader reads."""
    people = []
    addresses = []
    if event == "requested":
        people = approvers(exclude_pk=cr.maker_id)
    elif event == "break_glass":
        people = approvers(exclude_pk=cr.maker_id)
        addresses = security_contacts()
    elif cr.maker.email:
        people = [cr.maker]
    chosen = dict(Preference.objects.filter(user__in=people).exclude(language="").values_list("user_id", "language"))
    found = {}
    for person in people:
        language = chosen.get(person.pk, settings.LANGUAGE_CODE)
        found[person.email] = language if language in SUPPORTED else settings.LANGUAGE_CODE
    for address in addresses:
        found.setdefault(address, settings.LANGUAGE_CODE)
    return found


def link(cr: ChangeRequest) -> str:
    path = reverse("compliance:change_detail", args=[cr.pk])
    return f"{settings.KUBEMATE_PUBLIC_URL}{path}" if settings.KUBEMATE_PUBLIC_URL else path


def send(request_id: int, event: str) -> int:
    """Mail ``event`` of change request ``request_id`` to whoever reads it; how many messages were sent."""
    cr = ChangeRequest.objects.select_related("maker", "decided_by", "cluster").get(pk=request_id)
    messages = []
    for address, language in sorted(recipients(cr, event).items()):
        with translation.override(language):
            subject = render(SUBJECTS[event]) % {
                "number": cr.pk,
                "summary": render(cr.summary),
                "maker": cr.maker.get_username(),
            }
            body = render_to_string(
                "compliance/change_mail.txt", {"cr": cr, "event": event, "link": link(cr), "language": language}
            )
        messages.append(EmailMessage(subject[:200], body, to=[address]))
    if messages:
        with get_connection() as connection:
            connection.send_messages(messages)
    return len(messages)


@shared_task(
    name="compliance.mail_change",
    ignore_result=True,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=30,
    max_retries=8,
)
def mail_change(request_id: int, event: str) -> int:
    """The mail of one change request event, sent by a worker (retried while the mail server is away)."""
    return send(request_id, event)
