"""What a detail page shows around one object: its owner, the objects an operator looks at next,
its events, a namespace's contents, a pod's containers and the latest usage.

Every list is filtered by what the user may see (``accounts.access``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count
from django.db.models.fields.json import KeyTextTransform
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from apps.accounts import access
from apps.clusters.inventory.lists import SLUG_OF
from apps.clusters.inventory.words import badge_class, bytes_words, cpu_words
from apps.clusters.kinds import KINDS
from apps.clusters.models import Resource

LIGHT = ("id", "kind", "namespace", "name", "status", "summary", "labels", "created", "uid", "owner_uid")


def decorate(rows) -> list[Resource]:
    """Give rows what templates need to link them: kind slug and the namespace part of their URL."""
    rows = list(rows)
    for row in rows:
        row.slug = SLUG_OF.get(row.kind, "")
        row.ns_arg = row.namespace or "_"
    return rows


@dataclass
class Section:
    key: str
    title: str
    rows: list
    empty: str = ""


def _selector_matches(selector: dict | None, labels: dict | None) -> bool:
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


def _services_for_labels(user, cluster, namespace: str, pod_labels: dict) -> list[Resource]:
    rows = access.resources(user, cluster, "Service").filter(namespace=namespace).order_by("name")
    selectors = dict(rows.values_list("id", "object__spec__selector"))
    wanted = [pk for pk, selector in selectors.items() if _selector_matches(selector, pod_labels)]
    return list(rows.filter(pk__in=wanted).only(*LIGHT)) if wanted else []


def _routes_for_services(user, cluster, namespace: str, service_names: set[str]) -> list[Resource]:
    if not service_names:
        return []
    rows = access.resources(user, cluster, "HTTPRoute")
    wanted = []
    for pk, route_ns, rules in rows.values_list("id", "namespace", "object__spec__rules"):
        for rule in rules or []:
            for ref in rule.get("backendRefs") or []:
                same_kind = ref.get("kind", "Service") == "Service" and not ref.get("group")
                if same_kind and ref.get("namespace", route_ns) == namespace and ref.get("name") in service_names:
                    wanted.append(pk)
    return list(rows.filter(pk__in=wanted).only(*LIGHT).order_by("namespace", "name")) if wanted else []


def _hpas_for(user, cluster, resource: Resource) -> list[Resource]:
    rows = access.resources(user, cluster, "HorizontalPodAutoscaler").filter(
        namespace=resource.namespace,
        object__spec__scaleTargetRef__name=resource.name,
        object__spec__scaleTargetRef__kind=resource.kind,
    )
    return list(rows.only(*LIGHT))


def events_for(user, cluster, resource: Resource, limit: int = 50) -> list[Resource]:
    rows = access.resources(user, cluster, "Event").filter(summary__object_uid=str(resource.uid))
    return list(rows.annotate(last=KeyTextTransform("last", "summary")).order_by("-last", "-id").only(*LIGHT)[:limit])


def related_sections(user, cluster, resource: Resource) -> list[Section]:
    """The objects around ``resource`` that an operator looks at next, each list filtered by visibility."""
    kind, ns = resource.kind, resource.namespace
    obj = resource.object or {}
    spec = obj.get("spec") or {}
    sections: list[Section] = []

    def visible(kind_name: str):
        return access.resources(user, cluster, kind_name)

    def add(key, title, rows, empty=""):
        sections.append(Section(key, title, decorate(rows), empty))

    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"):
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if kind == "Deployment":
            replicasets = list(visible("ReplicaSet").filter(owner_uid=resource.uid).only(*LIGHT).order_by("-created"))
            add("replicasets", _("Replica sets"), replicasets, _("No replica set belongs to this deployment."))
            owners = [rs.uid for rs in replicasets]
        elif kind == "CronJob":
            jobs = visible("Job").filter(owner_uid=resource.uid).only(*LIGHT).order_by("-created")
            none_kept = _("This cron job has not started a job that is still kept.")
            add("jobs", pgettext("Kubernetes kind", "Jobs"), jobs[:50], none_kept)
            owners = []
        else:
            owners = [resource.uid]
        if kind != "CronJob":
            pods = visible("Pod").filter(owner_uid__in=owners).only(*LIGHT).order_by("name")
            add("pods", _("Pods"), pods[:200], _("No pod runs for it right now."))
        if kind in ("Deployment", "StatefulSet", "DaemonSet") and template_labels:
            services = _services_for_labels(user, cluster, ns, template_labels)
            add("services", _("Services"), services, _("No service sends traffic to these pods."))
            routes = _routes_for_services(user, cluster, ns, {s.name for s in services})
            add("routes", _("HTTP routes"), routes, _("No HTTP route points at these services."))
        if kind in ("Deployment", "StatefulSet"):
            add("hpas", _("Autoscaling"), _hpas_for(user, cluster, resource), _("No autoscaler scales it."))
    elif kind == "Service":
        slices = visible("EndpointSlice").filter(
            namespace=ns, labels__contains={"kubernetes.io/service-name": resource.name}
        )
        add("endpointslices", _("Endpoint slices"), slices.only(*LIGHT).order_by("name"))
        selector = spec.get("selector") or {}
        pods = (
            visible("Pod").filter(namespace=ns, labels__contains=selector).only(*LIGHT).order_by("name")
            if selector
            else []
        )
        add("pods", _("Pods"), list(pods[:200]), _("No pod matches this service's selector."))
        routes = _routes_for_services(user, cluster, ns, {resource.name})
        add("routes", _("HTTP routes"), routes, _("No HTTP route points at this service."))
    elif kind == "Node":
        pods = visible("Pod").filter(summary__node=resource.name).only(*LIGHT).order_by("namespace", "name")
        add("pods", _("Pods on this node"), pods[:300], _("No pod you may see runs on this node."))
    elif kind == "PersistentVolumeClaim":
        pods = visible("Pod").filter(
            namespace=ns, object__spec__volumes__contains=[{"persistentVolumeClaim": {"claimName": resource.name}}]
        )
        add("pods", _("Pods using this claim"), pods.only(*LIGHT).order_by("name"), _("No pod uses this claim."))
    elif kind == "HTTPRoute":
        names = {
            ref.get("name")
            for rule in spec.get("rules") or []
            for ref in rule.get("backendRefs") or []
            if ref.get("kind", "Service") == "Service" and ref.get("namespace", ns) == ns
        }
        services = visible("Service").filter(namespace=ns, name__in=names).only(*LIGHT)
        add("services", _("Backend services"), services.order_by("name"), _("This route names no service."))
    elif kind == "HorizontalPodAutoscaler":
        target = spec.get("scaleTargetRef") or {}
        rows = visible(target.get("kind") or "Deployment")
        add("target", _("Scales"), rows.filter(namespace=ns, name=target.get("name", "")).only(*LIGHT))
    if kind != "Event":
        add("events", _("Events"), events_for(user, cluster, resource), _("No event was recorded for it."))
    return sections


def namespace_contents(user, cluster, namespace: str) -> list[tuple[str, int]]:
    """(kind, count) of the objects the user may see in one namespace, in one query."""
    kinds = [k.kind for k in KINDS if k.namespaced and k.kind != "Event"]
    combined = access.kinds_q(user, cluster, kinds)
    if combined is None:
        return []
    rows = Resource.objects.filter(combined, namespace=namespace).values("kind").annotate(n=Count("id")).order_by()
    counts = {row["kind"]: row["n"] for row in rows}
    return [(kind, counts[kind]) for kind in kinds if kind in counts]


def owner_of(user, cluster, resource: Resource) -> Resource | None:
    if not resource.owner_uid or not resource.owner_kind:
        return None
    row = access.resources(user, cluster, resource.owner_kind).filter(uid=resource.owner_uid).only(*LIGHT).first()
    return decorate([row])[0] if row else None


def metrics_for(user, cluster, resource: Resource) -> dict | None:
    """The latest usage row for a node or pod, when the metrics sync stored one."""
    kind = {"Node": "NodeMetrics", "Pod": "PodMetrics"}.get(resource.kind)
    if not kind:
        return None
    row = access.resources(user, cluster, kind).filter(namespace=resource.namespace, name=resource.name).first()
    if row is None:
        return None
    s = row.summary or {}
    return {
        "cpu": cpu_words(s.get("cpu_millicores")),
        "memory": bytes_words(s.get("memory_bytes")),
        "at": row.synced_at,
    }


def containers_of(resource: Resource) -> list[dict]:
    """A pod's containers with image, state in words, restarts and resources."""
    obj = resource.object or {}
    statuses = {c.get("name"): c for c in (obj.get("status") or {}).get("containerStatuses") or []}
    rows = []
    for container in (obj.get("spec") or {}).get("containers") or []:
        status = statuses.get(container.get("name"), {})
        state = status.get("state") or {}
        last = (status.get("lastState") or {}).get("terminated") or {}
        if "running" in state:
            word, badge, detail = _("Running"), "bg-green-lt", state["running"].get("startedAt", "")
        elif "waiting" in state:
            reason = state["waiting"].get("reason", "")
            word, badge, detail = (
                reason or _("Waiting"),
                badge_class(reason or "Pending"),
                state["waiting"].get("message", ""),
            )
        elif "terminated" in state:
            t = state["terminated"]
            word = t.get("reason") or _("Terminated")
            badge = "bg-secondary-lt" if t.get("exitCode") == 0 else "bg-red-lt"
            detail = _("exit code %(code)s") % {"code": t.get("exitCode")}
        else:
            word, badge, detail = _("Not started"), "bg-secondary-lt", ""
        resources = container.get("resources") or {}
        rows.append(
            {
                "name": container.get("name", ""),
                "image": container.get("image", ""),
                "state": word,
                "badge": badge,
                "detail": detail,
                "ready": bool(status.get("ready")),
                "restarts": status.get("restartCount", 0),
                "last_reason": last.get("reason", ""),
                "last_exit": last.get("exitCode"),
                "requests": ", ".join(f"{k} {v}" for k, v in (resources.get("requests") or {}).items()),
                "limits": ", ".join(f"{k} {v}" for k, v in (resources.get("limits") or {}).items()),
            }
        )
    return rows
