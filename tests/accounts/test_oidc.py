"""Single sign-on: kubemate/settings/oidc.py and apps/accounts/oidc against a real ory/hydra (tests/plugins/hydra.py),
through the real pages: authorization code flow with PKCE, groups mirrored and projected, refusals as sentences,
re-authentication at the provider."""

import base64
import json
import time
import urllib.parse

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.urls import reverse
from kubernetes import client as k8s

from apps.accounts import access, capabilities, services
from apps.accounts.models import Binding, ExternalIdentity, Project, Role
from apps.accounts.oidc import provider
from apps.accounts.oidc.backend import OIDCBackend, SignInRefused
from apps.accounts.reconcile import reconcile_rbac
from apps.core.models import AuditEvent
from apps.core.reauth import REAUTH_AT_KEY
from kubemate.settings.oidc import OIDC_BACKEND, oidc_settings
from kubemate.startup import StartupError
from tests.factories import UserFactory
from tests.plugins.hydra import PEOPLE, WrongPassword
from tests.plugins.served import free_port

pytestmark = pytest.mark.django_db
User = get_user_model()
LI_WEI = PEOPLE["li.wei"]["password"]


def configure(settings, env: dict) -> None:
    for name, value in oidc_settings(env, django_settings.AUTHENTICATION_BACKENDS).items():
        setattr(settings, name, value)
    cache.delete_many([f"oidc:discovery:{env['KUBEMATE_OIDC_ISSUER']}", f"oidc:jwks:{env['KUBEMATE_OIDC_ISSUER']}"])


@pytest.fixture
def sso(hydra_server, settings):
    """The console configured for the test provider the way an operator would, with KUBEMATE_OIDC_* variables."""
    configure(settings, hydra_server.env())
    hydra_server.forms_filled = 0
    yield hydra_server
    hydra_server.set_people(PEOPLE)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def test_sign_in_through_the_provider_lands_in_the_groups_and_projects(
    sso, client, registered_cluster, team_namespaces, admin_user, sandbox
):
    project = services.save_project(
        actor=admin_user,
        project=Project(cluster=registered_cluster, slug="team-a", name="Team A", namespaces=["team-a"]),
    )
    developers, _ = Group.objects.get_or_create(name="payments-developers")
    binding = services.create_binding(
        actor=admin_user, role=Role.objects.get(slug="developer"), group=developers, project=project
    )

    response = sso.sign_in(client, "li.wei", LI_WEI)

    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    user = User.objects.get(username="li.wei")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session["_auth_user_backend"] == OIDC_BACKEND
    assert (user.email, user.first_name) == ("li.wei@bank.example", "Li Wei")
    assert not user.has_usable_password()
    assert list(user.groups.values_list("name", flat=True)) == ["payments-developers"]
    identity = ExternalIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (sso.issuer, "li.wei")
    assert AuditEvent.objects.filter(action="accounts.login", actor_id=user.pk).count() == 1
    # The project's group binding now reaches them, in the console and in the cluster.
    assert access.may(user, capabilities.WORKLOADS_VIEW, cluster=registered_cluster, namespace="team-a")
    assert not access.may(user, capabilities.WORKLOADS_VIEW, cluster=registered_cluster, namespace="team-b")
    reconcile_rbac(registered_cluster)
    role_binding = k8s.RbacAuthorizationV1Api(sandbox.api_client).read_namespaced_role_binding(
        binding.k8s_name, "team-a"
    )
    assert f"kubemate-u{user.pk}" in [s.name for s in role_binding.subjects]
    assert client.get(reverse("dashboard")).status_code == 200


def test_the_groups_follow_the_provider_at_each_sign_in_and_the_change_is_audited(sso, client):
    sso.sign_in(client, "chen.jing", PEOPLE["chen.jing"]["password"])
    user = User.objects.get(username="chen.jing")
    assert sorted(user.groups.values_list("name", flat=True)) == ["auditors", "payments-developers"]

    sso.set_people({**PEOPLE, "chen.jing": {**PEOPLE["chen.jing"], "groups": ["auditors"]}})
    client.logout()
    sso.sign_in(client, "chen.jing", PEOPLE["chen.jing"]["password"])

    assert list(user.groups.values_list("name", flat=True)) == ["auditors"]
    removed = AuditEvent.objects.filter(actor_name="oidc-sync", object_name="chen.jing").order_by("seq").last()
    assert removed is not None and "payments-developers" in json.dumps(removed.detail)


