"""Links from a cluster object or a release to its logs and traces, with the filters filled in
(``{% load telemetry_links %}``). A link is given only when its reader may search there: ``logs.view`` or
``traces.view`` in the object's namespace (the search page narrows again, this only avoids dead links)."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.http import urlencode

from apps.accounts import access
from apps.accounts.capabilities import LOGS_VIEW, TRACES_VIEW

register = template.Library()

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
LINKED_KINDS = ("Pod", "Namespace", *WORKLOAD_KINDS)


def links(user, cluster, kind: str, namespace: str, name: str, *, service: str = "") -> dict[str, str]:
    """{"logs": url, "traces": url} for what ``user`` may open (either may be missing).

    Pods filter by pod, workloads by their pods' names (the log store's ``workload`` filter), a namespace by
    itself. Traces are searched in the namespace, by ``service`` when given (a release's name is its service's)."""
    if kind not in LINKED_KINDS or not namespace:
        return {}
    found = {}
    if access.may(user, LOGS_VIEW, cluster=cluster, namespace=namespace):
        params = {"cluster": cluster.pk, "namespace": namespace}
        if kind == "Pod":
            params["pod"] = name
        elif kind in WORKLOAD_KINDS:
            params["workload"] = name
        found["logs"] = f"{reverse('observability:logs_search')}?{urlencode(params)}"
    if access.may(user, TRACES_VIEW, cluster=cluster, namespace=namespace):
        params = {"cluster": cluster.pk, "namespace": namespace}
        if service or kind in WORKLOAD_KINDS:
            params["service"] = service or name
        found["traces"] = f"{reverse('observability:trace_search')}?{urlencode(params)}"
    return found


@register.simple_tag(takes_context=True)
def telemetry_links(context, cluster, kind: str, namespace: str, name: str, service: str = "") -> dict[str, str]:
    return links(context["request"].user, cluster, kind, namespace, name, service=service)
