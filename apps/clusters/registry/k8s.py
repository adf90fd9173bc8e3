"""The registry's connection test: can Kubemate reach a cluster with these credentials, and what is wrong if not?

Every failure is turned into one translated sentence by ``explain``; the
checks themselves are plain HTTP requests made through ``kube.api_client``
so that the credentials are loaded exactly the way the rest of Kubemate loads them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import urllib3
from django.utils.translation import gettext as _
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

from apps.clusters import kube
from apps.clusters.kube import MANAGED_NAMESPACE, api_client, status_message
from apps.clusters.models import Cluster

MINIMUM_VERSION = (1, 28)
TEST_TIMEOUT_SECONDS = 8.0


class Purpose:
    """What the credentials are for, which decides the permissions the test asks the cluster about."""

    OWN = "own"  # Kubemate's own identity: inventory sync and impersonation of per-user ServiceAccounts.
    ADMIN = "admin"  # an administrator's, used once to install Kubemate's own identity.


# (verb, group, resource, subresource, namespace): checked with SelfSubjectAccessReviews after listing nodes.
NEEDED_PERMISSIONS: dict[str, tuple[tuple[str, str, str, str, str], ...]] = {
    Purpose.OWN: (
        ("list", "", "pods", "", ""),
        ("impersonate", "", "serviceaccounts", "", MANAGED_NAMESPACE),
    ),
    Purpose.ADMIN: (
        ("create", "", "namespaces", "", ""),
        ("create", "rbac.authorization.k8s.io", "clusterrolebindings", "", ""),
        ("create", "", "serviceaccounts", "token", MANAGED_NAMESPACE),
    ),
}


@dataclass(frozen=True)
class ConnectionReport:
    """The answer of a connection test. ``reason`` is a stable word for tests and the audit log."""

    ok: bool
    reason: str
    message: str
    version: str = ""
    nodes: int | None = None


class ConnectionProblem(Exception):
    """A check failed for a reason that is not an HTTP or network error (old version, missing permission)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class UnexpectedAnswer(Exception):
    """The server answered HTTP, but not the way a Kubernetes API server does."""


def explain(exc: BaseException, *, server: str, timeout: float) -> tuple[str, str]:
    """The reason word and the sentence for any failure of a connection test. The one place errors are mapped."""
    if isinstance(exc, ConnectionProblem):
        return exc.reason, exc.message
    if isinstance(exc, ApiException):
        if exc.status == 401:
            return "unauthorized", _(
                "The cluster at %(server)s rejected the credentials (401): the token or client certificate is "
                "wrong, expired or revoked."
            ) % {"server": server}
        if exc.status == 403:
            return "forbidden", _(
                "The credentials are valid, but they may not read what Kubemate needs (403): %(reason)s"
            ) % {"reason": status_message(exc)}
        return "error", _("The cluster at %(server)s answered with an error (%(status)s): %(reason)s") % {
            "server": server,
            "status": exc.status,
            "reason": status_message(exc),
        }
    if isinstance(exc, ConfigException):
        return "invalid", _("The credentials cannot be loaded: %(detail)s") % {"detail": str(exc)[:200]}
    if isinstance(exc, UnexpectedAnswer):
        return "error", _("%(server)s answered, but not like a Kubernetes API server (%(detail)s).") % {
            "server": server,
            "detail": str(exc),
        }
    cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    if isinstance(cause, urllib3.exceptions.NameResolutionError):
        return "dns", _("The host name of %(server)s does not resolve (DNS): check the address.") % {"server": server}
    if isinstance(cause, urllib3.exceptions.SSLError) and "certificate_verify_failed" not in str(cause).lower():
        return "tls", _("The TLS handshake with %(server)s failed: %(detail)s") % {
            "server": server,
            "detail": str(cause.__context__ or cause)[:200],
        }
    if isinstance(cause, urllib3.exceptions.SSLError):
        return "tls", _(
            "The TLS certificate of %(server)s is not trusted with the CA certificate given (wrong CA, or the "
            "address is not in the server's certificate)."
        ) % {"server": server}
    # urllib3's NewConnectionError is a ConnectTimeoutError too: look at refusals first.
    if isinstance(cause, urllib3.exceptions.NewConnectionError) and "refused" in str(cause).lower():
        return "refused", _(
            "%(server)s refused the connection: nothing listens on that port, or a firewall rejects it."
        ) % {"server": server}
    if isinstance(cause, urllib3.exceptions.TimeoutError | TimeoutError):
        return "timeout", _("%(server)s did not answer within %(seconds)s seconds.") % {
            "server": server,
            "seconds": f"{timeout:g}",
        }
    return "error", _("The connection to %(server)s failed: %(detail)s") % {
        "server": server,
        "detail": exc.__class__.__name__,
    }


