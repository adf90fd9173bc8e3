"""Turn a Kubernetes object into the row the inventory stores: status word, list summary, stored object.

``status`` is one word for filters and badges (Running, Pending, CrashLoopBackOff,
Available, Degraded, Ready, NotReady, ...). ``summary`` holds the few numbers a
list shows (ready "2/3", restarts, node, replicas, type/reason for events).
Secrets keep metadata and type only.
"""

from __future__ import annotations

from datetime import datetime

from apps.clusters.values import byte_count, millicores

SECRET_ANNOTATION_DROP = ("kubectl.kubernetes.io/last-applied-configuration",)
WAITING_PROBLEMS = (
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "RunContainerError",
)


def strip(kind: str, obj: dict) -> dict:
    """The object as stored: no managedFields; Secrets without data, stringData or applied-config annotations."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    if kind == "Secret":
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in SECRET_ANNOTATION_DROP}
        meta["annotations"] = annotations
        return {
            "apiVersion": obj.get("apiVersion", "v1"),
            "kind": "Secret",
            "metadata": meta,
            "type": obj.get("type", ""),
            "keys": sorted((obj.get("data") or {}).keys()),
        }
    return {**obj, "metadata": meta}


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def controller_of(obj: dict) -> dict | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), refs[0] if refs else None)


MAX_IMAGES = 8


def images_of(pod_spec: dict) -> list[str]:
    """The images a pod spec runs (containers, then init containers), each once, at most eight."""
    seen: list[str] = []
    for container in [*(pod_spec.get("containers") or []), *(pod_spec.get("initContainers") or [])]:
        image = str((container or {}).get("image") or "")[:512]
        if image and image not in seen:
            seen.append(image)
    return seen[:MAX_IMAGES]


def _pod(obj: dict) -> tuple[str, dict]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = status.get("containerStatuses") or []
    ready = sum(1 for c in containers if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in containers)
    word = status.get("phase") or "Pending"
    for c in containers:
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in WAITING_PROBLEMS:
            word = waiting["reason"]
            break
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        word = "Terminating"
    summary = {
        "ready": f"{ready}/{len(spec.get('containers') or containers)}",
        "restarts": restarts,
        "node": spec.get("nodeName", ""),
        "ip": status.get("podIP", ""),
        "images": images_of(spec),
    }
    return word, summary


def _replicated(obj: dict) -> tuple[str, dict]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = int(spec.get("replicas", 1) if "replicas" in spec else status.get("desiredNumberScheduled", 0) or 0)
    ready = int(status.get("readyReplicas", status.get("numberReady", 0)) or 0)
    updated = int(status.get("updatedReplicas", status.get("updatedNumberScheduled", 0)) or 0)
    available = int(status.get("availableReplicas", status.get("numberAvailable", 0)) or 0)
    if desired == 0:
        word = "ScaledDown"
    elif ready >= desired and available >= desired:
        word = "Available"
    elif (
        any(c.get("type") == "Progressing" and c.get("status") == "True" for c in status.get("conditions") or [])
        and ready > 0
    ):
        word = "Progressing"
    else:
        word = "Degraded"
    images = images_of(((spec.get("template") or {}).get("spec")) or {})
    return word, {"desired": desired, "ready": ready, "updated": updated, "available": available, "images": images}


def _node(obj: dict) -> tuple[str, dict]:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    labels = (obj.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    word = ("Ready" if ready else "NotReady") + (",SchedulingDisabled" if spec.get("unschedulable") else "")
    capacity, allocatable = status.get("capacity") or {}, status.get("allocatable") or {}
    return word, {
        "roles": roles,
        "cpu": capacity.get("cpu", ""),
        "memory": capacity.get("memory", ""),
        "pods": allocatable.get("pods", ""),
        "gpu": capacity.get("nvidia.com/gpu", ""),
        "version": (status.get("nodeInfo") or {}).get("kubeletVersion", ""),
        "unschedulable": bool(spec.get("unschedulable")),
        # What pods may use (the usage bars' 100 %).
        "cpu_allocatable_m": millicores(allocatable.get("cpu", "0")),
        "memory_allocatable_b": byte_count(allocatable.get("memory", "0")),
    }


def _job(obj: dict) -> tuple[str, dict]:
    status = obj.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if conditions.get("Complete") == "True":
        word = "Complete"
    elif conditions.get("Failed") == "True":
        word = "Failed"
    elif (obj.get("spec") or {}).get("suspend"):
        word = "Suspended"
    else:
        word = "Running"
    return word, {
        "succeeded": status.get("succeeded", 0),
        "failed": status.get("failed", 0),
        "active": status.get("active", 0),
    }


def _cronjob(obj: dict) -> tuple[str, dict]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    word = "Suspended" if spec.get("suspend") else ("Active" if status.get("active") else "Scheduled")
    return word, {"schedule": spec.get("schedule", ""), "last": status.get("lastScheduleTime", "")}


def _service(obj: dict) -> tuple[str, dict]:
    spec = obj.get("spec") or {}
    ports = [f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []]
    return spec.get("type", "ClusterIP"), {"cluster_ip": spec.get("clusterIP", ""), "ports": ports}


def _endpointslice(obj: dict) -> tuple[str, dict]:
    endpoints = obj.get("endpoints") or []
    ready = sum(1 for e in endpoints if (e.get("conditions") or {}).get("ready", True))
    service = ((obj.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name", "")
    return ("Ready" if ready else "NoEndpoints"), {"endpoints": len(endpoints), "ready": ready, "service": service}


def _route(obj: dict) -> tuple[str, dict]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    parents = status.get("parents") or []
    accepted = any(
        c.get("type") == "Accepted" and c.get("status") == "True" for p in parents for c in p.get("conditions") or []
    )
    hosts = spec.get("hostnames") or [r.get("host") for r in spec.get("rules") or [] if r.get("host")]
    return ("Accepted" if accepted else "NotAccepted"), {"hosts": hosts}


def _gateway(obj: dict) -> tuple[str, dict]:
    """Programmed or not, and its listeners (name, protocol, port, host name) for the release form's picker."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    programmed = any(
        c.get("type") == "Programmed" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    listeners = [
        {
            "name": str(item.get("name", ""))[:63],
            "protocol": str(item.get("protocol", ""))[:20],
            "port": item.get("port"),
            "hostname": str(item.get("hostname") or "")[:253],
        }
        for item in (spec.get("listeners") or [])[:64]
        if isinstance(item, dict)
    ]
    return ("Programmed" if programmed else "NotProgrammed"), {
        "listeners": listeners,
        "class": str(spec.get("gatewayClassName", ""))[:253],
    }


