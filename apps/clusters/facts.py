"""Live facts about registered clusters for the dashboard, cached briefly so page loads stay fast."""

from __future__ import annotations

from django.core.cache import cache

from apps.clusters.models import Cluster

CACHE_SECONDS = 15


def cluster_facts() -> list[dict]:
    from apps.clusters.k8s import read_summary
    from apps.clusters.kube import KubeError

    facts = []
    for cluster in Cluster.objects.all()[:20]:
        key = f"cluster-facts:{cluster.pk}"
        fact = cache.get(key)
        if fact is None:
            try:
                summary = read_summary(cluster)
                fact = {
                    "ok": True,
                    "version": summary.version,
                    "nodes": summary.nodes,
                    "ready_nodes": summary.ready_nodes,
                }
            except KubeError as exc:
                fact = {"ok": False, "error": str(exc)}
            cache.set(key, fact, CACHE_SECONDS)
        facts.append({"name": cluster.name, "pk": cluster.pk, **fact})
    return facts
