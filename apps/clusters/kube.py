"""The one door to Kubernetes: API clients from stored credentials, timeouts, and errors as sentences.

Only this module and the apps' ``k8s.py`` modules import ``kubernetes``.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import urllib3
import yaml
from django.utils.translation import gettext as _
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from apps.clusters.models import Cluster

CONNECT_TIMEOUT = 3
READ_TIMEOUT = 10
FIELD_MANAGER = "kubemate"
TOO_MANY_REQUESTS_RETRIES = 5
# Each platform user acts in a cluster as this ServiceAccount (created by the RBAC projection).
MANAGED_NAMESPACE = "kubemate-system"


def user_service_account(user) -> str:
    return f"kubemate-u{user.pk}"


def impersonated_username(user) -> str:
    return f"system:serviceaccount:{MANAGED_NAMESPACE}:{user_service_account(user)}"


class KubeError(Exception):
    """A Kubernetes failure with a sentence a person can act on."""


class ClusterUnreachable(KubeError):
    pass


class Forbidden(KubeError):
    pass


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class Invalid(KubeError):
    pass


def status_message(exc: ApiException) -> str:
    """The human message of a Kubernetes Status body, or the HTTP reason."""
    try:
        return json.loads(exc.body or "{}").get("message") or exc.reason or ""
    except (ValueError, AttributeError):
        return exc.reason or ""


def _translate(exc: ApiException, cluster: Cluster) -> KubeError:
    if exc.status == 401:
        return ClusterUnreachable(_("Cluster %(name)s rejected Kubemate's credentials (401).") % {"name": cluster.name})
    if exc.status == 403:
        return Forbidden(_("You are not allowed to do this in cluster %(name)s.") % {"name": cluster.name})
    if exc.status == 404:
        return NotFound(_("The object no longer exists in cluster %(name)s.") % {"name": cluster.name})
    if exc.status == 409:
        return Conflict(_("Someone else changed the object meanwhile; reload and try again."))
    if exc.status in (400, 422):
        return Invalid(_("Kubernetes refused the change: %(reason)s") % {"reason": status_message(exc)})
    return ClusterUnreachable(
        _("Cluster %(name)s answered with an error (%(status)s).") % {"name": cluster.name, "status": exc.status}
    )


@contextmanager
def api_client(cluster: Cluster, *, as_user=None) -> Iterator[client.ApiClient]:
    """An ApiClient for ``cluster``, closed after use.

    With ``as_user`` every request impersonates that user's ServiceAccount, so
    the cluster's RBAC decides and its audit log names the user. Without it the
    client is Kubemate's own identity (sync and RBAC projection only). No
    header from a browser request is ever copied here.

    The kubeconfig is decrypted in memory; certificate data the client library
    needs as files lives in a private temporary folder removed on exit.
    """
    configuration = client.Configuration()
    with tempfile.TemporaryDirectory(prefix="kubemate-kube-") as tmp:
        config.kube_config.KubeConfigLoader(
            config_dict=yaml.safe_load(cluster.kubeconfig()), temp_file_path=tmp
        ).load_and_set(configuration)
        configuration.retries = 0
        api = client.ApiClient(configuration)
        if as_user is not None:
            api.set_default_header("Impersonate-User", impersonated_username(as_user))
        try:
            yield api
        finally:
            api.close()


def call(cluster: Cluster, fn, *args, **kwargs):
    """Run one API call with Kubemate's timeouts, translating failures into KubeError."""
    kwargs.setdefault("_request_timeout", (CONNECT_TIMEOUT, READ_TIMEOUT))
    for attempt in range(TOO_MANY_REQUESTS_RETRIES + 1):
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            # 429: API priority and fairness, or a new resource type not served yet; the server says when to retry.
            if exc.status == 429 and attempt < TOO_MANY_REQUESTS_RETRIES:
                time.sleep(min(float((exc.headers or {}).get("Retry-After") or 1), 2.0))
                continue
            raise _translate(exc, cluster) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterUnreachable(
                _("Cluster %(name)s cannot be reached: %(reason)s.")
                % {"name": cluster.name, "reason": network_reason(exc)}
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def network_reason(exc: Exception) -> str:
    """Name why a connection failed, in words an operator can act on."""
    cause = getattr(exc, "reason", None) or exc
    text = f"{exc} {cause}".lower()
    if "certificate" in text or "ssl" in text:
        return str(_("its TLS certificate is not trusted (check the CA)"))
    if "name or service not known" in text or "nodename nor servname" in text or "failed to resolve" in text:
        return str(_("its host name does not resolve (DNS)"))
    if "timed out" in text or "timeout" in text:
        return str(_("it did not answer in time"))
    if "refused" in text:
        return str(_("the connection was refused"))
    return str(_("the network connection failed"))


# group, version, plural, namespaced: the kinds Kubemate reads and writes through `request` and `apply`.
KINDS: dict[str, tuple[str, str, str, bool]] = {
    "Namespace": ("", "v1", "namespaces", False),
    "ServiceAccount": ("", "v1", "serviceaccounts", True),
    "ClusterRole": ("rbac.authorization.k8s.io", "v1", "clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
    "Role": ("rbac.authorization.k8s.io", "v1", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings", True),
    "CustomResourceDefinition": ("apiextensions.k8s.io", "v1", "customresourcedefinitions", False),
    "PlatformUser": ("kubemate.io", "v1alpha1", "platformusers", False),
    "PlatformRole": ("kubemate.io", "v1alpha1", "platformroles", False),
    "PlatformBinding": ("kubemate.io", "v1alpha1", "platformbindings", False),
}


def resource_path(kind: str, name: str | None = None, namespace: str | None = None) -> str:
    group, version, plural, namespaced = KINDS[kind]
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespaced and namespace:
        base += f"/namespaces/{namespace}"
    path = f"{base}/{plural}"
    return f"{path}/{name}" if name else path


def request(
    api: client.ApiClient,
    cluster: Cluster,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body: dict | None = None,
    content_type: str = "application/json",
) -> dict | None:
    """One raw API request as JSON in and out, with Kubemate's timeouts and error sentences."""
    headers = {"Accept": "application/json", "Content-Type": content_type}
    # The client serializes dicts for JSON; other content types (apply patches) are sent as text.
    payload = body if content_type == "application/json" or body is None else json.dumps(body)
    method, url, headers, payload, _post = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        header_params=headers,
        body=payload,
        auth_settings=["BearerToken"],
    )

    def send(_request_timeout):
        response = api.call_api(method, url, header_params=headers, body=payload, _request_timeout=_request_timeout)
        response.read()
        text = response.data.decode() if response.data else ""
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=text, data=None)
        return json.loads(text) if text else None

    return call(cluster, send)


def apply(api: client.ApiClient, cluster: Cluster, manifest: dict) -> dict:
    """Server-side apply ``manifest`` with Kubemate's field manager, taking over conflicting fields."""
    meta = manifest["metadata"]
    path = resource_path(manifest["kind"], meta["name"], meta.get("namespace"))
    return request(
        api,
        cluster,
        "PATCH",
        path,
        query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        body=manifest,
        content_type="application/apply-patch+yaml",
    )


def list_objects(
    api: client.ApiClient, cluster: Cluster, kind: str, *, namespace: str | None = None, label_selector: str = ""
) -> list[dict]:
    items, token = [], ""
    while True:
        query = [("limit", "500")] + ([("labelSelector", label_selector)] if label_selector else [])
        if token:
            query.append(("continue", token))
        page = request(api, cluster, "GET", resource_path(kind, namespace=namespace), query=query)
        items.extend(page.get("items", []))
        token = page.get("metadata", {}).get("continue", "")
        if not token:
            return items


def delete_object(api: client.ApiClient, cluster: Cluster, kind: str, name: str, namespace: str | None = None) -> bool:
    """Delete one object; False when it was already gone."""
    try:
        request(
            api,
            cluster,
            "DELETE",
            resource_path(kind, name, namespace),
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
        )
    except NotFound:
        return False
    return True


WATCH_SECONDS = 300


class Expired(KubeError):
    """410 Gone: the resourceVersion is older than what the apiserver keeps; list again."""


def watch_lines(api: client.ApiClient, cluster: Cluster, path: str, resource_version: str) -> Iterator[dict]:
    """Watch events of a list path from ``resource_version`` with bookmarks, one dict per event.

    Ends when the server closes the watch (after WATCH_SECONDS); raises Expired
    on 410 and ClusterUnreachable when the connection drops.
    """
    query = [
        ("watch", "1"),
        ("resourceVersion", resource_version),
        ("allowWatchBookmarks", "true"),
        ("timeoutSeconds", str(WATCH_SECONDS)),
    ]
    method, url, headers, _body, _post = api.param_serialize(
        method="GET",
        resource_path=path,
        query_params=query,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )

    def open_stream(_request_timeout):
        response = api.call_api(method, url, header_params=headers, _request_timeout=_request_timeout)
        if response.status == 410:
            raise Expired(_("The watch position expired; listing again."))
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=response.data.decode(), data=None)
        return response

    response = call(cluster, open_stream, _request_timeout=(CONNECT_TIMEOUT, WATCH_SECONDS + 30))
    buffer = b""
    try:
        for chunk in response.response.stream(65536, decode_content=True):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    event = json.loads(line)
                    if event.get("type") == "ERROR" and (event.get("object") or {}).get("code") == 410:
                        raise Expired(_("The watch position expired; listing again."))
                    yield event
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterUnreachable(
            _("Cluster %(name)s cannot be reached: %(reason)s.") % {"name": cluster.name, "reason": network_reason(exc)}
        ) from None
    finally:
        response.response.release_conn()


ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def access_review(verb: str, group: str, resource: str, subresource: str = "", namespace: str = "") -> dict:
    """The body of a SelfSubjectAccessReview: may the caller do ``verb`` on ``group/resource[/subresource]``?"""
    attributes = {
        "verb": verb,
        "group": group,
        "resource": resource,
        "subresource": subresource,
        "namespace": namespace,
    }
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
