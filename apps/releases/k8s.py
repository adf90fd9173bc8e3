"""The releases app's Kubernetes operations, on top of clusters/kube.py: apply, read, delete, rollout state.

Callers pass a ``kube.Client`` that impersonates the acting user, so the cluster's
RBAC decides. Functions return plain dicts and dataclasses and raise the errors
of clusters/kube.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apps.clusters import kube

# Kinds a release writes, and the order they are removed in (dependents first): the claim after the pods using it.
RELEASE_KINDS = ("HorizontalPodAutoscaler", "HTTPRoute", "Service", "Deployment", "Secret", "PersistentVolumeClaim")
# Fields another manager may own without it being a hand edit of the release: a console "restart" stamps this.
IGNORED_SPEC_FIELDS = ("f:kubectl.kubernetes.io/restartedAt",)


def apply(k: kube.Client, manifest: dict) -> dict:
    """Server-side apply with Kubemate's field manager. Callers check for hand edits first (``hand_edits``)."""
    return k.apply(manifest)


def read(k: kube.Client, kind: str, namespace: str, name: str) -> dict | None:
    return k.read(kind, namespace, name)


def delete(k: kube.Client, kind: str, namespace: str, name: str) -> bool:
    """Delete one object; False when it was not there."""
    return k.delete(kind, namespace, name)


def list_in(k: kube.Client, kind: str, namespace: str, label_selector: str = "") -> list[dict]:
    return k.list(kind, namespace, label_selector=label_selector)


