"""The OpenID Connect sign-in backend (named in kubemate/settings/oidc.py), built on mozilla-django-oidc's.

From the callback (views.py) with the authorization code, the PKCE verifier and the nonce, it:

1. exchanges the code at the provider's token endpoint (provider.py, the door);
2. checks the ID token: signature against the provider's published keys (RS256 or ES256 as configured, never
   ``none`` nor the client secret), issuer, audience (this client), authorized party, expiry, issue time and
   nonce;
3. finds the account by the identity (issuer and subject, ``ExternalIdentity``), or makes one at the first
   sign-in, named by the username claim; a name that a console account already holds is refused, so neither a
   local account nor another person's is taken over;
4. copies name and e-mail, and (by default) makes the groups claim the person's groups, audited and projected
   into the clusters as ``oidc-sync`` (actor.SSO_SYNC), exactly as the directory sign-in does.

A refusal raises ``SignInRefused`` with a deferred sentence the sign-in page shows and the audit log keeps.
Deactivated accounts neither sign in nor keep a session.
"""

from __future__ import annotations

import time

import jwt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import absolutify

from apps.accounts.actor import SSO_SYNC, acting_as
from apps.accounts.models import ExternalIdentity
from apps.accounts.oidc import provider
from apps.accounts.oidc.provider import SignInRefused
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.core.reauth import SSO_AUTH_TIME_KEY

MAX_TOKEN_CHARS = 16_384
MAX_GROUPS = 500
MAX_GROUP_NAME = Group._meta.get_field("name").max_length
LEEWAY_SECONDS = 30


class OIDCBackend(OIDCAuthenticationBackend):
    def __init__(self, *args, **kwargs):
        # mozilla-django-oidc reads fixed endpoint settings here; ours come from the provider's discovery document
        # when someone signs in (provider.py). Django builds a backend for every request of a signed-in session
        # (get_user), which must cost nothing.
        self.UserModel = get_user_model()

    # Sign-in -------------------------------------------------------------------------------------------------

    def authenticate(self, request, nonce=None, code_verifier=None, **kwargs):
        if request is None or nonce is None or kwargs.get("username") or not provider.enabled():
            return None  # a password sign-in, or single sign-on is off
        code = request.GET.get("code")
        if not code or not request.GET.get("state"):
            return None
        payload = {
            "client_id": self.get_settings("OIDC_RP_CLIENT_ID"),
            "client_secret": self.get_settings("OIDC_RP_CLIENT_SECRET"),
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": absolutify(request, reverse(self.get_settings("OIDC_AUTHENTICATION_CALLBACK_URL"))),
        }
        if code_verifier is not None:
            payload["code_verifier"] = code_verifier
        answer = provider.exchange_code(payload, basic_auth=self.get_settings("OIDC_TOKEN_USE_BASIC_AUTH", True))
        claims = self.verify_token(answer["id_token"], nonce=nonce)
        access_token = answer.get("access_token")
        info = provider.userinfo(access_token) if isinstance(access_token, str) and access_token else {}
        if info and info.get("sub") != claims["sub"]:
            raise SignInRefused(D(N_("The identity provider's userinfo is about someone else than its ID token.")))
        # The ID token's own claims win; userinfo adds what the provider keeps out of the token.
        user = self.sign_in(request, {**info, **claims})
        request.session[SSO_AUTH_TIME_KEY] = _auth_time(claims)
        return user

    def verify_token(self, token, **kwargs):
        """The ID token's claims, once its signature, issuer, audience, times and nonce are all right."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise SignInRefused(D(N_("The identity provider's ID token is too long or missing.")))
        algorithm = self.get_settings("OIDC_RP_SIGN_ALGO", "RS256")
        client_id = self.get_settings("OIDC_RP_CLIENT_ID")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise SignInRefused(D(N_("The identity provider's ID token cannot be read."))) from None
        if header.get("alg") != algorithm:
            raise SignInRefused(
                D(
                    N_("The identity provider signed its ID token with %(used)s; Kubemate accepts %(expected)s."),
                    used=str(header.get("alg"))[:20],
                    expected=algorithm,
                )
            )
        key = self._signing_key(header, algorithm)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=client_id,
                issuer=provider.discovery()["issuer"],
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise SignInRefused(D(N_("The identity provider's ID token has expired; sign in again."))) from None
        except jwt.PyJWTError:
            raise SignInRefused(
                D(N_("The identity provider's ID token was not accepted: its signature, issuer or audience is wrong."))
            ) from None
        if claims.get("azp") not in (None, client_id):
            raise SignInRefused(D(N_("The identity provider's ID token was issued to another application.")))
        if kwargs.get("nonce") is None or claims.get("nonce") != kwargs["nonce"]:
            raise SignInRefused(D(N_("The identity provider's ID token does not answer this sign-in (nonce).")))
        if not isinstance(claims.get("sub"), str) or not 0 < len(claims["sub"]) <= 255:
            raise SignInRefused(D(N_("The identity provider's ID token names no subject.")))
        return claims

    def _signing_key(self, header: dict, algorithm: str):
        kid = header.get("kid")
        for fresh in (False, True):  # an unknown key id: the provider may have rotated its keys
            for jwk in provider.signing_keys(fresh=fresh):
                if kid is not None and jwk.get("kid") != kid:
                    continue
                if jwk.get("alg") not in (None, algorithm) or jwk.get("use") not in (None, "sig"):
                    continue
                try:
                    return jwt.PyJWK(jwk, algorithm=algorithm).key
                except jwt.PyJWTError:
                    continue
        raise SignInRefused(D(N_("The identity provider's ID token is signed with a key it does not publish.")))

    # The account ---------------------------------------------------------------------------------------------

    def sign_in(self, request, claims: dict):
        """The console account of the person ``claims`` describe, made or brought up to date."""
        config = provider.config()
        issuer, subject = config["issuer"], claims["sub"]
        username = _username(claims, config["username_claim"])
        groups = _groups(claims, config["groups_claim"])
        required = config.get("require_group")
        if required and required not in groups:
            raise SignInRefused(
                D(
                    N_("%(name)s is not in the group %(group)s, whose members alone may sign in."),
                    name=username,
                    group=required,
                )
            )
        User = self.UserModel
        with transaction.atomic(), acting_as(name=SSO_SYNC, request=request):
            identity = (
                ExternalIdentity.objects.select_for_update()
                .select_related("user")
                .filter(issuer=issuer, subject=subject)
                .first()
            )
            if identity is None:
                if User.objects.filter(username__iexact=username).exists():
                    raise SignInRefused(
                        D(
                            N_(
                                "The console already has an account named %(name)s that is not linked to this single "
                                "sign-on identity; an administrator must rename or remove it first."
                            ),
                            name=username,
                        )
                    )
                user = User(username=username)
                user.set_unusable_password()
                _copy_profile(user, claims)
                user.save()
                identity = ExternalIdentity.objects.create(user=user, issuer=issuer, subject=subject)
            else:
                user = identity.user
                if not user.is_active:
                    raise SignInRefused(
                        D(N_("The account %(name)s is deactivated in the console."), name=user.username)
                    )
                if _copy_profile(user, claims):
                    user.save(update_fields=["email", "first_name", "last_name"])
            if config.get("mirror_groups", True):
                _mirror_groups(user, groups)
            identity.last_sign_in_at = timezone.now()
            identity.save(update_fields=["last_sign_in_at"])
        return user

    def get_user(self, user_id):
        try:
            user = self.UserModel.objects.get(pk=user_id)
        except self.UserModel.DoesNotExist:
            return None
        return user if user.is_active else None


def _mirror_groups(user, names: list[str]) -> None:
    """Make ``names`` the person's groups: one query when nothing changed, groups made only for new names (as
    django-auth-ldap mirrors the directory's)."""
    if sorted(user.groups.values_list("name", flat=True)) == sorted(names):
        return
    found = list(Group.objects.filter(name__in=names))
    known = {group.name for group in found}
    user.groups.set(found + [Group.objects.get_or_create(name=name)[0] for name in names if name not in known])


