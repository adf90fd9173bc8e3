"""Password confirmation before dangerous actions: ``require_recent_auth`` and the /reauth/ page."""

import time
from urllib.parse import urlencode

import pytest
from axes.models import AccessAttempt
from django.urls import reverse

from apps.core.models import AuditEvent
from apps.core.reauth import REAUTH_AT_KEY
from tests.factories import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.accounts.reauth_urls")]

DANGEROUS = "/test/dangerous/"
WRONG = "not-the-password-at-all"


def make_stale(client, settings):
    session = client.session
    session[REAUTH_AT_KEY] = time.time() - settings.REAUTH_MAX_AGE_SECONDS - 1
    session.save()


def reauth_url(next_path):
    return f"{reverse('security:reauth')}?{urlencode({'next': next_path})}"


def test_a_fresh_sign_in_through_the_login_page_passes(client, operator):
    client.post(reverse("login"), {"username": operator.username, "password": PASSWORD})

    response = client.get(DANGEROUS)

    assert response.status_code == 200
    assert response.content.decode() == f"drained by {operator.username}"


def test_a_fresh_forced_login_passes(operator_client, operator):
    response = operator_client.get(DANGEROUS)

    assert response.status_code == 200


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(DANGEROUS)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_stale_session_is_sent_to_confirm_the_password(operator_client, settings):
    make_stale(operator_client, settings)

    response = operator_client.get(DANGEROUS)

    assert response.status_code == 302
    assert response["Location"] == reauth_url(DANGEROUS)


def test_a_session_without_any_proof_is_sent_to_confirm(operator_client):
    session = operator_client.session
    del session[REAUTH_AT_KEY]
    session.save()

    response = operator_client.get(DANGEROUS)

    assert response["Location"] == reauth_url(DANGEROUS)


def test_the_age_limit_comes_from_settings(operator_client, settings):
    settings.REAUTH_MAX_AGE_SECONDS = 60
    session = operator_client.session
    session[REAUTH_AT_KEY] = time.time() - 61
    session.save()

    assert operator_client.get(DANGEROUS).status_code == 302
    settings.REAUTH_MAX_AGE_SECONDS = 120
    assert operator_client.get(DANGEROUS).status_code == 200


def test_htmx_gets_an_hx_redirect_back_to_the_page_it_was_on(operator_client, settings):
    make_stale(operator_client, settings)

    response = operator_client.post(
        DANGEROUS, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/clusters/7/nodes/?page=2"
    )

    assert response.status_code == 204
    assert response["HX-Redirect"] == reauth_url("/clusters/7/nodes/?page=2")


def test_htmx_without_a_current_url_comes_back_to_the_path(operator_client, settings):
    make_stale(operator_client, settings)

    response = operator_client.post(DANGEROUS, HTTP_HX_REQUEST="true")

    assert response.status_code == 204
    assert response["HX-Redirect"] == reauth_url(DANGEROUS)


def test_the_confirmation_page_asks_for_the_password(operator_client, operator):
    response = operator_client.get(reauth_url(DANGEROUS))

    assert response.status_code == 200
    text = response.content.decode()
    assert 'type="password" name="password"' in text
    assert f'name="next" value="{DANGEROUS}"' in text
    assert f'value="{operator.username}"' in text


def test_the_confirmation_page_needs_a_signed_in_user(client):
    response = client.get(reauth_url(DANGEROUS))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_right_password_restores_access_and_is_audited(operator_client, operator, settings):
    make_stale(operator_client, settings)

    response = operator_client.post(reverse("security:reauth"), {"password": PASSWORD, "next": DANGEROUS})

    assert response.status_code == 302
    assert response["Location"] == DANGEROUS
    assert operator_client.get(DANGEROUS).status_code == 200
    event = AuditEvent.objects.get(action="accounts.reauth")
    assert (event.actor_id, event.actor_name, event.result) == (operator.pk, operator.username, "success")
    assert PASSWORD not in str(event.detail)


def test_an_unsafe_next_goes_to_the_dashboard_instead(operator_client, settings):
    make_stale(operator_client, settings)

    response = operator_client.post(
        reverse("security:reauth"), {"password": PASSWORD, "next": "https://elsewhere.example/steal"}
    )

    assert response["Location"] == reverse("dashboard")


