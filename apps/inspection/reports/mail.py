"""Reports by email: a scheduled run's report (``send_run_report``) and the weekly report (``send_weekly_report``),
each an HTML and text summary with the PDF attached, through Django's mail (settings EMAIL_*).

Each recipient reads the email in their language: a Kubemate user with that address in the language they chose
(accounts' Preference.language), anyone else in the schedule's. The PDF is made once per language.

One message per recipient, not one per language with the group in Bcc: each message is addressed To the person
(bank mail gateways score Bcc-only mail as bulk, some refuse mail without a To), nobody learns who else receives the
report, and a refused address or a failure halfway stops nobody else: the addresses already served are kept in
Redis (apps/core/delivered.py) so that a retry sends only to the others. All go over one SMTP connection.

The task (tasks.email_run) retries ``SendFailed`` (the server could not be reached, or answered 4xx) with backoff
and calls ``give_up_*`` after the last try. A 5xx answer (the address or the login refused) will not change by
trying again: the row is marked failed at once. ``email_error`` is a deferred sentence naming the server and its
answer, never the SMTP password. A row already sent is never sent again.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import zoneinfo
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db.models import F
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.accounts.models import Preference
from apps.core.deferred import N_, Failure, fit, render, sentence_of
from apps.core.deferred import text as D
from apps.core.delivered import Delivered
from apps.core.locks import LockBusy, redis_lock
from apps.inspection.models import Run, WeeklyReport
from apps.inspection.reports import build, pdf, weekly

logger = logging.getLogger(__name__)

SUPPORTED = {code for code, _name in settings.LANGUAGES}


class SendFailed(Failure):
    """The email could not be sent now; trying again later may work. The sentence says what the server did."""


class Refused(Failure):
    """The mail server refused for good (5xx); trying again will not help."""


# Who reads which language ------------------------------------------------------------------------------------------


def user_languages(addresses: list[str]) -> dict[str, str]:
    """The language each active Kubemate user with one of ``addresses`` chose, by lower-cased address."""
    if not any(f.name == "language" for f in Preference._meta.concrete_fields):
        return {}  # accounts keeps no language per person yet: every recipient reads the schedule's
    rows = (
        Preference.objects.annotate(address=Lower("user__email"))
        .filter(user__is_active=True, address__in=[a.lower() for a in addresses])
        .exclude(language="")
        .order_by("user_id")
        .values_list("address", "language")
    )
    found: dict[str, str] = {}
    for address, language in rows:
        if language in SUPPORTED:
            found.setdefault(address, language)
    return found


def language_groups(addresses: list[str], default: str) -> dict[str, list[str]]:
    """Recipients by the language they read, each group sorted."""
    default = default if default in SUPPORTED else settings.LANGUAGE_CODE
    chosen = user_languages(addresses)
    groups: dict[str, list[str]] = defaultdict(list)
    for address in sorted(set(addresses)):
        groups[chosen.get(address.lower(), default)].append(address)
    return dict(groups)


# Delivery -------------------------------------------------------------------------------------------------------


@dataclass
class Letter:
    subject: str
    text: str
    html: str
    filename: str
    pdf: bytes


def _server() -> str:
    return f"{settings.EMAIL_HOST or 'localhost'}:{settings.EMAIL_PORT}"


def _reply(exc: smtplib.SMTPResponseException) -> str:
    said = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    if settings.EMAIL_HOST_PASSWORD:
        said = said.replace(settings.EMAIL_HOST_PASSWORD, "***")
    return " ".join(said.split())[:200]


def _failure(exc: Exception, address: str = "") -> Failure:
    """The sentence for what went wrong, as SendFailed (try again) or Refused (final)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, said = next(iter(exc.recipients.values()), (0, b""))
        reply = smtplib.SMTPResponseException(code, said)
        sentence = D(
            N_("The mail server %(server)s refused the address %(address)s: %(code)s %(reply)s"),
            server=_server(),
            address=address,
            code=code,
            reply=_reply(reply),
        )
        return (Refused if code >= 500 else SendFailed)(sentence)
    if isinstance(exc, smtplib.SMTPResponseException):
        sentence = D(
            N_("The mail server %(server)s refused the email: %(code)s %(reply)s"),
            server=_server(),
            code=exc.smtp_code,
            reply=_reply(exc),
        )
        return (Refused if exc.smtp_code >= 500 else SendFailed)(sentence)
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    if isinstance(exc, socket.timeout | TimeoutError):
        reason = "timeout"
    return SendFailed(
        D(N_("The mail server %(server)s could not be reached: %(error)s"), server=_server(), error=reason)
    )


