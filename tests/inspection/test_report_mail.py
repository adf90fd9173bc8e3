"""A scheduled run's report by email, through Django's SMTP backend to a real SMTP server (aiosmtpd) on loopback:
one message per recipient with the PDF attached, in the recipient's language; sent once however often the task runs;
a server that cannot be reached leaves the run's email failed after the task's retries, in a sentence; an address
or a login refused for good fails at once, the others still served, the password never in the sentence."""

from __future__ import annotations

import email
import email.policy
import threading

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from django.urls import reverse

from apps.accounts.models import Preference
from apps.core.deferred import render
from apps.inspection import tasks
from apps.inspection.models import Run, Schedule
from apps.inspection.reports import mail
from tests.factories import UserFactory
from tests.inspection.test_report_build import history, report_checks  # noqa: F401 (the checks the runs name)
from tests.plugins.alertmanager import Mailbox
from tests.plugins.served import free_port

pytestmark = pytest.mark.django_db

OUTSIDER = "audit@partner.example"


@pytest.fixture
def mailbox(settings):
    box = Mailbox()
    _smtp(settings, box.port)
    yield box
    box.stop()


def _smtp(settings, port: int, *, user: str = "", password: str = "") -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = user, password
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "kubemate@bank.example"


def scheduled(recipients: list[str], language: str = "zh-hans") -> Run:
    """The second run of the report history, as a schedule's run mailing ``recipients``."""
    h = history()
    schedule = Schedule.objects.create(
        name="morning",
        template=h["template"],
        cron="0 7 * * *",
        timezone="Asia/Shanghai",
        recipients=recipients,
        language=language,
        owner=h["actor"],
    )
    Run.objects.filter(pk=h["second"].pk).update(schedule=schedule, email_state=Run.Email.PENDING)
    return Run.objects.get(pk=h["second"].pk)


def _attachment(message: email.message.EmailMessage) -> tuple[str, bytes]:
    parts = list(message.iter_attachments())
    assert len(parts) == 1
    return parts[0].get_filename(), parts[0].get_content()


def _html(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def test_each_recipient_gets_the_report_with_its_pdf_in_the_schedules_language(mailbox, settings):
    settings.KUBEMATE_PUBLIC_URL = "https://kubemate.bank.example"
    colleague = UserFactory(email="Lin@Bank.example")  # a Kubemate user who chose no language: the schedule's
    run = scheduled([OUTSIDER, "lin@bank.example"])
    mail.send_run_report(run.pk)
    assert sorted(r[0] for r in mailbox.recipients) == sorted([OUTSIDER, "lin@bank.example"])
    assert len(mailbox.messages) == 2
    for message in mailbox.messages:
        assert message["To"] in (OUTSIDER, "lin@bank.example")  # addressed to the person, nobody else listed
        name, data = _attachment(message)
        day = run.finished_at.strftime("%Y-%m-%d")
        assert name == f"inspection-report-test-{day}.pdf" and data.startswith(b"%PDF-")
        html, text = _html(message), Mailbox.text(message)
        assert "集群" in html and "Cluster" not in html  # the domains' names, in Chinese
        assert "Pod payments/api-c" in html and "Pod payments/api-c" in text  # the worst new finding
        assert "https://kubemate.bank.example" + reverse("inspection:run_detail", args=[run.pk]) in html
    run.refresh_from_db()
    assert run.email_state == Run.Email.SENT and run.emailed_at is not None
    assert run.email_attempts == 1 and run.email_error == ""
    assert colleague.email == "Lin@Bank.example"


def test_a_kubemate_user_reads_it_in_the_language_they_chose(mailbox):
    reader = UserFactory(email="lin@bank.example")
    Preference.objects.create(user=reader, language="en")
    run = scheduled([OUTSIDER, "LIN@bank.example"])
    assert mail.language_groups(run.schedule.recipients, run.schedule.language) == {
        "en": ["LIN@bank.example"],
        "zh-hans": [OUTSIDER],
    }
    mail.send_run_report(run.pk)
    english = mailbox.wait_for(lambda m: m["To"] == "LIN@bank.example")
    chinese = mailbox.wait_for(lambda m: m["To"] == OUTSIDER)
    assert "Cluster" in _html(english) and "集群" not in _html(english)
    assert "集群" in _html(chinese)
    assert english["Subject"] != chinese["Subject"]


def test_the_report_is_sent_once_however_often_the_task_runs(mailbox):
    run = scheduled([OUTSIDER])
    mail.send_run_report(run.pk)
    mail.send_run_report(run.pk)
    tasks.email_run.apply(args=[run.pk])
    assert len(mailbox.messages) == 1
    run.refresh_from_db()
    assert run.email_state == Run.Email.SENT and run.email_attempts == 1


def test_a_server_that_cannot_be_reached_fails_the_email_after_the_retries_with_the_sentence(settings):
    port = free_port()  # nothing listens there
    _smtp(settings, port)
    run = scheduled([OUTSIDER])
    tasks.email_run.apply(args=[run.pk])
    run.refresh_from_db()
    assert run.email_state == Run.Email.FAILED
    assert run.email_attempts == tasks.EMAIL_RETRIES + 1
    assert render(run.email_error) == (f"The mail server 127.0.0.1:{port} could not be reached: Connection refused")


class _Picky:
    """An SMTP server that refuses one address for good and keeps the rest."""

    def __init__(self, refuse: str) -> None:
        self.messages: list = []
        self.refuse = refuse
        box = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address == box.refuse:
                    return "550 5.1.1 No such mailbox here"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                box.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()


def test_an_address_refused_for_good_fails_at_once_and_the_others_are_served(settings):
    server = _Picky(refuse="gone@bank.example")
    try:
        _smtp(settings, server.port)
        run = scheduled(["gone@bank.example", OUTSIDER])
        mail.send_run_report(run.pk)  # no SendFailed: trying again would not help
    finally:
        server.controller.stop()
    assert [m["To"] for m in server.messages] == [OUTSIDER]
    run.refresh_from_db()
    assert run.email_state == Run.Email.FAILED and run.email_attempts == 1
    said = render(run.email_error)
    assert said.startswith(f"The mail server 127.0.0.1:{server.port} refused the address gone@bank.example: 550")


def test_a_refused_login_is_failed_in_words_that_never_hold_the_password(settings):
    asked = threading.Event()

    def refuse(server, session, envelope, mechanism, auth_data):
        asked.set()
        return AuthResult(success=False, handled=False)

    port = free_port()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=refuse, auth_require_tls=False)
    controller.start()
    try:
        _smtp(settings, port, user="kubemate", password="pw-never-shown-9")
        run = scheduled([OUTSIDER])
        mail.send_run_report(run.pk)
    finally:
        controller.stop()
    assert asked.is_set()
    run.refresh_from_db()
    assert run.email_state == Run.Email.FAILED
    said = render(run.email_error)
    assert "535" in said and "pw-never-shown-9" not in run.email_error and "pw-never-shown-9" not in said
