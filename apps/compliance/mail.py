"""The compliance app's mail: one message per reader, in the language each reader chose in the console
(accounts' Preference.language; the installation's for an address that is no account), over one SMTP connection.
Links point at KUBEMATE_PUBLIC_URL when it is set. The tasks that send are retried while the mail server is away
(``RETRY``)."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.urls import reverse
from django.utils import translation

from apps.accounts.models import Preference

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
    """One message per address of ``to``, composed (subject, body) in its reader's language; how many were sent."""
    messages = []
    for address, language in sorted(to.items()):
        with translation.override(language):
            subject, body = compose()
        messages.append(EmailMessage(subject[:200], body, to=[address]))
    if messages:
        with get_connection() as connection:
            connection.send_messages(messages)
    return len(messages)
