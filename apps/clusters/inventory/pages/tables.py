"""The tables of the inventory pages: kind names, menu groups, list columns, detail labels.

Columns come after name, namespace and status; each reads the row's summary (or an annotated
object path, see ``inventory.lists.OBJECT_COLUMNS``).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from apps.clusters.inventory.summaries import parse_time
from apps.clusters.inventory.words import duration_words
from apps.clusters.kinds import KINDS

# What the pages call each kind comes from the one kind table.
KIND_LABELS = {k.kind: k.label_plural for k in KINDS}
KIND_SINGULAR = {k.kind: k.label for k in KINDS}
NAV_GROUPS = (
    (_("Workloads"), ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet")),
    (_("Network"), ("Service", "HTTPRoute", "Gateway", "Ingress", "EndpointSlice")),
    (_("Config and storage"), ("ConfigMap", "Secret", "PersistentVolumeClaim", "PersistentVolume", "StorageClass")),
    (_("Cluster"), ("Node", "Namespace", "Event", "HorizontalPodAutoscaler")),
)


def _s(key):
    return lambda row: row.summary.get(key, "")


def _join(key):
    return lambda row: ", ".join(str(v) for v in row.summary.get(key) or []) or "—"


def _of(a, b):
    return lambda row: f"{row.summary.get(a, 0)}/{row.summary.get(b, 0)}"


REPLICATED = [
    (_("Ready"), _of("ready", "desired")),
    (_("Up to date"), _s("updated")),
    (_("Available"), _s("available")),
    (_("Images"), _join("images")),
]


def listeners_text(listeners: list[dict]) -> str:
    """'http HTTP:80, https HTTPS:443 (*.bank.example)' for a Gateway's listeners."""
    parts = []
    for item in listeners:
        host = f" ({item['hostname']})" if item.get("hostname") else ""
        parts.append(f"{item.get('name', '')} {item.get('protocol', '')}:{item.get('port', '')}{host}")
    return ", ".join(parts) or "—"


def hpa_metrics_text(metrics: list[dict]) -> str:
    """'cpu 72% / 70%' for each metric an autoscaler targets; '?' where the controller has no reading yet."""
    parts = []
    for m in metrics:
        current = m.get("current_percent")
        current = f"{current}%" if current is not None else (m.get("current_value") or "?")
        target = f"{m['target_percent']}%" if m.get("target_percent") is not None else (m.get("target_value") or "?")
        parts.append(f"{m.get('name', '')} {current} / {target}")
    return ", ".join(parts) or "—"


COLUMNS = {
    "Pod": [
        (_("Ready"), _s("ready")),
        (_("Restarts"), _s("restarts")),
        (_("Node"), _s("node")),
        (_("IP"), _s("ip")),
        (_("Images"), _join("images")),
    ],
    "Deployment": REPLICATED,
    "StatefulSet": REPLICATED,
    "ReplicaSet": REPLICATED,
    "DaemonSet": [(_("Desired"), _s("desired")), *REPLICATED],
    "Job": [(_("Succeeded"), _s("succeeded")), (_("Failed"), _s("failed")), (_("Active"), _s("active"))],
    "CronJob": [(_("Schedule"), _s("schedule")), (_("Last run"), lambda r: time_text(r.summary.get("last")))],
    "Service": [(_("Cluster IP"), _s("cluster_ip")), (_("Ports"), _join("ports"))],
    "EndpointSlice": [(_("Service"), _s("service")), (_("Ready endpoints"), _of("ready", "endpoints"))],
    "Ingress": [(_("Hosts"), _join("hosts"))],
    "HTTPRoute": [(_("Hosts"), _join("hosts"))],
    "Gateway": [(_("Listeners"), lambda r: listeners_text(r.summary.get("listeners") or []))],
    "ConfigMap": [(_("Keys"), _s("keys"))],
    "Secret": [(_("Keys"), _s("keys"))],
    "PersistentVolumeClaim": [(_("Capacity"), _s("capacity")), (_("Storage class"), _s("storage_class"))],
    "PersistentVolume": [
        (_("Capacity"), lambda r: r.capacity or ""),
        (_("Claim"), lambda r: f"{r.claim_namespace}/{r.claim}" if r.claim else "—"),
        (_("Storage class"), lambda r: r.storage_class or ""),
    ],
    "StorageClass": [(_("Provisioner"), _s("provisioner"))],
    "HorizontalPodAutoscaler": [
        (_("Target"), _s("target")),
        (_("Replicas"), lambda r: f"{r.summary.get('current', 0)} ({r.summary.get('min')}–{r.summary.get('max')})"),
        (_("Current / target"), lambda r: hpa_metrics_text(r.summary.get("metrics") or [])),
    ],
    "Node": [
        (_("Roles"), _join("roles")),
        (_("CPU"), _s("cpu")),
        (_("Memory"), _s("memory")),
        (_("Kubelet"), _s("version")),
    ],
    # The event's own name is a generated one: the list leads with the object it is about (first column).
    "Event": [
        (_("Reason"), _s("reason")),
        (_("Message"), _s("message")),
        (_("Count"), _s("count")),
    ],
}
# The column that may wrap (long messages); the others stay on one line.
WIDE_COLUMN = {"Event": _("Message")}
STATUS_HEADER = {
    "Service": _("Type"),
    "Secret": _("Type"),
    "Event": _("Type"),
    "Namespace": _("Phase"),
    "PersistentVolume": _("Phase"),
    "PersistentVolumeClaim": _("Phase"),
}
SUMMARY_LABELS = {
    "ready": _("Ready"),
    "restarts": _("Restarts"),
    "node": _("Node"),
    "ip": _("Pod IP"),
    "desired": _("Desired replicas"),
    "updated": _("Up to date"),
    "images": _("Images"),
    "available": _("Available"),
    "roles": _("Roles"),
    "cpu": _("CPU"),
    "memory": _("Memory"),
    "pods": _("Pods allowed"),
    "gpu": _("GPUs"),
    "version": _("Kubelet version"),
    "unschedulable": _("Cordoned"),
    "succeeded": _("Succeeded"),
    "failed": _("Failed"),
    "active": _("Active"),
    "schedule": _("Schedule"),
    "last": _("Last"),
    "cluster_ip": _("Cluster IP"),
    "ports": _("Ports"),
    "endpoints": _("Endpoints"),
    "service": _("Service"),
    "hosts": _("Hosts"),
    "capacity": _("Capacity"),
    "storage_class": _("Storage class"),
    "min": _("Minimum replicas"),
    "max": _("Maximum replicas"),
    "current": _("Current replicas"),
    "target": _("Scales"),
    "reason": _("Reason"),
    "message": _("Message"),
    "count": _("Count"),
    "object_kind": _("Object kind"),
    "object_name": _("Object"),
    "keys": _("Keys"),
    "provisioner": _("Provisioner"),
}


# Conditions that report a problem when they are True; all others report health when True.
BAD_WHEN_TRUE = frozenset(
    {"MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable", "ReplicaFailure", "Failed", "Stalled"}
)


def time_text(value) -> str:
    return str(value or "—").replace("T", " ").replace("Z", " UTC")


def event_times(row, now) -> None:
    """Give an event row ``last`` (when it last happened, as text) and ``last_ago`` ("5 minutes ago")."""
    last = row.summary.get("last")
    row.last = time_text(last)
    try:
        when = parse_time(last) if isinstance(last, str) else None
    except ValueError:
        when = None
    row.last_ago = _("%(age)s ago") % {"age": duration_words((now - when).total_seconds())} if when else "—"
