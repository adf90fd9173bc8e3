"""Kubernetes calls behind the day-2 actions: scale, restart, delete, cordon, evict, YAML and logs.

Every function takes an ApiClient from ``kube.api_client(cluster, as_user=...)`` so
the cluster's RBAC judges the acting user. Failures are kube's KubeErrors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils.translation import gettext as _
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from apps.clusters import kube
from apps.clusters.kinds import BY_KIND
from apps.clusters.models import Cluster

MERGE_PATCH = "application/merge-patch+json"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
LOG_READ_TIMEOUT = 30
LOG_LIMIT_BYTES = 4 * 1024 * 1024


def object_path(kind: str, name: str | None = None, namespace: str | None = None, subresource: str = "") -> str:
    """The API path of an inventory kind's object (or collection), optionally a subresource."""
    spec = BY_KIND[kind]
    path = spec.list_path
    if spec.namespaced and namespace:
        prefix, plural = path.rsplit("/", 1)
        path = f"{prefix}/namespaces/{namespace}/{plural}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


def _send(
    api: client.ApiClient,
    cluster: Cluster,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body=None,
    content_type: str = "application/json",
    accept: str = "application/json",
    passthrough: tuple[int, ...] = (),
    timeout: float = kube.READ_TIMEOUT,
    stream: bool = False,
):
    """One request through kube.call (timeouts, errors as sentences).

    Returns ``(status, text)``; statuses in ``passthrough`` come back instead of
    raising, and ``stream=True`` returns the open urllib3 response instead of text.
    """
    method, url, headers, payload, _post = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        header_params={"Accept": accept, "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
    )

    def send(_request_timeout):
        response = api.call_api(method, url, header_params=headers, body=payload, _request_timeout=_request_timeout)
        ok = 200 <= response.status <= 299
        if stream and ok:
            return response.status, response.response
        response.read()
        text = response.data.decode(errors="replace") if response.data else ""
        if not ok and response.status not in passthrough:
            raise ApiException.from_response(http_resp=response, body=text, data=None)
        return response.status, text

    return kube.call(cluster, send, _request_timeout=(kube.CONNECT_TIMEOUT, timeout))


def _json(api, cluster, method, path, **kwargs) -> dict:
    _status, text = _send(api, cluster, method, path, **kwargs)
    return json.loads(text) if text else {}


# --- workloads -------------------------------------------------------------------------------------------


def scale(api: client.ApiClient, cluster: Cluster, kind: str, namespace: str, name: str, replicas: int) -> int:
    """Set the replica count through the /scale subresource; returns the count Kubernetes stored."""
    body = {"spec": {"replicas": replicas}}
    result = _json(
        api, cluster, "PATCH", object_path(kind, name, namespace, "scale"), body=body, content_type=MERGE_PATCH
    )
    return int((result.get("spec") or {}).get("replicas", replicas))


def restart(api: client.ApiClient, cluster: Cluster, kind: str, namespace: str, name: str, at: datetime) -> str:
    """Rollout restart: stamp the pod template so the controller replaces every pod."""
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    _json(api, cluster, "PATCH", object_path(kind, name, namespace), body=body, content_type=MERGE_PATCH)
    return stamp


def delete_pod(api: client.ApiClient, cluster: Cluster, namespace: str, name: str) -> None:
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    _send(api, cluster, "DELETE", object_path("Pod", name, namespace), body=body)


# --- nodes -----------------------------------------------------------------------------------------------


def set_unschedulable(api: client.ApiClient, cluster: Cluster, node: str, unschedulable: bool) -> None:
    body = {"spec": {"unschedulable": True if unschedulable else None}}
    _json(api, cluster, "PATCH", object_path("Node", node), body=body, content_type=MERGE_PATCH)


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


def pods_on_node(api: client.ApiClient, cluster: Cluster, node: str) -> list[PodRef]:
    page = _json(
        api, cluster, "GET", object_path("Pod"), query=[("fieldSelector", f"spec.nodeName={node}"), ("limit", "1000")]
    )
    pods = []
    for item in page.get("items") or []:
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


