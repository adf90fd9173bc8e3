"""Sign-in lock-out (django-axes through the real login view) and the audit events of signing in and out."""

import json
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone

from apps.core import audit
from apps.core.models import AuditEvent
from apps.core.reauth import REAUTH_AT_KEY
from tests.factories import PASSWORD, UserFactory
from tests.helpers import sign_in

pytestmark = pytest.mark.django_db

WRONG = "not-the-password-at-all"


def fail_five_times(client, username, **extra):
    for _attempt in range(5):
        sign_in(client, username, WRONG, **extra)


def test_a_wrong_password_is_refused_without_locking(client, operator):
    response = sign_in(client, operator.username, WRONG)

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.get(username=operator.username).failures_since_start == 1


def test_five_wrong_passwords_lock_out_even_the_right_one(client, operator):
    fail_five_times(client, operator.username)

    response = sign_in(client, operator.username, PASSWORD)

    assert response.status_code == 429
    assert "registration/locked_out.html" in [t.name for t in response.templates]
    text = response.content.decode()
    assert "this account is locked for 15 minutes" in text
    assert "contact an administrator" in text
    assert 'id="sidebar-menu"' not in text
    assert "_auth_user_id" not in client.session


def test_lock_out_does_not_touch_another_username_from_the_same_address(client, operator):
    other = UserFactory()
    fail_five_times(client, operator.username)

    response = sign_in(client, other.username, PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    assert client.session["_auth_user_id"] == str(other.pk)


def test_lock_out_does_not_touch_the_same_username_from_another_address(client, operator):
    fail_five_times(client, operator.username, REMOTE_ADDR="10.20.30.40")

    response = sign_in(client, operator.username, PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(operator.pk)


def test_sign_in_works_again_after_the_cool_off(client, operator):
    fail_five_times(client, operator.username)
    assert sign_in(client, operator.username, PASSWORD).status_code == 429
    # Travel 16 minutes forward: the failures are now older than the 15-minute cool-off.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    response = sign_in(client, operator.username, PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(operator.pk)


def test_sign_in_works_again_when_the_cool_off_setting_is_shorter(client, operator, settings):
    fail_five_times(client, operator.username)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=2))
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)

    response = sign_in(client, operator.username, PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(operator.pk)


def test_sign_in_is_audited_and_counts_as_a_fresh_password_proof(client, operator):
    sign_in(client, operator.username, PASSWORD)

    event = AuditEvent.objects.get(action="accounts.login")
    assert (event.actor_id, event.actor_name, event.result) == (operator.pk, operator.username, "success")
    assert (event.object_kind, event.object_name, event.ip) == ("user", operator.username, "127.0.0.1")
    assert client.session[REAUTH_AT_KEY] > 0


def test_sign_out_is_audited(client, operator):
    sign_in(client, operator.username, PASSWORD)

    client.post(reverse("logout"))

    event = AuditEvent.objects.get(action="accounts.logout")
    assert (event.actor_id, event.actor_name, event.result) == (operator.pk, operator.username, "success")


def test_signing_out_without_a_session_writes_nothing(client):
    client.post(reverse("logout"))

    assert not AuditEvent.objects.filter(action="accounts.logout").exists()


def test_a_failed_sign_in_is_audited_with_the_attempted_name_and_no_password(client, operator):
    sign_in(client, "li.wei.typo", WRONG)

    event = AuditEvent.objects.get(action="accounts.login_failed")
    assert (event.actor_id, event.actor_name, event.result) == (None, "li.wei.typo", "failure")
    assert event.ip == "127.0.0.1"
    stored = json.dumps([getattr(event, field) for field in audit.HASHED_FIELDS], default=str)
    assert WRONG not in stored
    assert "password" not in stored


def test_an_empty_sign_in_form_is_refused_before_authenticating(client):
    sign_in(client, "", WRONG)

    # Django's form refuses an empty username itself: nobody was authenticated, so nothing is audited.
    assert not AuditEvent.objects.filter(action="accounts.login_failed").exists()


def test_the_lock_out_is_audited_as_denied(client, operator):
    fail_five_times(client, operator.username)
    sign_in(client, operator.username, PASSWORD)

    locked = AuditEvent.objects.filter(action="accounts.locked_out").order_by("seq")
    # Once when the fifth failure locks the account, once for the refused sixth attempt.
    assert [(e.actor_id, e.actor_name, e.result) for e in locked] == [(None, operator.username, "denied")] * 2
    assert AuditEvent.objects.filter(action="accounts.login_failed").count() == 6
    assert not AuditEvent.objects.filter(action="accounts.login").exists()
    stored = json.dumps([[getattr(e, f) for f in audit.HASHED_FIELDS] for e in AuditEvent.objects.all()], default=str)
    assert PASSWORD not in stored
    assert WRONG not in stored
    assert list(audit.verify()) == []
