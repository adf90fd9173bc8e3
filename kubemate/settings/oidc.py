"""Optional single sign-on through an OpenID Connect provider, configured from KUBEMATE_OIDC_* variables.

``oidc_settings(os.environ, AUTHENTICATION_BACKENDS)`` returns the settings to add: nothing when
KUBEMATE_OIDC_ISSUER is unset, otherwise the sign-in backend (apps/accounts/oidc/backend.py, built on
mozilla-django-oidc) after django-axes and before the local accounts, and mozilla-django-oidc's OIDC_* settings:
the authorization code flow with PKCE (S256), a nonce, and ID tokens signed with RS256 or ES256 checked against
the provider's published keys. The provider's endpoints come from its discovery document
(``<issuer>/.well-known/openid-configuration``), read when someone signs in, not at start-up, so a console
whose provider is down still starts and its local accounts still sign in.

The person's groups claim becomes their Django groups at every sign-in (as LDAP's AUTH_LDAP_MIRROR_GROUPS), which
Kubemate bindings target. Multi-factor authentication stays with the provider.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from kubemate.settings.sign_in import backends_with, flag
from kubemate.startup import StartupError

OIDC_BACKEND = "apps.accounts.oidc.backend.OIDCBackend"
DEFAULT_SCOPES = "openid profile email groups"
ALGORITHMS = ("RS256", "ES256")


def _secret(env: Mapping[str, str]) -> str:
    """The client secret from KUBEMATE_OIDC_CLIENT_SECRET_FILE (a mounted secret), else the variable."""
    path = (env.get("KUBEMATE_OIDC_CLIENT_SECRET_FILE") or "").strip()
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as exc:
            raise StartupError(f"KUBEMATE_OIDC_CLIENT_SECRET_FILE={path} cannot be read: {exc.strerror}.") from None
    return (env.get("KUBEMATE_OIDC_CLIENT_SECRET") or "").strip()


def oidc_settings(env: Mapping[str, str], backends: list[str] | None = None) -> dict:
    """The settings that turn on OpenID Connect sign-in, or an empty dict when KUBEMATE_OIDC_ISSUER is unset."""
    issuer = (env.get("KUBEMATE_OIDC_ISSUER") or "").strip()
    if not issuer:
        return {}
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise StartupError(f"KUBEMATE_OIDC_ISSUER must be the provider's https:// issuer URL, not {issuer!r}.")
    if parts.scheme == "http" and not flag(env.get("KUBEMATE_OIDC_ALLOW_HTTP"), False):
        raise StartupError(
            "KUBEMATE_OIDC_ISSUER is plain http://: tokens would cross the network unencrypted. "
            "Use the provider's https:// issuer (KUBEMATE_OIDC_CA_FILE for a private CA), or set "
            "KUBEMATE_OIDC_ALLOW_HTTP=true for a provider on this host only."
        )
    client_id = (env.get("KUBEMATE_OIDC_CLIENT_ID") or "").strip()
    secret = _secret(env)
    if not client_id or not secret:
        raise StartupError(
            "KUBEMATE_OIDC_ISSUER is set but KUBEMATE_OIDC_CLIENT_ID or KUBEMATE_OIDC_CLIENT_SECRET "
            "(or KUBEMATE_OIDC_CLIENT_SECRET_FILE) is not; register Kubemate as a confidential client with the "
            "provider, with the redirect URI https://<console>/oidc/callback/."
        )
    algorithm = (env.get("KUBEMATE_OIDC_SIGN_ALGO") or "RS256").strip()
    if algorithm not in ALGORITHMS:
        raise StartupError(f"KUBEMATE_OIDC_SIGN_ALGO must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}.")
    scopes = " ".join((env.get("KUBEMATE_OIDC_SCOPES") or DEFAULT_SCOPES).split())
    if "openid" not in scopes.split():
        raise StartupError(f"KUBEMATE_OIDC_SCOPES must include openid, not {scopes!r}.")
    claim_pattern = re.compile(r"[A-Za-z0-9_:./-]{1,100}")
    claims = {}
    for name, default in (("GROUPS_CLAIM", "groups"), ("USERNAME_CLAIM", "preferred_username")):
        value = (env.get(f"KUBEMATE_OIDC_{name}") or default).strip()
        if not claim_pattern.fullmatch(value):
            raise StartupError(f"KUBEMATE_OIDC_{name} must be a claim name, not {value!r}.")
        claims[name.lower()] = value
    ca_file = (env.get("KUBEMATE_OIDC_CA_FILE") or "").strip()
    return {
        "AUTHENTICATION_BACKENDS": backends_with(OIDC_BACKEND, list(backends or [])),
        "OIDC_RP_CLIENT_ID": client_id,
        "OIDC_RP_CLIENT_SECRET": secret,
        "OIDC_RP_SIGN_ALGO": algorithm,
        "OIDC_RP_SCOPES": scopes,
        "OIDC_USE_PKCE": True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        "OIDC_USE_NONCE": True,
        "OIDC_TOKEN_USE_BASIC_AUTH": flag(env.get("KUBEMATE_OIDC_CLIENT_SECRET_BASIC"), True),
        "OIDC_VERIFY_SSL": ca_file or True,
        "OIDC_TIMEOUT": 10,
        "OIDC_AUTHENTICATION_CALLBACK_URL": "oidc:callback",
        "KUBEMATE_OIDC": {
            "issuer": issuer.rstrip("/"),
            # The sign-in button's words: the name people know their sign-on by ("Bank SSO").
            "name": (env.get("KUBEMATE_OIDC_NAME") or "").strip()[:60],
            "groups_claim": claims["groups_claim"],
            "username_claim": claims["username_claim"],
            # People outside this group (a name in the groups claim) are refused.
            "require_group": (env.get("KUBEMATE_OIDC_REQUIRE_GROUP") or "").strip(),
            # Whether the groups claim replaces the person's groups at each sign-in.
            "mirror_groups": flag(env.get("KUBEMATE_OIDC_MIRROR_GROUPS"), True),
        },
    }
