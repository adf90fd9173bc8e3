"""The terminal page of a pod: choose a container and a shell, confirm (password: pods.exec is dangerous), then the
page opens the websocket to the terminal service (server.py), which runs the shell as the person."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.views.decorators.http import require_http_methods

from apps.clusters import kube
from apps.clusters.actions import registry
from apps.clusters.actions import services as actions
from apps.clusters.actions.targets import ActionError, Target
from apps.core.htmx import render
from apps.core.reauth import needs_password, require_recent_auth
from apps.terminal import services

TEMPLATE = "terminal/terminal.html"


def websocket_base(request) -> str:
    """Where the browser opens terminals: the service's own address, or this console's (behind a proxy)."""
    if settings.KUBEMATE_TERMINAL_URL:
        return settings.KUBEMATE_TERMINAL_URL
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}"


@login_required
@require_http_methods(["GET", "POST"])
def terminal_page(request, cluster_id: int, namespace: str, name: str):
    target = registry.target(request.user, "terminal", cluster_id, "pod", namespace, name)
    if request.method == "POST":
        return require_recent_auth(_open)(request, target)
    return _page(request, target)


def _page(request, target: Target, *, session=None, error: str = "", status: int = 200):
    try:
        containers = actions.pod_containers(user=request.user, target=target)
    except kube.NotFound:
        raise Http404 from None
    except ActionError as exc:
        containers, error = [], str(exc)
    context = {
        "target": target,
        "cluster": target.cluster,
        "containers": containers,
        "shells": list(services.SHELLS),
        "session": session,
        "error": error,
        "needs_password": needs_password(request),
        "websocket": f"{websocket_base(request)}/ws/terminal/{session.pk}/" if session else "",
        "idle_minutes": services.idle_seconds() // 60,
        "max_minutes": services.max_seconds() // 60,
    }
    return render(request, TEMPLATE, context, status=status)


def _open(request, target: Target):
    try:
        containers = actions.pod_containers(user=request.user, target=target)
        session = services.open_session(
            actor=request.user,
            target=target,
            container=request.POST.get("container", ""),
            shell=request.POST.get("shell", "sh"),
            containers=containers,
            request=request,
        )
    except kube.NotFound:
        raise Http404 from None
    except ActionError as exc:
        return _page(request, target, error=str(exc))
    return _page(request, target, session=session)
