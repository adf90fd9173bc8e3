"""The compliance app's mail: one message per reader, in the language each reader chose in the console
(accounts' Preference.language; the installation's for an address that is no account), over one SMTP connection.
Links point at KUBEMATE_PUBLIC_URL when it is set. The tasks that send are retried while the mail server is away
(``RETRY``)."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Iterable

from celery import current_task
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.urls import reverse
from django.utils import translation

from apps.accounts.models import Preference
from apps.core.delivered import Delivered

logger = logging.getLogger(__name__)

SUPPORTED = {code for code, _name in settings.LANGUAGES}
# The options of every compliance mail task.
RETRY = {
    "ignore_result": True,
    "autoretry_for": (OSError, smtplib.SMTPException),
    "retry_backoff": 30,
    "max_retries": 8,
}


def readers(people: Iterable, addresses: Iterable[str] = ()) -> dict[str, str]:
    """Address -> language, for ``people`` (accounts with an address) and plain ``addresses``."""
    people = [person for person in people if person.email]
    chosen = dict(Preference.objects.filter(user__in=people).exclude(language="").values_list("user_id", "language"))
    found = {}
    for person in people:
        language = chosen.get(person.pk, settings.LANGUAGE_CODE)
        found[person.email] = language if language in SUPPORTED else settings.LANGUAGE_CODE
    for address in addresses:
        if address.strip():
            found.setdefault(address.strip(), settings.LANGUAGE_CODE)
    return found


def link(view: str, *args) -> str:
    path = reverse(view, args=args)
    return f"{settings.KUBEMATE_PUBLIC_URL}{path}" if settings.KUBEMATE_PUBLIC_URL else path


def send_each(to: dict[str, str], compose: Callable[[], tuple[str, str]]) -> int:
    """One message per address of ``to``, composed (subject, body) in its reader's language; how many were sent.

    Inside a task, the addresses served are remembered under its id (a retry keeps it), so a retry after a failure
    halfway sends only to the others. An address the server refuses for good (5xx) is logged and skipped: trying
    again would not help, and it must not hold back the rest."""
    task_id = getattr(getattr(current_task, "request", None), "id", None)
    delivered = Delivered(f"kubemate:compliance:mail:{task_id}") if task_id else None
    served = delivered.all() if delivered else set()
    sent = 0
    waiting = [(address, language) for address, language in sorted(to.items()) if address not in served]
    if not waiting:
        return 0
    with get_connection() as connection:
        for address, language in waiting:
            with translation.override(language):
                subject, body = compose()
            try:
                connection.send_messages([EmailMessage(subject[:200], body, to=[address])])
                sent += 1
            except smtplib.SMTPRecipientsRefused:
                logger.warning("the mail server refused %s for good; not sent", address)
            if delivered:
                delivered.add(address)
    return sent