def _message(letter: Letter, address: str) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=letter.subject, body=letter.text, from_email=settings.DEFAULT_FROM_EMAIL, to=[address]
    )
    message.attach_alternative(letter.html, "text/html")
    message.attach(letter.filename, letter.pdf, "application/pdf")
    return message


def deliver(kind: str, pk: int, groups: dict[str, list[str]], compose: Callable[[str], Letter]) -> int:
    """Send each group's letter (composed once per language) to each of its addresses not served yet; the number
    sent now. A transient failure raises SendFailed at once; an address refused for good is skipped and Refused is
    raised once the others are served. What was sent stays sent."""
    delivered = Delivered(f"kubemate:inspection:email:{kind}:{pk}")  # the addresses already served for one row
    done = delivered.all()
    sent = 0
    refused: list[Failure] = []
    connection = None
    try:
        for language, addresses in sorted(groups.items()):
            waiting = [a for a in addresses if a not in done]
            if not waiting:
                continue
            letter = compose(language)
            if connection is None:
                connection = get_connection(fail_silently=False)
                try:
                    connection.open()
                except (smtplib.SMTPException, OSError) as exc:
                    connection = None
                    raise _failure(exc) from None
            for address in waiting:
                try:
                    connection.send_messages([_message(letter, address)])
                except (smtplib.SMTPException, OSError) as exc:
                    failure = _failure(exc, address)
                    if isinstance(exc, smtplib.SMTPRecipientsRefused) and isinstance(failure, Refused):
                        refused.append(failure)  # this address, for good: the others still get theirs
                        continue
                    raise failure from None
                delivered.add(address)
                sent += 1
    finally:
        if connection is not None:
            try:
                connection.close()
            except (smtplib.SMTPException, OSError):
                logger.warning("the SMTP connection did not close cleanly")
    if refused:
        raise refused[0]
    return sent


def _public_link(view: str, pk: int) -> str:
    base = getattr(settings, "KUBEMATE_PUBLIC_URL", "")
    return f"{base}{reverse(view, args=[pk])}" if base else ""


def _send(model, kind: str, pk: int, recipients_of, compose_for) -> None:
    """The common life of a report's email: claim, compose per language, deliver, record."""
    try:
        with redis_lock(f"inspection.email.{kind}.{pk}", timeout=900):
            row = recipients_of(pk)
            if row is None:
                return
            obj, recipients, language, zone = row
            if obj.email_state == Run.Email.SENT:
                return
            if not recipients:
                model.objects.filter(pk=pk).update(email_state=Run.Email.NONE)
                return
            model.objects.filter(pk=pk).update(email_state=Run.Email.PENDING, email_attempts=F("email_attempts") + 1)
            try:
                compose = compose_for(obj)

                def letter(lang: str) -> Letter:
                    with translation.override(lang), timezone.override(zone):
                        try:
                            return compose(lang)
                        except pdf.PdfUnavailable:
                            raise
                        except Exception as exc:  # a report that cannot be written is final: say so, do not retry
                            logger.exception("report email could not be written", extra={"kind": kind, "pk": pk})
                            raise Refused(
                                D(
                                    N_("The report could not be written for the email (%(error)s)."),
                                    error=type(exc).__name__,
                                )
                            ) from exc

                deliver(kind, pk, language_groups(recipients, language), letter)
            except (Refused, pdf.PdfUnavailable) as exc:
                _record_failure(model, pk, exc)
                return
            except SendFailed as exc:
                model.objects.filter(pk=pk).update(email_error=fit(sentence_of(exc), 500))
                raise
            model.objects.filter(pk=pk).update(email_state=Run.Email.SENT, email_error="", emailed_at=timezone.now())
    except LockBusy:
        logger.info("report email already being sent", extra={"kind": kind, "pk": pk})