def _auth_time(claims: dict) -> float:
    """When the provider last authenticated the person (``auth_time``), else when it issued the token."""
    for name in ("auth_time", "iat"):
        value = claims.get(name)
        if isinstance(value, int | float) and value > 0:
            return float(min(value, time.time()))
    return 0.0


def _username(claims: dict, claim: str) -> str:
    value = claims.get(claim)
    name = value.strip() if isinstance(value, str) else ""
    if not name:
        raise SignInRefused(D(N_("The identity provider sent no %(claim)s claim to name the account by."), claim=claim))
    try:
        UnicodeUsernameValidator()(name)
        usable = len(name) <= 150
    except ValidationError:
        usable = False
    if not usable:
        raise SignInRefused(
            D(
                N_(
                    "The identity provider's %(claim)s is not a usable account name: at most 150 letters, digits "
                    "and @ . + - _."
                ),
                claim=claim,
            )
        )
    return name


def _groups(claims: dict, claim: str) -> list[str]:
    value = claims.get(claim, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_GROUPS:
        raise SignInRefused(
            D(
                N_("The identity provider's %(claim)s claim is not a list of at most %(limit)s groups."),
                claim=claim,
                limit=MAX_GROUPS,
            )
        )
    names = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_GROUP_NAME:
            raise SignInRefused(
                D(N_("The identity provider's %(claim)s claim holds a group name Kubemate cannot keep."), claim=claim)
            )
        if item.strip() not in names:
            names.append(item.strip())
    return names


def _copy_profile(user, claims: dict) -> bool:
    """Name and e-mail from the claims; whether anything changed."""
    wanted = {
        "email": claims.get("email") if isinstance(claims.get("email"), str) else user.email,
        "first_name": claims.get("given_name") if isinstance(claims.get("given_name"), str) else user.first_name,
        "last_name": claims.get("family_name") if isinstance(claims.get("family_name"), str) else user.last_name,
    }
    if not claims.get("given_name") and not claims.get("family_name") and isinstance(claims.get("name"), str):
        wanted["first_name"] = claims["name"]
    limits = {field: type(user)._meta.get_field(field).max_length for field in wanted}
    changed = False
    for field, value in wanted.items():
        value = (value or "")[: limits[field]]
        if getattr(user, field) != value:
            setattr(user, field, value)
            changed = True
    return changed