def test_the_flow_uses_pkce_a_nonce_and_the_readers_language(sso, client):
    client.cookies["django_language"] = "zh-hans"
    response = client.get(reverse("oidc:authenticate"), HTTP_ACCEPT_LANGUAGE="zh-hans")

    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(response["Location"]).query))
    assert response["Location"].startswith(f"{sso.issuer}/oauth2/auth?")
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["nonce"] and query["state"] and query["response_type"] == "code"
    assert query["ui_locales"].startswith("zh-CN")
    assert "prompt" not in query


def test_a_wrong_password_at_the_provider_signs_nobody_in(sso, client):
    with pytest.raises(WrongPassword):
        sso.sign_in(client, "li.wei", "not-the-password")

    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(username="li.wei").exists()


def test_a_local_account_of_the_same_name_is_not_taken_over(sso, client):
    local = UserFactory(username="li.wei")

    response = sso.sign_in(client, "li.wei", LI_WEI)

    assert response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session
    assert any("already has an account named li.wei" in m for m in messages_of(response))
    assert not ExternalIdentity.objects.exists() and local.groups.count() == 0
    failed = AuditEvent.objects.get(action="accounts.login_failed")
    assert failed.result == AuditEvent.Result.FAILURE and "li.wei" in failed.detail["error"]


def test_only_the_required_group_signs_in(hydra_server, settings, client):
    configure(settings, hydra_server.env(KUBEMATE_OIDC_REQUIRE_GROUP="payments-developers"))

    refused = hydra_server.sign_in(client, "wang.fang", PEOPLE["wang.fang"]["password"])
    assert "_auth_user_id" not in client.session
    assert any("payments-developers" in m for m in messages_of(refused))

    hydra_server.sign_in(client, "li.wei", LI_WEI)
    assert client.session["_auth_user_id"] == str(User.objects.get(username="li.wei").pk)


def test_a_deactivated_account_neither_signs_in_nor_keeps_its_session(sso, client):
    sso.sign_in(client, "li.wei", LI_WEI)
    user = User.objects.get(username="li.wei")
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert client.get(reverse("dashboard")).status_code == 302  # the session no longer stands
    response = sso.sign_in(client, "li.wei", LI_WEI)
    assert any("deactivated" in m for m in messages_of(response))
    assert client.get(reverse("dashboard")).status_code == 302


def test_a_dangerous_action_is_confirmed_at_the_provider_with_the_password_asked_again(sso, client):
    browser = requests.Session()  # keeps the provider's own session cookie, as a browser does
    sso.sign_in(client, "li.wei", LI_WEI, browser=browser)
    assert sso.forms_filled == 1
    session = client.session
    session[REAUTH_AT_KEY] = time.time() - 3600
    session.save()

    page = client.get(reverse("security:reauth") + "?next=/accounts/users/")
    assert b'data-testid="reauth-sso"' in page.content and b"id_password" not in page.content
    response = sso.sign_in(
        client, "li.wei", LI_WEI, start="/oidc/authenticate/?reauth=1&next=/accounts/users/", browser=browser
    )

    assert sso.forms_filled == 2  # prompt=login: the provider asked for the password although its session stood
    assert response["Location"] == "/accounts/users/"
    assert time.time() - client.session[REAUTH_AT_KEY] < 60
    confirmed = AuditEvent.objects.filter(action="accounts.reauth").last()
    assert confirmed.result == AuditEvent.Result.SUCCESS and confirmed.detail == {"sso": True}


def test_a_fresh_sign_in_from_an_old_provider_session_is_not_a_fresh_proof(sso, client):
    browser = requests.Session()
    sso.sign_in(client, "li.wei", LI_WEI, browser=browser)
    client.logout()
    time.sleep(2)

    sso.sign_in(client, "li.wei", LI_WEI, browser=browser)  # the provider remembers them: no form

    assert sso.forms_filled == 1
    proven = client.session[REAUTH_AT_KEY]
    assert time.time() - proven >= 2  # dated when the provider authenticated them, not now


def test_callbacks_that_do_not_belong_to_a_sign_in_answer_a_sentence(sso, client):
    unknown = client.get(reverse("oidc:callback") + "?code=forged&state=forged")
    assert unknown.status_code == 302 and unknown["Location"] == reverse("login")

    client.get(reverse("oidc:authenticate"))  # a state now exists, but not this one
    replay = client.get(reverse("oidc:callback") + "?code=forged&state=other")
    assert replay["Location"] == reverse("login")
    assert any("sign in again" in m for m in messages_of(replay))

    denied = client.get(reverse("oidc:callback") + "?error=access_denied&state=x")
    assert any("cancelled" in m for m in messages_of(denied))
    assert AuditEvent.objects.filter(action="accounts.login_failed").count() == 3
    assert "_auth_user_id" not in client.session


