"""The password confirmation page that ``require_recent_auth`` sends people to."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from apps.accounts.oidc import provider
from apps.core.reauth import prove_password, signed_in_by_sso


def _safe_next(request: HttpRequest) -> str:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return next_url if allowed else ""


@sensitive_post_parameters("password")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def reauth(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    if signed_in_by_sso(request):
        # No password here: the identity provider confirms who they are (apps/accounts/oidc/views.py).
        return render(request, "registration/reauth_sso.html", {"next": next_url, "sso": provider.config()})
    error = ""
    if request.method == "POST":
        password = request.POST.get("password", "")
        if prove_password(request, password):
            return redirect(next_url or settings.LOGIN_REDIRECT_URL)
        if getattr(request, "axes_locked_out", False):
            logout(request)
            messages.error(
                request,
                _(
                    "You were signed out after too many wrong passwords. Signing in is locked for a while; "
                    "ask an administrator if you need to get in now."
                ),
            )
            # AxesMiddleware would replace this redirect with the lock-out page; the sign-in page
            # shows the same lock-out when they try again, and the message above says why.
            request.axes_locked_out = False
            return redirect(settings.LOGIN_URL)
        error = (
            _("That password is not right. Type the password you sign in with.")
            if password
            else _("Type your password.")
        )
    return render(request, "registration/reauth.html", {"next": next_url, "error": error})