def _record_failure(model, pk: int, exc: BaseException) -> None:
    sentence = sentence_of(exc) if isinstance(exc, Failure) else D(N_("The email could not be sent."))
    model.objects.filter(pk=pk).update(email_state=Run.Email.FAILED, email_error=fit(sentence, 500))
    logger.warning("report email failed", extra={"error": render(sentence)})


# A run's report -----------------------------------------------------------------------------------------------


def _run_recipients(pk: int):
    run = Run.objects.select_related("template", "schedule", "schedule__owner", "actor").filter(pk=pk).first()
    if run is None or run.schedule is None or run.status != Run.Status.FINISHED:
        return None
    schedule = run.schedule
    return run, list(schedule.recipients), schedule.language, _zone(schedule.timezone)


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def compose_run(run: Run) -> Callable[[str], Letter]:
    """The run's letter in a language: the report as the schedule's owner reads it (the run acted as them)."""
    reader = run.actor or run.schedule.owner
    report = build.build_report(run, reader, limit=pdf.PDF_FINDINGS)
    link = _public_link("inspection:run_detail", run.pk)

    def compose(language: str) -> Letter:
        template = render(run.template.name)
        day = timezone.localtime(run.finished_at or run.created_at).strftime("%Y-%m-%d")
        context = {
            "report": report,
            "run": run,
            "template_name": template,
            "day": day,
            "lines": build.summary_lines(report),
            "head": build.summary_lines(report, worst=False),
            "worst": report.worst_new(10),
            "link": link,
        }
        subject = _("Inspection report: %(template)s, %(day)s") % {"template": template, "day": day}
        return Letter(
            subject=f"[Kubemate] {subject}",
            text=render_to_string("inspection/report/email.txt", context),
            html=render_to_string("inspection/report/email.html", context),
            filename=pdf.filename(run),
            pdf=pdf.render_pdf(report, language),
        )

    return compose


def send_run_report(run_id: int) -> None:
    """Email the report of a scheduled run to the schedule's recipients; SendFailed when it may work later."""
    _send(Run, "run", run_id, _run_recipients, compose_run)


def give_up_run(run_id: int, exc: BaseException) -> None:
    """The last try failed: the run's email is failed, with the sentence of the last failure."""
    _record_failure(Run, run_id, exc)


# The weekly report ----------------------------------------------------------------------------------------------


def _weekly_recipients(pk: int):
    report = WeeklyReport.objects.select_related("schedule").filter(pk=pk).first()
    if report is None or report.schedule is None:
        return None
    schedule = report.schedule
    return report, list(schedule.recipients), schedule.language, _zone(schedule.timezone)


def compose_weekly(report: WeeklyReport) -> Callable[[str], Letter]:
    link = _public_link("inspection:weekly_detail", report.pk)

    def compose(language: str) -> Letter:
        body = weekly.page_context(report)
        context = {
            "report": report,
            "weekly": body,
            "lines": weekly.summary_lines(report),
            "link": link,
            "start": timezone.localtime(report.period_start).strftime("%Y-%m-%d"),
            "end": timezone.localtime(report.period_end).strftime("%Y-%m-%d"),
        }
        subject = _("Weekly report: %(start)s to %(end)s") % {"start": context["start"], "end": context["end"]}
        return Letter(
            subject=f"[Kubemate] {subject}",
            text=render_to_string("inspection/weekly/email.txt", context),
            html=render_to_string("inspection/weekly/email.html", context),
            filename=weekly.filename(report),
            pdf=weekly.render_pdf(report, language),
        )

    return compose


def send_weekly_report(report_id: int) -> None:
    _send(WeeklyReport, "weekly", report_id, _weekly_recipients, compose_weekly)


def give_up_weekly(report_id: int, exc: BaseException) -> None:
    _record_failure(WeeklyReport, report_id, exc)