def _claim(obj: dict) -> tuple[str, dict]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    capacity = (status.get("capacity") or {}).get("storage") or (
        (spec.get("resources") or {}).get("requests") or {}
    ).get("storage", "")
    return status.get("phase", "Pending"), {"capacity": capacity, "storage_class": spec.get("storageClassName", "")}


def _hpa(obj: dict) -> tuple[str, dict]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    current, desired = status.get("currentReplicas", 0), status.get("desiredReplicas", 0)
    limited = any(
        c.get("type") == "ScalingLimited" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    return ("Limited" if limited else "Active"), {
        "min": spec.get("minReplicas", 1),
        "max": spec.get("maxReplicas", 0),
        "current": current,
        "desired": desired,
        "target": (spec.get("scaleTargetRef") or {}).get("name", ""),
        "metrics": _hpa_metrics(spec, status),
    }


def _hpa_metrics(spec: dict, status: dict) -> list[dict]:
    """Each resource metric the autoscaler targets: its target and, once the controller has read it, the current
    average utilization (percent of requests) or value, from status.currentMetrics."""
    current = {
        (m.get("resource") or {}).get("name"): (m.get("resource") or {}).get("current") or {}
        for m in status.get("currentMetrics") or []
        if m.get("type") == "Resource"
    }
    metrics = []
    for m in spec.get("metrics") or []:
        if m.get("type") != "Resource":
            continue
        resource = m.get("resource") or {}
        target, now = resource.get("target") or {}, current.get(resource.get("name")) or {}
        metrics.append(
            {
                "name": resource.get("name", ""),
                "target_percent": target.get("averageUtilization"),
                "target_value": target.get("averageValue") or target.get("value"),
                "current_percent": now.get("averageUtilization"),
                "current_value": now.get("averageValue") or now.get("value"),
            }
        )
    return metrics


def _event(obj: dict) -> tuple[str, dict]:
    involved = obj.get("involvedObject") or {}
    return obj.get("type", "Normal"), {
        "reason": obj.get("reason", ""),
        "message": (obj.get("message") or "")[:500],
        "count": obj.get("count") or 1,
        "object_kind": involved.get("kind", ""),
        "object_name": involved.get("name", ""),
        "object_uid": involved.get("uid", ""),
        "last": obj.get("lastTimestamp")
        or obj.get("eventTime")
        or (obj.get("metadata") or {}).get("creationTimestamp"),
    }


def _node_metrics(obj: dict) -> tuple[str, dict]:
    usage = obj.get("usage") or {}
    return "", {
        "cpu_millicores": millicores(usage.get("cpu", "0")),
        "memory_bytes": byte_count(usage.get("memory", "0")),
    }


def _pod_metrics(obj: dict) -> tuple[str, dict]:
    containers = obj.get("containers") or []
    return "", {
        "cpu_millicores": sum(millicores((c.get("usage") or {}).get("cpu", "0")) for c in containers),
        "memory_bytes": sum(byte_count((c.get("usage") or {}).get("memory", "0")) for c in containers),
    }


def _phase(obj: dict) -> tuple[str, dict]:
    return (obj.get("status") or {}).get("phase", "Active"), {}


def _plain(obj: dict) -> tuple[str, dict]:
    return "", {}


SUMMARIZERS = {
    "Pod": _pod,
    "Deployment": _replicated,
    "StatefulSet": _replicated,
    "DaemonSet": _replicated,
    "ReplicaSet": _replicated,
    "Node": _node,
    "Job": _job,
    "CronJob": _cronjob,
    "Service": _service,
    "EndpointSlice": _endpointslice,
    "Ingress": _route,
    "HTTPRoute": _route,
    "Gateway": _gateway,
    "PersistentVolumeClaim": _claim,
    "PersistentVolume": _phase,
    "Namespace": _phase,
    "HorizontalPodAutoscaler": _hpa,
    "Event": _event,
    "NodeMetrics": _node_metrics,
    "PodMetrics": _pod_metrics,
    "StorageClass": lambda obj: ("", {"provisioner": obj.get("provisioner", "")}),
    "Secret": lambda obj: (obj.get("type", ""), {"keys": len(obj.get("data") or {})}),
    "ConfigMap": lambda obj: ("", {"keys": len(obj.get("data") or {}) + len(obj.get("binaryData") or {})}),
}


def row_fields(kind: str, obj: dict) -> dict:
    """Everything a Resource row stores for ``obj`` except the cluster."""
    meta = obj.get("metadata") or {}
    status, summary = SUMMARIZERS.get(kind, _plain)(obj)
    owner = controller_of(obj) or {}
    return {
        "kind": kind,
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "uid": meta["uid"],
        "resource_version": meta.get("resourceVersion", ""),
        "labels": meta.get("labels") or {},
        "owner_kind": owner.get("kind", "")[:40],  # a custom kind may be longer; no page links to one
        "owner_name": owner.get("name", ""),
        "owner_uid": owner.get("uid"),
        "status": status[:40],
        "summary": summary,
        "object": strip(kind, obj),
        "created": parse_time(meta.get("creationTimestamp")),
    }
