from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_GET

from apps.clusters.facts import cluster_facts
from apps.core.htmx import render


@login_required
@require_GET
def cluster_list(request):
    return render(request, "clusters/cluster_list.html", {"clusters": cluster_facts()})
