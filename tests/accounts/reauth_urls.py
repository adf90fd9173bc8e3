"""The console's URLs plus a dangerous dummy view behind ``require_recent_auth``, for tests/accounts/test_reauth.py."""

from django.http import HttpResponse
from django.urls import URLResolver, include, path

from apps.core import audit
from apps.core.reauth import require_recent_auth
from kubemate.urls import handler404, handler500
from kubemate.urls import urlpatterns as console_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]


@require_recent_auth
def dangerous(request):
    if request.method == "POST":
        audit.record(actor=request.user, action="test.drain", kind="Node", name="node-000", request=request)
    return HttpResponse(f"drained by {request.user.username}")


# Added here only until kubemate/urls.py includes the security URLs itself.
ALREADY_INCLUDED = any(isinstance(p, URLResolver) and p.namespace == "security" for p in console_urlpatterns)
security_urlpatterns = [] if ALREADY_INCLUDED else [path("", include("apps.accounts.urls_security"))]

urlpatterns = [
    path("test/dangerous/", dangerous, name="dangerous"),
    *security_urlpatterns,
    *console_urlpatterns,
]
