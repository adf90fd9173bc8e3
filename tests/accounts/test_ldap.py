"""Directory sign-in: kubemate/settings/ldap.py against a real slapd, through the real login view."""

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.core.models import AuditEvent
from kubemate.settings.ldap import LDAP_BACKEND, ldap_settings
from kubemate.startup import StartupError
from tests.accounts.ldap_server import (
    GROUP,
    USER,
    USER_EMAIL,
    USER_GIVEN_NAME,
    USER_PASSWORD,
    USER_SURNAME,
    ldap_server,
)
from tests.factories import PASSWORD
from tests.helpers import sign_in

__all__ = ["ldap_server"]  # the fixture, used by name

User = get_user_model()


@pytest.fixture
def directory(ldap_server, settings, db):
    """The console configured for the test directory the way an operator would, with KUBEMATE_LDAP_* variables."""
    for name, value in ldap_settings(ldap_server.env(), django_settings.AUTHENTICATION_BACKENDS).items():
        setattr(settings, name, value)
    return ldap_server


def test_a_directory_user_signs_in_and_is_created_with_name_email_and_groups(client, directory):
    response = sign_in(client, USER, USER_PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    user = User.objects.get(username=USER)
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session["_auth_user_backend"] == LDAP_BACKEND
    assert (user.email, user.first_name, user.last_name) == (USER_EMAIL, USER_GIVEN_NAME, USER_SURNAME)
    assert not user.has_usable_password()
    assert list(user.groups.values_list("name", flat=True)) == [GROUP]
    assert AuditEvent.objects.get(action="accounts.login").actor_id == user.pk


def test_a_wrong_directory_password_is_refused(client, directory):
    response = sign_in(client, USER, "not-the-directory-password")

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(username=USER).exists()
    assert AuditEvent.objects.get(action="accounts.login_failed").actor_name == USER


def test_a_directory_user_outside_the_groups_gets_no_group(client, directory):
    response = sign_in(client, "zhang.min", "zhang-min-directory-password")

    assert response.status_code == 302
    assert not User.objects.get(username="zhang.min").groups.exists()


def test_local_accounts_still_sign_in_beside_the_directory(client, directory, operator):
    response = sign_in(client, operator.username, PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(operator.pk)


def test_lock_out_applies_to_directory_users_too(client, directory):
    for _attempt in range(5):
        sign_in(client, USER, "not-the-directory-password")

    response = sign_in(client, USER, USER_PASSWORD)

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_an_unreachable_directory_refuses_sign_in_without_an_error_page(client, directory, settings):
    settings.AUTH_LDAP_SERVER_URI = "ldap://127.0.0.1:9"

    response = sign_in(client, USER, USER_PASSWORD)

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_without_a_uri_nothing_changes():
    assert ldap_settings({}, ["axes.backends.AxesStandaloneBackend"]) == {}


def test_the_backend_goes_after_axes_and_before_local_accounts():
    backends = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

    result = ldap_settings({"KUBEMATE_LDAP_URI": "ldap://ad", "KUBEMATE_LDAP_USER_BASE": "dc=x"}, backends)

    assert result["AUTHENTICATION_BACKENDS"] == [backends[0], LDAP_BACKEND, backends[1]]
    assert result["AUTH_LDAP_START_TLS"] is False
    assert "AUTH_LDAP_MIRROR_GROUPS" not in result


def test_active_directory_settings():
    env = {
        "KUBEMATE_LDAP_URI": "ldap://ad.bank.example",
        "KUBEMATE_LDAP_USER_BASE": "ou=Staff,dc=bank,dc=example",
        "KUBEMATE_LDAP_USER_FILTER": "(sAMAccountName=%(user)s)",
        "KUBEMATE_LDAP_GROUP_BASE": "ou=Groups,dc=bank,dc=example",
        "KUBEMATE_LDAP_GROUP_TYPE": "activeDirectory",
        "KUBEMATE_LDAP_START_TLS": "true",
    }

    result = ldap_settings(env, [])

    assert result["AUTH_LDAP_USER_SEARCH"].filterstr == "(sAMAccountName=%(user)s)"
    assert result["AUTH_LDAP_GROUP_SEARCH"].filterstr == "(objectClass=group)"
    assert type(result["AUTH_LDAP_GROUP_TYPE"]).__name__ == "NestedActiveDirectoryGroupType"
    assert result["AUTH_LDAP_MIRROR_GROUPS"] is True
    assert result["AUTH_LDAP_START_TLS"] is True


def test_a_uri_without_a_user_base_stops_start_up():
    with pytest.raises(StartupError, match="KUBEMATE_LDAP_USER_BASE"):
        ldap_settings({"KUBEMATE_LDAP_URI": "ldap://ad"}, [])


def test_an_unknown_group_type_stops_start_up():
    env = {"KUBEMATE_LDAP_URI": "ldap://ad", "KUBEMATE_LDAP_USER_BASE": "dc=x", "KUBEMATE_LDAP_GROUP_TYPE": "ad"}

    with pytest.raises(StartupError, match="KUBEMATE_LDAP_GROUP_TYPE"):
        ldap_settings(env, [])


def test_the_accounts_the_directory_creates_are_audited_as_the_directory_sync(
    client, directory, monkeypatch, django_capture_on_commit_callbacks
):
    from apps.accounts import changes

    projected = []
    monkeypatch.setattr(changes.Projection, "__call__", lambda self: projected.append(self.everywhere))
    with django_capture_on_commit_callbacks(execute=True):
        assert sign_in(client, USER, USER_PASSWORD).status_code == 302

    created = AuditEvent.objects.get(action="accounts.user.create", object_name=USER)
    assert (created.actor_id, created.actor_name) == (None, "ldap-sync")
    joined = AuditEvent.objects.filter(actor_name="ldap-sync").exclude(pk=created.pk)
    assert [e.action for e in joined] and all(e.action.startswith("accounts.") for e in joined)
    assert projected == [True]  # once, for every cluster, when the sign-in's transaction committed


def test_a_person_deactivated_in_the_console_cannot_sign_in_through_the_directory(client, directory):
    assert sign_in(client, USER, USER_PASSWORD).status_code == 302
    User.objects.filter(username=USER).update(is_active=False)
    client.logout()

    response = sign_in(client, USER, USER_PASSWORD)

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
