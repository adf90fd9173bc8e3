"""The one door to the OpenID Connect provider: its discovery document, its signing keys, its token and userinfo
endpoints.

Everything the provider answers is outside input: each answer is read up to ``MAX_BYTES`` and parsed by
``apps.core.untrusted.load_json`` (size, nesting and item count bounded before it is built). The discovery
document is kept for an hour and the keys for ten minutes in the cache; an unknown key id reads the keys again
once, so a provider that rotates its keys is followed without a restart. Every failure is a ``ProviderError``
whose sentence is deferred (``apps.core.deferred``): the sign-in page shows it in the reader's language, the audit
log keeps it for whoever reads it later. Secrets (the client secret, codes, tokens) never appear in a sentence
or a log line.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.core.untrusted import Limits, UntrustedInput, load_json

MAX_BYTES = 262_144
ANSWER = Limits(max_bytes=MAX_BYTES, max_depth=16, max_nodes=10_000)
DISCOVERY_SECONDS = 3600
KEYS_SECONDS = 600
REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")


class ProviderError(Failure):
    """The provider could not be reached or answered something Kubemate refuses (a deferred sentence)."""


class SignInRefused(Failure):
    """The provider vouched for someone Kubemate does not let in, or sent a token it does not trust."""


def config() -> dict:
    """settings.KUBEMATE_OIDC (kubemate/settings/oidc.py), or {} when single sign-on is off."""
    return getattr(settings, "KUBEMATE_OIDC", None) or {}


def enabled() -> bool:
    return bool(config().get("issuer"))


def _verify():
    return getattr(settings, "OIDC_VERIFY_SSL", True)


def _read(response) -> object:
    """The JSON of ``response``, read at most MAX_BYTES and bounded before it is parsed."""
    body = bytearray()
    for chunk in response.iter_content(16_384):
        body += chunk
        if len(body) > MAX_BYTES:
            raise ProviderError(
                D(N_("The identity provider answered more than %(limit)s bytes; it was not read."), limit=MAX_BYTES)
            )
    try:
        return load_json(bytes(body), ANSWER)
    except UntrustedInput:
        raise ProviderError(D(N_("The identity provider answered something that is not JSON."))) from None


def _call(method: str, url: str, **kwargs) -> object:
    import requests

    try:
        with requests.request(
            method, url, timeout=getattr(settings, "OIDC_TIMEOUT", 10), verify=_verify(), stream=True, **kwargs
        ) as response:
            if response.status_code >= 400:
                error = ""
                if response.headers.get("content-type", "").startswith("application/json"):
                    try:
                        answer = _read(response)
                        error = str(answer.get("error", ""))[:80] if isinstance(answer, dict) else ""
                    except ProviderError:
                        error = ""
                raise ProviderError(
                    D(
                        N_("The identity provider refused the request (HTTP %(status)s%(error)s)."),
                        status=response.status_code,
                        error=f": {error}" if error else "",
                    )
                )
            return _read(response)
    except requests.exceptions.SSLError:
        raise ProviderError(
            D(
                N_(
                    "The identity provider's certificate was not accepted; check KUBEMATE_OIDC_CA_FILE "
                    "and the name in its certificate."
                )
            )
        ) from None
    except requests.Timeout:
        raise ProviderError(D(N_("The identity provider did not answer in time."))) from None
    except requests.RequestException:
        host = urlsplit(url).netloc
        raise ProviderError(D(N_("The identity provider at %(host)s could not be reached."), host=host)) from None


def discovery(*, fresh: bool = False) -> dict:
    """The provider's discovery document, checked: its issuer is the configured one and it names the endpoints."""
    issuer = config()["issuer"]
    key = f"oidc:discovery:{issuer}"
    document = None if fresh else cache.get(key)
    if document is None:
        document = _call("GET", f"{issuer}/.well-known/openid-configuration")
        if not isinstance(document, dict) or str(document.get("issuer", "")).rstrip("/") != issuer:
            raise ProviderError(
                D(N_("The identity provider's discovery document names another issuer than %(issuer)s."), issuer=issuer)
            )
        for name in REQUIRED_ENDPOINTS:
            value = document.get(name)
            if not isinstance(value, str) or urlsplit(value).scheme not in ("https", "http"):
                raise ProviderError(D(N_("The identity provider's discovery document has no %(name)s."), name=name))
        cache.set(key, document, DISCOVERY_SECONDS)
    return document


def endpoint(name: str) -> str:
    value = discovery().get(name)
    return value if isinstance(value, str) else ""


def signing_keys(*, fresh: bool = False) -> list[dict]:
    """The provider's published keys (JWKS)."""
    key = f"oidc:jwks:{config()['issuer']}"
    keys = None if fresh else cache.get(key)
    if keys is None:
        answer = _call("GET", endpoint("jwks_uri"))
        keys = answer.get("keys") if isinstance(answer, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise ProviderError(D(N_("The identity provider's key set has no keys.")))
        cache.set(key, keys, KEYS_SECONDS)
    return keys


def exchange_code(payload: dict, *, basic_auth: bool) -> dict:
    """The token endpoint's answer to an authorization code (and the PKCE code verifier)."""
    from requests.auth import HTTPBasicAuth

    data = dict(payload)
    auth = None
    if basic_auth:
        auth = HTTPBasicAuth(data.pop("client_id"), data.pop("client_secret"))
    answer = _call("POST", endpoint("token_endpoint"), data=data, auth=auth)
    if not isinstance(answer, dict) or not isinstance(answer.get("id_token"), str):
        raise ProviderError(D(N_("The identity provider gave no ID token.")))
    return answer


def userinfo(access_token: str) -> dict:
    """The userinfo endpoint's claims ({} when the provider publishes no userinfo endpoint)."""
    url = endpoint("userinfo_endpoint")
    if not url:
        return {}
    answer = _call("GET", url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"})
    if not isinstance(answer, dict):
        raise ProviderError(D(N_("The identity provider's userinfo is not a set of claims.")))
    return answer
