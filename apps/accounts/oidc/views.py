"""The two OpenID Connect pages: /oidc/authenticate/ sends the browser to the provider, /oidc/callback/ takes it back.

mozilla-django-oidc's views, with what a bank's console needs around them:

- 404 when single sign-on is off;
- the provider's endpoints from its discovery document (provider.py), and a sentence on the sign-in page, never
  a 500, when the provider is down or answers something refused; every refusal is audited
  (``accounts.login_failed`` with the reason);
- the provider's pages in the reader's language (``ui_locales``);
- re-authentication before dangerous actions: ``?reauth=1`` asks the provider to authenticate the person again
  (``prompt=login``, ``max_age=0``), and the callback accepts the proof only from the same person, with an
  ``auth_time`` after the request;
- a session's proof dated at the provider's ``auth_time``, so an old provider session does not count as a fresh
  password.
"""

from __future__ import annotations

import time

from django.contrib import auth, messages
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.translation import get_language
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from apps.accounts.oidc import provider
from apps.accounts.oidc.provider import SignInRefused
from apps.core import audit
from apps.core.deferred import N_, render
from apps.core.deferred import text as D
from apps.core.models import AuditEvent
from apps.core.reauth import SSO_AUTH_TIME_KEY, mark_recent_auth

REAUTH_SINCE_KEY = "kubemate_sso_reauth_since"
# A provider's clock may run a little behind ours.
CLOCK_SKEW_SECONDS = 30
UI_LOCALES = {"zh-hans": "zh-CN zh en", "en": "en"}


def _refuse(request, sentence: str, *, back: str = ""):
    """Back to the sign-in page, or to ``back`` (the page of a signed-in person who was confirming who they are),
    with ``sentence``; audited as a failed sign-in."""
    signed_in = request.user.is_authenticated
    audit.record(
        actor=request.user if signed_in else None,
        actor_name=request.user.get_username() if signed_in else "(single sign-on)",
        action="accounts.login_failed",
        result=AuditEvent.Result.FAILURE,
        kind="user",
        name="(single sign-on)",
        request=request,
        detail={"error": sentence},
        reason="",
    )
    messages.error(request, render(sentence))
    return HttpResponseRedirect(back if signed_in and back else resolve_url("login"))


class Authenticate(OIDCAuthenticationRequestView):
    def __init__(self, *args, **kwargs):
        # The endpoint is read from the discovery document when the page is asked for, not from settings.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)
        self.OIDC_RP_CLIENT_ID = self.get_settings("OIDC_RP_CLIENT_ID", "")

    def get(self, request):
        if not provider.enabled():
            raise Http404
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider.endpoint("authorization_endpoint")
        except provider.ProviderError as exc:
            return _refuse(request, exc.stored)
        request.session.pop(REAUTH_SINCE_KEY, None)
        if request.GET.get("reauth") == "1" and request.user.is_authenticated:
            request.session[REAUTH_SINCE_KEY] = time.time()
        return super().get(request)

    def get_extra_params(self, request):
        params = {"ui_locales": UI_LOCALES.get(get_language() or "en", "en")}
        if request.session.get(REAUTH_SINCE_KEY):
            params |= {"prompt": "login", "max_age": "0", "login_hint": request.user.get_username()}
        return params


class Callback(OIDCAuthenticationCallbackView):
    def get(self, request):
        if not provider.enabled():
            raise Http404
        if request.GET.get("error"):
            error = request.GET.get("error", "")[:60]
            states = request.session.get("oidc_states") or {}
            if states.pop(request.GET.get("state", ""), None) is not None:  # a state is used once
                request.session["oidc_states"] = states
            request.session.pop(REAUTH_SINCE_KEY, None)
            if error == "access_denied":
                sentence = D(N_("Signing in was cancelled at the identity provider."))
            else:
                sentence = D(N_("The identity provider refused the sign-in (%(error)s)."), error=error)
            return _refuse(request, sentence, back=self.success_url)
        try:
            return super().get(request)
        except (provider.ProviderError, SignInRefused) as exc:
            return _refuse(request, exc.stored, back=self.success_url)
        except SuspiciousOperation:
            return _refuse(
                request, D(N_("This sign-in link was already used or belongs to another browser; sign in again."))
            )

    def login_failure(self):
        return _refuse(self.request, D(N_("Single sign-on did not complete; sign in again.")))

    def login_success(self):
        request = self.request
        proven_at = float(request.session.get(SSO_AUTH_TIME_KEY) or 0)
        since = request.session.pop(REAUTH_SINCE_KEY, None)
        if since is not None and request.user.is_authenticated:
            return self._confirmed(since, proven_at)
        response = super().login_success()
        # auth.login dated the proof now; the provider may have reused a sign-in of hours ago.
        mark_recent_auth(request, proven_at)
        request.session[SSO_AUTH_TIME_KEY] = proven_at
        return response

    def _confirmed(self, since: float, proven_at: float):
        """A re-authentication: the same person, authenticated by the provider after it was asked."""
        request = self.request
        same = self.user.pk == request.user.pk
        fresh = proven_at >= since - CLOCK_SKEW_SECONDS
        audit.record(
            actor=request.user,
            action="accounts.reauth",
            result=AuditEvent.Result.SUCCESS if same and fresh else AuditEvent.Result.FAILURE,
            kind="user",
            name=request.user.get_username(),
            request=request,
            detail={"sso": True}
            if same and fresh
            else {"sso": True, "error": "someone else" if not same else "not asked again"},
            reason="",
        )
        if not same:
            auth.logout(request)
            messages.error(
                request,
                render(D(N_("You confirmed as someone else at the identity provider, so you were signed out."))),
            )
            return HttpResponseRedirect(resolve_url("login"))
        if not fresh:
            messages.error(
                request,
                render(
                    D(
                        N_(
                            "The identity provider did not ask who you are again, so nothing was confirmed. "
                            "Ask its administrators to honour prompt=login."
                        )
                    )
                ),
            )
            return HttpResponseRedirect(self.success_url)
        mark_recent_auth(request, proven_at)
        request.session[SSO_AUTH_TIME_KEY] = proven_at
        return HttpResponseRedirect(self.success_url)
