"""Asking for the password again before dangerous actions (drain, delete, restore, user management).

A view wrapped in ``require_recent_auth`` runs only when the session's last
password proof, at sign-in, on the /reauth/ page or in the confirmation dialog
(a ``password`` field posted with the action), is younger than
``settings.REAUTH_MAX_AGE_SECONDS``. Otherwise the person is sent to /reauth/
and comes back to where they were; a wrong password in the dialog answers a
sentence and changes nothing.
"""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django_htmx.http import HttpResponseClientRedirect

from apps.core import audit
from apps.core.errors import SENTENCE_HEADER
from apps.core.models import AuditEvent

REAUTH_AT_KEY = "kubemate_reauth_at"
# Set at a single sign-on (apps/accounts/oidc): when the identity provider last authenticated the person. Such a
# session has no password here; the provider confirms it again instead (/reauth/ sends them there).
SSO_AUTH_TIME_KEY = "kubemate_sso_auth_time"


def mark_recent_auth(request: HttpRequest, at: float | None = None) -> None:
    """Remember that the person was just proven in this session: by the password now, or by the identity provider
    ``at`` that time (seconds since the epoch; the provider may have reused a sign-in of hours ago)."""
    request.session[REAUTH_AT_KEY] = time.time() if at is None else min(float(at), time.time())


def has_recent_auth(request: HttpRequest) -> bool:
    proven_at = request.session.get(REAUTH_AT_KEY)
    if not isinstance(proven_at, int | float):
        return False
    return 0 <= time.time() - proven_at <= settings.REAUTH_MAX_AGE_SECONDS


def signed_in_by_sso(request: HttpRequest) -> bool:
    """Whether the session came from single sign-on, and single sign-on is on: then the provider, not a password,
    proves the person again (the confirmation dialog and /reauth/ both ask this)."""
    session = getattr(request, "session", None)
    sso_on = bool((getattr(settings, "KUBEMATE_OIDC", None) or {}).get("issuer"))
    return sso_on and session is not None and SSO_AUTH_TIME_KEY in session


def _safe_referer(request: HttpRequest) -> str:
    """The page the request came from, when it is one of ours; else ""."""
    back = request.META.get("HTTP_REFERER", "")
    safe = back and url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure())
    return back if safe else ""


def prove_password(request: HttpRequest, password: str) -> bool:
    """Check the signed-in person's password (through ``authenticate``, so django-axes counts wrong ones as at
    sign-in); on success remember it in the session. Either way the attempt is audited."""
    username = request.user.get_username()
    user = authenticate(request, username=username, password=password) if password else None
    ok = user is not None and user.pk == request.user.pk
    if ok:
        mark_recent_auth(request)
    audit.record(
        actor=request.user,
        action="accounts.reauth",
        result=AuditEvent.Result.SUCCESS if ok else AuditEvent.Result.FAILURE,
        kind="user",
        name=username,
        request=request,
        reason="",
    )
    return ok


def needs_password(request: HttpRequest) -> bool:
    """Whether a dangerous action pressed now would ask for the password (for the confirmation dialog). A single
    sign-on session has no password to type: the action sends them to the provider to confirm instead."""
    return not has_recent_auth(request) and not signed_in_by_sso(request)


def reauth_url(next_path: str) -> str:
    return f"{reverse('security:reauth')}?{urlencode({'next': next_path})}"


def require_recent_auth(view):
    """Run ``view`` only after a recent password proof; send everyone else to confirm it first.

    A plain request is redirected to the confirmation page. An htmx request
    gets 204 with ``HX-Redirect`` so the whole page moves there, and comes
    back to the page it was on rather than to the partial it asked for.
    """

    @wraps(view)
    @sensitive_post_parameters("password")
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if has_recent_auth(request):
            return view(request, *args, **kwargs)
        htmx = getattr(request, "htmx", None)
        if request.method == "POST" and "password" in request.POST:
            if prove_password(request, request.POST.get("password", "")):
                return view(request, *args, **kwargs)
            if not getattr(request, "axes_locked_out", False):
                sentence = _("That password is not right: nothing was done. Type the password you sign in with.")
                if htmx:
                    body = render_to_string("errors/_request_error.html", {"sentence": sentence}, request=request)
                    return HttpResponse(body, status=403, headers={SENTENCE_HEADER: "1"})
                messages.error(request, sentence)
                return HttpResponseRedirect(_safe_referer(request) or resolve_url(settings.LOGIN_REDIRECT_URL))
        if htmx:
            return HttpResponseClientRedirect(
                reauth_url(htmx.current_url_abs_path or request.get_full_path()), status=204
            )
        return HttpResponseRedirect(reauth_url(_return_path(request)))

    return wrapper


def _return_path(request: HttpRequest) -> str:
    """Where to come back after confirming: the page a form was posted from (a GET of the action's own URL would
    not repeat the action), else the URL asked for."""
    back = _safe_referer(request) if request.method != "GET" else ""
    if back:
        parts = urlsplit(back)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return request.get_full_path()