def pod_exists(api: client.ApiClient, cluster: Cluster, pod: PodRef) -> bool:
    """True while the pod with this uid still exists (a recreated pod with the same name does not count)."""
    try:
        current = _json(api, cluster, "GET", object_path("Pod", pod.name, pod.namespace))
    except kube.NotFound:
        return False
    return (current.get("metadata") or {}).get("uid") == pod.uid


@dataclass(frozen=True)
class Eviction:
    evicted: bool
    reason: str = ""  # the apiserver's sentence when a disruption budget blocks it


def evict(api: client.ApiClient, cluster: Cluster, pod: PodRef) -> Eviction:
    """Ask for an eviction (policy/v1); a 429 means a PodDisruptionBudget does not allow it now."""
    body = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod.name, "namespace": pod.namespace},
        "deleteOptions": {"preconditions": {"uid": pod.uid}},
    }
    try:
        status, text = _send(
            api, cluster, "POST", object_path("Pod", pod.name, pod.namespace, "eviction"), body=body, passthrough=(429,)
        )
    except kube.NotFound:
        return Eviction(evicted=True)
    if status != 429:
        return Eviction(evicted=True)
    return Eviction(evicted=False, reason=_blocking_reason(text))


def _blocking_reason(text: str) -> str:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return ""
    causes = (data.get("details") or {}).get("causes") or []
    budget = [c.get("message", "") for c in causes if c.get("reason") == "DisruptionBudget"]
    return (budget[0] if budget else "") or data.get("message", "")


# --- YAML ------------------------------------------------------------------------------------------------

PARTIAL_METADATA = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


def read_object(api: client.ApiClient, cluster: Cluster, kind: str, namespace: str, name: str) -> dict:
    return _json(api, cluster, "GET", object_path(kind, name, namespace or None))


def read_secret_metadata(api: client.ApiClient, cluster: Cluster, namespace: str, name: str) -> dict:
    """A Secret's metadata only: the server sends PartialObjectMetadata, so data never leaves the cluster."""
    page = _json(
        api,
        cluster,
        "GET",
        object_path("Secret", namespace=namespace),
        query=[("fieldSelector", f"metadata.name={name}")],
        accept=PARTIAL_METADATA,
    )
    items = page.get("items") or []
    if not items:
        raise kube.NotFound(_("The object no longer exists in cluster %(name)s.") % {"name": cluster.name})
    return {"apiVersion": "v1", "kind": "Secret", "metadata": items[0].get("metadata") or {}}


def replace_object(api: client.ApiClient, cluster: Cluster, manifest: dict, *, dry_run: bool) -> dict:
    """PUT the whole object; the resourceVersion inside makes a concurrent change a Conflict."""
    meta = manifest.get("metadata") or {}
    query = [("fieldManager", kube.FIELD_MANAGER)] + ([("dryRun", "All")] if dry_run else [])
    path = object_path(manifest["kind"], meta.get("name"), meta.get("namespace"))
    return _json(api, cluster, "PUT", path, query=query, body=manifest)


# --- logs ------------------------------------------------------------------------------------------------


def read_pod(api: client.ApiClient, cluster: Cluster, namespace: str, name: str) -> dict:
    return read_object(api, cluster, "Pod", namespace, name)


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
    api: client.ApiClient,
    cluster: Cluster,
    namespace: str,
    name: str,
    container: str,
    *,
    tail: int | None,
    previous: bool = False,
    since_time: str = "",
) -> str:
    """Log text with an RFC 3339 timestamp at the start of every line."""
    status, text = _send(
        api,
        cluster,
        "GET",
        object_path("Pod", name, namespace, "log"),
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
    api: client.ApiClient, cluster: Cluster, namespace: str, name: str, container: str, *, previous: bool = False
) -> Iterator[bytes]:
    """The whole log as chunks, streamed; errors (forbidden, missing) are raised before the first chunk."""
    _status, response = _send(
        api,
        cluster,
        "GET",
        object_path("Pod", name, namespace, "log"),
        query=[("container", container)] + ([("previous", "true")] if previous else []),
        accept="text/plain, */*",
        timeout=LOG_READ_TIMEOUT,
        stream=True,
    )

    def chunks() -> Iterator[bytes]:
        try:
            yield from response.stream(65536, decode_content=True)
        finally:
            response.release_conn()

    return chunks()
