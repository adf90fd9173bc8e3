"""Kubernetes calls behind the day-2 actions: scale, restart, delete, cordon, evict, YAML and logs.

Every function takes a Client from ``kube.client(cluster, as_user=...)`` so the
cluster's RBAC judges the acting user. Failures are kube's KubeErrors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils.translation import gettext as _

from apps.clusters import kinds, kube

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
LOG_READ_TIMEOUT = 30
LOG_LIMIT_BYTES = 4 * 1024 * 1024


# --- workloads -------------------------------------------------------------------------------------------


def scale(k: kube.Client, kind: str, namespace: str, name: str, replicas: int) -> int:
    """Set the replica count through the /scale subresource; returns the count Kubernetes stored."""
    result = k.patch(kind, namespace, name, {"spec": {"replicas": replicas}}, sub="scale")
    return int((result.get("spec") or {}).get("replicas", replicas))


def restart(k: kube.Client, kind: str, namespace: str, name: str, at: datetime) -> str:
    """Rollout restart: stamp the pod template so the controller replaces every pod."""
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    k.patch(kind, namespace, name, body)
    return stamp


def delete_pod(k: kube.Client, namespace: str, name: str) -> None:
    if not k.delete("Pod", namespace, name):
        raise kube.NotFound(_("The object no longer exists in cluster %(name)s.") % {"name": k.cluster.name})


# --- nodes -----------------------------------------------------------------------------------------------


def set_unschedulable(k: kube.Client, node: str, unschedulable: bool) -> None:
    k.patch("Node", None, node, {"spec": {"unschedulable": True if unschedulable else None}})


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str
    owner_kind: str
    mirror: bool

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


def pods_on_node(k: kube.Client, node: str) -> list[PodRef]:
    pods = []
    for item in k.list("Pod", field_selector=f"spec.nodeName={kinds.check_name(node)}"):
        meta = item.get("metadata") or {}
        refs = meta.get("ownerReferences") or []
        owner = next((r for r in refs if r.get("controller")), refs[0] if refs else {})
        pods.append(
            PodRef(
                namespace=meta.get("namespace", ""),
                name=meta.get("name", ""),
                uid=meta.get("uid", ""),
                owner_kind=owner.get("kind", ""),
                mirror=MIRROR_ANNOTATION in (meta.get("annotations") or {}),
            )
        )
    return pods


def pod_exists(k: kube.Client, pod: PodRef) -> bool:
    """True while the pod with this uid still exists (a recreated pod with the same name does not count)."""
    current = k.read("Pod", pod.namespace, pod.name)
    return current is not None and (current.get("metadata") or {}).get("uid") == pod.uid


@dataclass(frozen=True)
class Eviction:
    evicted: bool
    reason: str = ""  # the apiserver's sentence when a disruption budget blocks it


def evict(k: kube.Client, pod: PodRef) -> Eviction:
    """Ask for an eviction (policy/v1); a 429 means a PodDisruptionBudget does not allow it now."""
    body = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod.name, "namespace": pod.namespace},
        "deleteOptions": {"preconditions": {"uid": pod.uid}},
    }
    try:
        status, answer = k.post("Pod", pod.namespace, pod.name, sub="eviction", body=body, passthrough=(429,))
    except kube.NotFound:
        return Eviction(evicted=True)
    if status != 429:
        return Eviction(evicted=True)
    return Eviction(evicted=False, reason=_blocking_reason(answer))


def _blocking_reason(data: dict) -> str:
    causes = (data.get("details") or {}).get("causes") or []
    budget = [c.get("message", "") for c in causes if c.get("reason") == "DisruptionBudget"]
    return (budget[0] if budget else "") or data.get("message", "")


# --- YAML ------------------------------------------------------------------------------------------------

PARTIAL_METADATA = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


def read_object(k: kube.Client, kind: str, namespace: str, name: str) -> dict:
    return k.get(kind, namespace or None, name)


def read_secret_metadata(k: kube.Client, namespace: str, name: str) -> dict:
    """A Secret's metadata only: the server sends PartialObjectMetadata, so data never leaves the cluster."""
    query = [("fieldSelector", f"metadata.name={kinds.check_name(name)}")]
    items = k.get("Secret", namespace, query=query, accept=PARTIAL_METADATA).get("items") or []
    if not items:
        raise kube.NotFound(_("The object no longer exists in cluster %(name)s.") % {"name": k.cluster.name})
    return {"apiVersion": "v1", "kind": "Secret", "metadata": items[0].get("metadata") or {}}


def replace_object(k: kube.Client, manifest: dict, *, dry_run: bool) -> dict:
    """PUT the whole object; the resourceVersion inside makes a concurrent change a Conflict."""
    return k.replace(manifest, dry_run=dry_run)


# --- logs ------------------------------------------------------------------------------------------------


def read_pod(k: kube.Client, namespace: str, name: str) -> dict:
    return read_object(k, "Pod", namespace, name)


def _log_query(
    container: str, *, tail: int | None, previous: bool, since_time: str = "", timestamps: bool = True
) -> list[tuple[str, str]]:
    query = [("container", container), ("limitBytes", str(LOG_LIMIT_BYTES))]
    if timestamps:
        query.append(("timestamps", "true"))
    if tail:
        query.append(("tailLines", str(tail)))
    if previous:
        query.append(("previous", "true"))
    if since_time:
        query.append(("sinceTime", since_time))
    return query


def read_log(
    k: kube.Client,
    namespace: str,
    name: str,
    container: str,
    *,
    tail: int | None,
    previous: bool = False,
    since_time: str = "",
) -> str:
    """Log text with an RFC 3339 timestamp at the start of every line."""
    status, text = k.text(
        "Pod",
        namespace,
        name,
        sub="log",
        query=_log_query(container, tail=tail, previous=previous, since_time=since_time),
        accept="text/plain, */*",
        timeout=LOG_READ_TIMEOUT,
        passthrough=(400,),
    )
    if status == 400:
        raise kube.Invalid(_("Kubernetes could not return this log: %(reason)s") % {"reason": _message(text)})
    return text


def _message(text: str) -> str:
    try:
        return json.loads(text or "{}").get("message") or text
    except ValueError:
        return text


def open_log_stream(
    k: kube.Client, namespace: str, name: str, container: str, *, previous: bool = False
) -> Iterator[bytes]:
    """The whole log as chunks, streamed; errors (forbidden, missing) are raised before the first chunk."""
    try:
        response = k.stream(
            "Pod",
            namespace,
            name,
            sub="log",
            query=[("container", container)] + ([("previous", "true")] if previous else []),
            accept="text/plain, */*",
            timeout=LOG_READ_TIMEOUT,
        )
    except kube.Invalid as exc:
        if exc.status != 400:
            raise
        # A log Kubernetes cannot give (no previous container, a container not started): a read, not a change.
        raise kube.Invalid(
            _("Kubernetes could not return this log: %(reason)s") % {"reason": exc.detail},
            status=exc.status,
            detail=exc.detail,
        ) from None

    def chunks() -> Iterator[bytes]:
        try:
            yield from response.stream(65536, decode_content=True)
        finally:
            response.release_conn()

    return chunks()
