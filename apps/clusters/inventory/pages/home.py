"""The multi-cluster home: one card per cluster the user may see, read from the inventory tables."""

from django.contrib.auth.decorators import login_required
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from apps.accounts import access
from apps.accounts.capabilities import CLUSTERS_MANAGE
from apps.clusters.inventory.health import cluster_cards
from apps.core.htmx import render


@login_required
@require_GET
def cluster_list(request):
    try:
        register_url = reverse("clusters:registry_add")
    except NoReverseMatch:
        register_url = ""
    context = {
        "cards": cluster_cards(request.user),
        "register_url": register_url,
        "may_manage": bool(register_url) and access.may(request.user, CLUSTERS_MANAGE),
    }
    return render(request, "clusters/cluster_list.html", context, partial="cards")