def test_a_provider_that_is_down_is_a_sentence_on_the_sign_in_page(settings, client, hydra_server):
    configure(settings, hydra_server.env(KUBEMATE_OIDC_ISSUER=f"http://127.0.0.1:{free_port()}"))

    response = client.get(reverse("oidc:authenticate"), follow=True)

    assert response.status_code == 200
    assert "could not be reached" in response.content.decode()
    assert b'data-testid="login-sso"' in response.content


def test_the_sign_in_page_offers_single_sign_on_only_when_configured(client, settings, hydra_server):
    assert b"login-sso" not in client.get(reverse("login")).content
    assert client.get(reverse("oidc:authenticate")).status_code == 404

    configure(settings, hydra_server.env())
    page = client.get(reverse("login") + "?next=/clusters/").content.decode()
    assert "Sign in with Bank SSO" in page and "/oidc/authenticate/?next=/clusters/" in page
    chinese = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "Bank SSO" in chinese and "Sign in with" not in chinese


def _forged(claims: dict, key, kid: str, algorithm: str = "RS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def test_id_tokens_not_signed_by_the_provider_are_refused(sso, rf):
    kid = provider.signing_keys()[0]["kid"]
    now = int(time.time())
    claims = {"iss": sso.issuer, "aud": "kubemate-console", "sub": "li.wei", "exp": now + 60, "iat": now, "nonce": "n"}
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    backend = OIDCBackend()

    with pytest.raises(SignInRefused, match="signature, issuer or audience"):
        backend.verify_token(_forged(claims, attacker, kid), nonce="n")
    unsigned = (
        base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        + "."
        + base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        + "."
    )
    with pytest.raises(SignInRefused, match="none"):
        backend.verify_token(unsigned, nonce="n")
    # The client secret is known to the console: a token "signed" with it must not pass as the provider's.
    with pytest.raises(SignInRefused, match="HS256"):
        backend.verify_token(_forged(claims, sso.client_secret, kid, "HS256"), nonce="n")
    with pytest.raises(SignInRefused, match="too long"):
        backend.verify_token("a" * 20_000, nonce="n")


def test_settings_refuse_what_would_be_unsafe():
    base = {"KUBEMATE_OIDC_ISSUER": "https://sso.bank.example", "KUBEMATE_OIDC_CLIENT_ID": "kubemate"}
    assert oidc_settings({}) == {}
    with pytest.raises(StartupError, match="CLIENT_SECRET"):
        oidc_settings(base)
    with pytest.raises(StartupError, match="plain http"):
        oidc_settings({**base, "KUBEMATE_OIDC_CLIENT_SECRET": "s", "KUBEMATE_OIDC_ISSUER": "http://sso.bank.example"})
    with pytest.raises(StartupError, match="SIGN_ALGO"):
        oidc_settings({**base, "KUBEMATE_OIDC_CLIENT_SECRET": "s", "KUBEMATE_OIDC_SIGN_ALGO": "HS256"})
    with pytest.raises(StartupError, match="openid"):
        oidc_settings({**base, "KUBEMATE_OIDC_CLIENT_SECRET": "s", "KUBEMATE_OIDC_SCOPES": "profile"})
    values = oidc_settings({**base, "KUBEMATE_OIDC_CLIENT_SECRET": "s"}, ["axes.backends.AxesStandaloneBackend", "x"])
    assert values["AUTHENTICATION_BACKENDS"] == ["axes.backends.AxesStandaloneBackend", OIDC_BACKEND, "x"]
    assert values["OIDC_USE_PKCE"] is True and values["OIDC_PKCE_CODE_CHALLENGE_METHOD"] == "S256"
    assert values["KUBEMATE_OIDC"]["groups_claim"] == "groups"


def test_a_group_binding_made_before_the_first_sign_in_is_the_one_used(sso, client, registered_cluster, admin_user):
    """Groups are matched by name: the provider's group and the console's binding meet without anyone linking them."""
    group, _ = Group.objects.get_or_create(name="auditors")
    Binding.objects.create(role=Role.objects.get(slug="auditor"), group=group, scope=Binding.Scope.PLATFORM)

    sso.sign_in(client, "chen.jing", PEOPLE["chen.jing"]["password"])

    user = User.objects.get(username="chen.jing")
    assert access.may(user, capabilities.AUDIT_VIEW)