def _leaves(fields: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in (fields or {}).items():
        if key == ".":
            continue
        if isinstance(value, dict) and any(k != "." for k in value):
            out.extend(_leaves(value, (*prefix, key)))
        else:
            out.append((*prefix, key))
    return out


def hand_edits(live: dict) -> list[str]:
    """Managers other than Kubemate's apply that changed the Deployment's spec after Kubemate last applied it.

    Ownership records come from metadata.managedFields. Status and scale
    subresource writes (controllers, autoscalers) do not count, nor a console
    restart stamp. A Deployment Kubemate never applied counts as someone else's.
    """
    entries = (live.get("metadata") or {}).get("managedFields") or []
    ours = [e for e in entries if e.get("manager") == kube.FIELD_MANAGER and e.get("operation") == "Apply"]
    if not ours:
        return sorted({e.get("manager") or "?" for e in entries if not e.get("subresource")})
    applied_at = max(e.get("time") or "" for e in ours)
    editors = set()
    for entry in entries:
        if entry in ours or entry.get("subresource"):
            continue
        spec_fields = (entry.get("fieldsV1") or {}).get("f:spec")
        leaves = [leaf for leaf in _leaves(spec_fields) if leaf[-1] not in IGNORED_SPEC_FIELDS]
        if leaves and (entry.get("time") or "") >= applied_at:
            editors.add(entry.get("manager") or "?")
    return sorted(editors)


REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


@dataclass
class RolloutState:
    """Where a Deployment's rollout stands, from its status and its ReplicaSets."""

    desired: int = 0
    updated: int = 0
    ready: int = 0
    available: int = 0
    total: int = 0
    observed: bool = False
    complete: bool = False
    failed_reason: str = ""
    failed_message: str = ""
    replica_sets: list[tuple[str, int, int]] = field(default_factory=list)
    # Ready pods of the ReplicaSet that carries the Deployment's current revision; None before it is known.
    new_ready: int | None = None

    def updated_ready(self) -> int:
        """Ready pods on the new version (ready pods of old ReplicaSets do not count: with 2 old pods ready and
        1 new one pending, min(updated, ready) would say 1)."""
        if self.new_ready is not None:
            return min(self.new_ready, self.updated)
        return min(self.updated, self.ready)


def rollout_state(k: kube.Client, namespace: str, name: str, selector: str) -> RolloutState:
    live = k.get("Deployment", namespace, name)
    spec, status, meta = live.get("spec") or {}, live.get("status") or {}, live.get("metadata") or {}
    state = RolloutState(
        desired=int(spec.get("replicas", 1)),
        updated=int(status.get("updatedReplicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        total=int(status.get("replicas") or 0),
        observed=int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0),
    )
    for condition in status.get("conditions") or []:
        # Before the controller has seen the new generation, a deadline condition belongs to the previous rollout.
        if (
            state.observed
            and condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            state.failed_reason = "ProgressDeadlineExceeded"
            state.failed_message = condition.get("message") or ""
    state.complete = (
        state.observed
        and not state.failed_reason
        and state.updated == state.desired
        and state.available == state.desired
        and state.total == state.desired
    )
    revision = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
    for rs in list_in(k, "ReplicaSet", namespace, selector):
        rs_status = rs.get("status") or {}
        desired = int((rs.get("spec") or {}).get("replicas") or 0)
        if revision and (rs["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION) == revision:
            state.new_ready = int(rs_status.get("readyReplicas") or 0)
        if desired or rs_status.get("replicas"):
            state.replica_sets.append((rs["metadata"]["name"], int(rs_status.get("readyReplicas") or 0), desired))
    return state


def warning_events(k: kube.Client, namespace: str, name: str, limit: int = 8) -> list[str]:
    """Recent Warning events about the release's Deployment, ReplicaSets and pods, newest last, de-duplicated."""
    events = list_in(k, "Event", namespace)
    mine = [
        e
        for e in events
        if e.get("type") == "Warning" and ((e.get("involvedObject") or {}).get("name") or "").startswith(name)
    ]
    mine.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    # Pods of one ReplicaSet repeat the same complaint: keep one line per reason and message.
    lines: dict[tuple[str, str], str] = {}
    for event in mine:
        involved = event.get("involvedObject") or {}
        key = (event.get("reason") or "", event.get("message") or "")
        lines.pop(key, None)
        lines[key] = f"{involved.get('kind', '')} {involved.get('name', '')}: {key[0]}: {key[1]}".strip()
    return list(lines.values())[-limit:]


def pods(k: kube.Client, namespace: str, selector: str) -> list[dict]:
    return list_in(k, "Pod", namespace, selector)


# Gateway controllers by the controllerName they write into a route's status, named as people know them.
GATEWAY_CONTROLLERS = {
    "traefik.io/gateway-controller": "Traefik",
    "gateway.envoyproxy.io/gatewayclass-controller": "Envoy Gateway",
    "istio.io/gateway-controller": "Istio",
    "gateway.nginx.org/nginx-gateway-controller": "NGINX Gateway Fabric",
    "konghq.com/kic-gateway-controller": "Kong",
    "cilium.io/gateway-controller": "Cilium",
}


@dataclass(frozen=True)
class RouteCondition:
    """One condition a gateway controller wrote on a route (Accepted, ResolvedRefs), in Kubernetes' words."""

    status: str  # "True", "False" or "Unknown"
    reason: str
    message: str
    # Written for an earlier generation of the route: the controller has not seen the latest change yet.
    stale: bool


@dataclass(frozen=True)
class RouteParent:
    """How one gateway controller reports the route on one Gateway (an entry of HTTPRoute status.parents)."""

    gateway_namespace: str
    gateway_name: str
    controller: str  # the product name when known, else the controllerName as written
    accepted: RouteCondition | None
    resolved_refs: RouteCondition | None


def _route_condition(conditions: list[dict], kind: str, generation: int) -> RouteCondition | None:
    found = next((c for c in conditions if c.get("type") == kind), None)
    if found is None:
        return None
    return RouteCondition(
        status=str(found.get("status") or "Unknown"),
        reason=str(found.get("reason") or ""),
        message=str(found.get("message") or ""),
        stale=int(found.get("observedGeneration") or generation) < generation,
    )


def route_parents(route: dict) -> list[RouteParent]:
    """The HTTPRoute's status.parents as plain data: the Gateway, the controller, its Accepted and ResolvedRefs
    conditions. Empty while no controller has written a status."""
    meta = route.get("metadata") or {}
    generation = int(meta.get("generation") or 0)
    parents = []
    for parent in (route.get("status") or {}).get("parents") or []:
        ref = parent.get("parentRef") or {}
        conditions = parent.get("conditions") or []
        controller = str(parent.get("controllerName") or "")
        parents.append(
            RouteParent(
                gateway_namespace=str(ref.get("namespace") or meta.get("namespace") or ""),
                gateway_name=str(ref.get("name") or ""),
                controller=GATEWAY_CONTROLLERS.get(controller, controller),
                accepted=_route_condition(conditions, "Accepted", generation),
                resolved_refs=_route_condition(conditions, "ResolvedRefs", generation),
            )
        )
    return parents
