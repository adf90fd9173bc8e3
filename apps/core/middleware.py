"""Session expiry: log out after 30 minutes idle or 12 hours in all (both from settings).

Background polling (requests that carry ``X-Kubemate-Poll``) does not count as
activity, so a dashboard left open still expires when nobody uses it.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect

from apps.core.errors import SENTENCE_HEADER
from apps.core.redis import ServiceUnavailable

LOGIN_AT_KEY = "kubemate_login_at"
LAST_ACTIVITY_KEY = "kubemate_last_activity"
POLL_HEADER = "HTTP_X_KUBEMATE_POLL"
PROBE_PATHS = ("/healthz", "/readyz")
# Writing the session on every click costs a database write; a minute of slack is enough.
ACTIVITY_RESOLUTION_SECONDS = 60


class SessionExpiryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # The probes answer without the session: liveness must not depend on PostgreSQL or Redis.
        if request.path not in PROBE_PATHS and request.user.is_authenticated:
            expired = self._check(request)
            if expired is not None:
                return expired
        return self.get_response(request)

    def _check(self, request):
        session = request.session
        now = time.time()
        login_at = session.get(LOGIN_AT_KEY)
        last = session.get(LAST_ACTIVITY_KEY)
        if login_at is None or last is None:
            session[LOGIN_AT_KEY] = login_at or now
            session[LAST_ACTIVITY_KEY] = now
            return None
        if now - login_at > settings.SESSION_ABSOLUTE_SECONDS or now - last > settings.SESSION_IDLE_SECONDS:
            logout(request)
            messages.info(request, _("Your session expired. Please sign in again."))
            url = f"{reverse(settings.LOGIN_URL)}?{urlencode({'next': request.get_full_path()})}"
            if getattr(request, "htmx", False):
                return HttpResponseClientRedirect(url, status=204)
            return HttpResponseRedirect(url)
        if POLL_HEADER not in request.META and now - last > ACTIVITY_RESOLUTION_SECONDS:
            session[LAST_ACTIVITY_KEY] = now
        return None


class ServiceUnavailableMiddleware:
    """Work that needs Redis while Redis is down (apps.core.redis.ServiceUnavailable) answers its sentence, 503.

    For htmx the sentence is a fragment the page's script swaps in where the result would have gone.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, ServiceUnavailable):
            return None
        template = "errors/_request_error.html" if request.headers.get("HX-Request") else "errors/400.html"
        response = render(request, template, {"sentence": str(exception)}, status=503)
        response[SENTENCE_HEADER] = "1"
        return response