def _get_json(api: client.ApiClient, method: str, path: str, timeout: float, *, query=None, body=None) -> dict:
    method, url, headers, payload, _post = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, header_params=headers, body=payload, _request_timeout=(timeout, timeout))
    response.read()
    text = response.data.decode(errors="replace") if response.data else ""
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=text, data=None)
    try:
        return json.loads(text)
    except ValueError:
        raise UnexpectedAnswer(_("the answer is not JSON")) from None


def parse_version(answer: dict) -> tuple[int, int]:
    """(major, minor) from a /version answer; managed offerings write minors like "28+"."""
    try:
        major = int(re.match(r"\d+", str(answer["major"])).group())
        minor = int(re.match(r"\d+", str(answer["minor"])).group())
    except (KeyError, AttributeError, ValueError, TypeError):
        raise UnexpectedAnswer(_("/version does not name a Kubernetes version")) from None
    return major, minor


def _count_nodes(api: client.ApiClient, timeout: float) -> int:
    first = _get_json(api, "GET", "/api/v1/nodes", timeout, query=[("limit", "1")])
    meta = first.get("metadata") or {}
    if "remainingItemCount" in meta or not meta.get("continue"):
        return len(first.get("items") or []) + int(meta.get("remainingItemCount") or 0)
    # Some servers omit the remaining count; page through with metadata only.
    count, token = 0, ""
    while True:
        query = [("limit", "500")] + ([("continue", token)] if token else [])
        page = _get_json(api, "GET", "/api/v1/nodes", timeout, query=query)
        count += len(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue", "")
        if not token:
            return count


CLUSTER_SCOPED = frozenset({"namespaces", "nodes", "clusterroles", "clusterrolebindings"})


def _permission_words(verb: str, group: str, resource: str, subresource: str, namespace: str) -> str:
    thing = f"{resource}/{subresource}" if subresource else resource
    if group:
        thing = f"{thing}.{group}"
    if resource in CLUSTER_SCOPED:
        return f"{verb} {thing}"
    if namespace:
        return f"{verb} {thing} " + _("in namespace %(namespace)s") % {"namespace": namespace}
    return f"{verb} {thing} " + _("in every namespace")


def _check_permissions(api: client.ApiClient, purpose: str, timeout: float) -> None:
    for verb, group, resource, subresource, namespace in NEEDED_PERMISSIONS[purpose]:
        body = kube.access_review(verb, group, resource, subresource, namespace)
        review = _get_json(api, "POST", kube.ACCESS_REVIEW_PATH, timeout, body=body)
        if not (review.get("status") or {}).get("allowed"):
            raise ConnectionProblem(
                "forbidden",
                _(
                    "The credentials are valid, but they may not %(permission)s, which Kubemate needs. Grant it "
                    "(see deploy/kubernetes/kubemate-rbac.yaml) or register with administrator credentials so "
                    "that Kubemate installs its own identity."
                )
                % {"permission": _permission_words(verb, group, resource, subresource, namespace)},
            )


def check_connection(
    kubeconfig_yaml: str, *, purpose: str = Purpose.OWN, timeout: float = TEST_TIMEOUT_SECONDS
) -> ConnectionReport:
    """Read /version, count nodes (list with limit=1) and ask the cluster whether these credentials
    may do what ``purpose`` needs. Never raises for cluster or network failures: the report says why."""
    from apps.clusters.services import server_of

    server = server_of(kubeconfig_yaml)
    probe = Cluster(name="connection-test", api_server=server)
    probe.set_kubeconfig(kubeconfig_yaml)
    try:
        with api_client(probe) as api:
            answer = _get_json(api, "GET", "/version", timeout)
            major, minor = parse_version(answer)
            version = str(answer.get("gitVersion") or f"v{major}.{minor}")
            if (major, minor) < MINIMUM_VERSION:
                raise ConnectionProblem(
                    "too_old",
                    _(
                        "The cluster runs Kubernetes %(version)s; Kubemate needs %(minimum)s or newer. Upgrade "
                        "the cluster first."
                    )
                    % {"version": version, "minimum": ".".join(map(str, MINIMUM_VERSION))},
                )
            try:
                nodes = _count_nodes(api, timeout)
            except ApiException as exc:
                if exc.status != 403:
                    raise
                raise ConnectionProblem(
                    "forbidden",
                    _(
                        "The credentials are valid, but they may not list nodes, which Kubemate needs. Grant it "
                        "(see deploy/kubernetes/kubemate-rbac.yaml) or register with administrator credentials "
                        "so that Kubemate installs its own identity."
                    ),
                ) from None
            _check_permissions(api, purpose, timeout)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a sentence in the report
        reason, message = explain(exc, server=server, timeout=timeout)
        return ConnectionReport(ok=False, reason=reason, message=message)
    return ConnectionReport(
        ok=True,
        reason="ok",
        message=_("Connected to Kubernetes %(version)s with %(nodes)d nodes.") % {"version": version, "nodes": nodes},
        version=version,
        nodes=nodes,
    )