def test_a_wrong_password_keeps_the_action_closed_and_is_audited(operator_client, operator, settings):
    make_stale(operator_client, settings)

    response = operator_client.post(reverse("security:reauth"), {"password": WRONG, "next": DANGEROUS})

    assert response.status_code == 200
    assert "That password is not right." in response.content.decode()
    assert operator_client.get(DANGEROUS)["Location"] == reauth_url(DANGEROUS)
    event = AuditEvent.objects.get(action="accounts.reauth")
    assert (event.actor_id, event.actor_name, event.result) == (operator.pk, operator.username, "failure")
    assert WRONG not in str(event.detail)
    assert AccessAttempt.objects.get(username=operator.username).failures_since_start == 1


def test_an_empty_password_is_refused_without_counting(operator_client, operator, settings):
    make_stale(operator_client, settings)

    response = operator_client.post(reverse("security:reauth"), {"password": "", "next": DANGEROUS})

    assert "Type your password." in response.content.decode()
    assert not AccessAttempt.objects.exists()


def test_five_wrong_passwords_sign_out_and_lock_sign_in(operator_client, operator, settings):
    make_stale(operator_client, settings)
    for _attempt in range(4):
        operator_client.post(reverse("security:reauth"), {"password": WRONG, "next": DANGEROUS})

    response = operator_client.post(reverse("security:reauth"), {"password": WRONG, "next": DANGEROUS}, follow=True)

    assert response.redirect_chain == [(reverse("login"), 302)]
    assert "You were signed out after too many wrong passwords." in response.content.decode()
    assert "_auth_user_id" not in operator_client.session
    assert AuditEvent.objects.filter(action="accounts.locked_out", result="denied").exists()
    signed_in = operator_client.post(reverse("login"), {"username": operator.username, "password": PASSWORD})
    assert signed_in.status_code == 429


# --- the confirmation dialog: password and reason posted with the action itself ---------------------------------


def test_the_password_typed_in_the_dialog_lets_a_stale_session_act_once_and_counts_as_a_proof(
    operator_client, operator, settings
):
    make_stale(operator_client, settings)

    response = operator_client.post(DANGEROUS, {"password": PASSWORD, "reason": "CHG-20261204-001"})

    assert response.status_code == 200
    done = AuditEvent.objects.get(action="test.drain")
    assert (done.actor_name, done.reason) == (operator.username, "CHG-20261204-001")
    proof = AuditEvent.objects.get(action="accounts.reauth")
    assert (proof.result, proof.reason) == ("success", "")
    # The proof is remembered: the next dangerous action within the age limit needs no password.
    assert operator_client.post(DANGEROUS).status_code == 200


def test_a_wrong_password_in_the_dialog_does_nothing_and_says_so(operator_client, settings):
    make_stale(operator_client, settings)

    htmx = operator_client.post(DANGEROUS, {"password": WRONG}, HTTP_HX_REQUEST="true")
    plain = operator_client.post(DANGEROUS, {"password": WRONG}, HTTP_REFERER="http://testserver/clusters/1/nodes/")
    offsite = operator_client.post(DANGEROUS, {"password": WRONG}, HTTP_REFERER="https://evil.example/")

    assert htmx.status_code == 403 and htmx["X-Kubemate-Sentence"] == "1"
    assert "That password is not right: nothing was done." in htmx.content.decode()
    assert plain.status_code == 302 and plain["Location"] == "http://testserver/clusters/1/nodes/"
    assert offsite["Location"] == "/"
    assert not AuditEvent.objects.filter(action="test.drain").exists()
    assert AuditEvent.objects.filter(action="accounts.reauth", result="failure").count() == 3
    assert AccessAttempt.objects.get().failures_since_start == 3


def test_a_reason_is_one_bounded_line_and_stays_in_the_hash_chain(operator_client, operator):
    session = operator_client.session
    session[REAUTH_AT_KEY] = time.time()
    session.save()

    operator_client.post(DANGEROUS, {"reason": "INC-1\n\x1b[31mred\x00 " + "x" * 2000})
    operator_client.post(DANGEROUS, {})

    with_reason, without = AuditEvent.objects.filter(action="test.drain").order_by("seq")
    assert with_reason.reason.startswith("INC-1 [31mred ") and len(with_reason.reason) == 500
    assert "\n" not in with_reason.reason and "\x1b" not in with_reason.reason
    assert without.reason == ""
    from apps.core import audit

    assert list(audit.verify()) == []
    with_reason.reason = "something else"
    assert audit.event_hash(with_reason) != with_reason.hash
