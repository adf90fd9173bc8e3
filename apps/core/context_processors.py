from django.conf import settings

from apps.core.navigation import sidebar_for


def console(request):
    """What every console page needs: version and, for signed-in users, the sidebar."""
    user = getattr(request, "user", None)
    return {
        "kubemate_version": settings.KUBEMATE_VERSION,
        "sidebar": sidebar_for(request) if user is not None and user.is_authenticated else [],
    }
