"""The GPU pages: every cluster's GPUs (home), one cluster's GPU page, and its two parts read from outside the
inventory, loaded after the page: DCGM readings from Prometheus, and quotas read from the cluster as the person.

Views authorize (``ai.view`` somewhere in the cluster; 404 otherwise, as for a missing cluster), call
``services`` and render; what Prometheus or the cluster could not answer is a sentence in the part, never an
error page.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.accounts import access as accounts_access
from apps.accounts.capabilities import AI_VIEW
from apps.ai import access
from apps.ai.gpu import metrics, services


def _cluster(request, cluster_id: int):
    cluster = accounts_access.cluster(request.user, cluster_id)
    if not services.may_view(request.user, cluster):
        raise Http404
    return cluster


@login_required
@require_GET
def gpu_home(request):
    if not access.anywhere(request.user, AI_VIEW):
        raise Http404
    return render(request, "ai/gpu/home.html", {"summaries": services.summary(request.user)})


@login_required
@require_GET
def gpu_cluster(request, cluster_id: int):
    cluster = _cluster(request, cluster_id)
    return render(
        request, "ai/gpu/cluster.html", {"cluster": cluster, "page": services.cluster_gpus(request.user, cluster)}
    )


@login_required
@require_GET
def gpu_metrics(request, cluster_id: int):
    cluster = _cluster(request, cluster_id)
    readings, uses = services.cluster_readings(request.user, cluster)
    context = {
        "cluster": cluster,
        "readings": readings,
        "uses": uses,
        "idle_percent": metrics.IDLE_PERCENT,
        "window": metrics.IDLE_WINDOW_MINUTES,
    }
    return render(request, "ai/gpu/_metrics.html", context)


@login_required
@require_GET
def gpu_quotas(request, cluster_id: int):
    cluster = _cluster(request, cluster_id)
    return render(
        request, "ai/gpu/_quotas.html", {"cluster": cluster, "quotas": services.cluster_quotas(request.user, cluster)}
    )
