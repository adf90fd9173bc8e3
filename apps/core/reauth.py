"""Asking for the password again before dangerous actions (drain, delete, restore, user management).

A view wrapped in ``require_recent_auth`` runs only when the session's last
password proof, at sign-in or on the /reauth/ page, is younger than
``settings.REAUTH_MAX_AGE_SECONDS``. Otherwise the person is sent to /reauth/
and comes back to where they were.
"""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

REAUTH_AT_KEY = "kubemate_reauth_at"


def mark_recent_auth(request: HttpRequest) -> None:
    """Remember that the password was just proven in this session."""
    request.session[REAUTH_AT_KEY] = time.time()


def has_recent_auth(request: HttpRequest) -> bool:
    proven_at = request.session.get(REAUTH_AT_KEY)
    if not isinstance(proven_at, int | float):
        return False
    return 0 <= time.time() - proven_at <= settings.REAUTH_MAX_AGE_SECONDS


def reauth_url(next_path: str) -> str:
    return f"{reverse('security:reauth')}?{urlencode({'next': next_path})}"


def require_recent_auth(view):
    """Run ``view`` only after a recent password proof; send everyone else to confirm it first.

    A plain request is redirected to the confirmation page. An htmx request
    gets 204 with ``HX-Redirect`` so the whole page moves there, and comes
    back to the page it was on rather than to the partial it asked for.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if has_recent_auth(request):
            return view(request, *args, **kwargs)
        htmx = getattr(request, "htmx", None)
        if htmx:
            return HttpResponseClientRedirect(
                reauth_url(htmx.current_url_abs_path or request.get_full_path()), status=204
            )
        return HttpResponseRedirect(reauth_url(request.get_full_path()))

    return wrapper
