"""The Content-Security-Policy header on every answer (settings.CONTENT_SECURITY_POLICY).

Scripts come only from Kubemate's own static files: no inline script, no event-handler attributes, no
eval, so markup that slipped through escaping could still not run. Styles allow inline attributes
(Tabler's utility styles and ECharts' tooltips set them); a style cannot run code.
"""

from __future__ import annotations

from django.conf import settings


def policy() -> str:
    """The header's value; websockets may also go to the terminal service when it has an address of its own."""
    directives = dict(settings.CONTENT_SECURITY_POLICY)
    terminal = getattr(settings, "KUBEMATE_TERMINAL_URL", "")
    if terminal and terminal not in directives.get("connect-src", ""):
        directives["connect-src"] = f"{directives.get('connect-src', '')} {terminal}".strip()
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", policy())
        return response
