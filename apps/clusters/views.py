"""The multi-cluster home: one card per cluster the user may see, read from the inventory tables."""

from django.contrib.auth.decorators import login_required
from django.urls import NoReverseMatch, reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from apps.accounts import access
from apps.clusters import queries
from apps.core.htmx import render


@login_required
@require_GET
def cluster_list(request):
    try:
        register_url = reverse("clusters:registry_add")
    except NoReverseMatch:
        register_url = ""
    context = {
        "cards": queries.cluster_cards(request.user),
        "register_url": register_url,
        "may_manage": bool(register_url) and access.may(request.user, "clusters.manage"),
    }
    response = render(
        request, "clusters/cluster_list.html", context, partial=partial_unless_restoring(request, "cards")
    )
    patch_vary_headers(response, ["HX-Request"])
    return response


def partial_unless_restoring(request, name: str) -> str | None:
    """htmx asks for the whole page when it restores history from the server; everything else gets the partial."""
    return None if request.headers.get("HX-History-Restore-Request") else name
