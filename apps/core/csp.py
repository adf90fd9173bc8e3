"""The Content-Security-Policy header on every answer (settings.CONTENT_SECURITY_POLICY).

Scripts come only from Kubemate's own static files: no inline script, no event-handler attributes, no
eval, so markup that slipped through escaping could still not run. Styles allow inline attributes
(Tabler's utility styles and ECharts' tooltips set them); a style cannot run code.
"""

from __future__ import annotations

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = "; ".join(f"{name} {value}" for name, value in settings.CONTENT_SECURITY_POLICY.items())

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.policy)
        return response
