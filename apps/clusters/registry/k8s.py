"""The registry's Kubernetes side: the connection test (can Kubemate reach a cluster with these credentials, and
what is wrong if not?) and the installation of Kubemate's own identity with an administrator's credentials.

Every failure of a connection test is turned into one translated sentence by ``explain``; the checks go through
``kube.client`` so that the credentials are loaded exactly the way the rest of Kubemate loads them.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import yaml
from django.utils.translation import gettext as _

from apps.clusters import kube
from apps.clusters.kube import MANAGED_NAMESPACE
from apps.clusters.models import Cluster
from apps.core import untrusted

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


class InvalidKubeconfig(ValueError):
    pass


def server_of(kubeconfig_yaml: str) -> str:
    """The API server URL of the current context of a kubeconfig."""
    try:
        data = untrusted.load_yaml(kubeconfig_yaml, untrusted.KUBECONFIG)
        contexts = {c["name"]: c["context"] for c in data["contexts"]}
        clusters = {c["name"]: c["cluster"] for c in data["clusters"]}
        return str(clusters[contexts[data["current-context"]]["cluster"]]["server"])
    except untrusted.UntrustedInput as exc:
        raise InvalidKubeconfig(_("The kubeconfig is not valid: %(reason)s") % {"reason": exc}) from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidKubeconfig(
            _("The kubeconfig is not valid: %(reason)s") % {"reason": exc.__class__.__name__}
        ) from None


def explain(exc: BaseException, *, server: str, timeout: float) -> tuple[str, str]:
    """The reason word and the sentence for any failure of a connection test. The one place errors are mapped."""
    if isinstance(exc, ConnectionProblem):
        return exc.reason, exc.message
    if isinstance(exc, UnexpectedAnswer) or getattr(exc, "reason", "") == "unexpected":
        detail = str(exc) if isinstance(exc, UnexpectedAnswer) else _("the answer is not JSON")
        return "error", _("%(server)s answered, but not like a Kubernetes API server (%(detail)s).") % {
            "server": server,
            "detail": detail,
        }
    if not isinstance(exc, kube.KubeError):
        return "error", _("The connection to %(server)s failed: %(detail)s") % {
            "server": server,
            "detail": exc.__class__.__name__,
        }
    if exc.status == 401:
        return "unauthorized", _(
            "The cluster at %(server)s rejected the credentials (401): the token or client certificate is "
            "wrong, expired or revoked."
        ) % {"server": server}
    if exc.status == 403:
        return "forbidden", _(
            "The credentials are valid, but they may not read what Kubemate needs (403): %(reason)s"
        ) % {"reason": exc.detail}
    if exc.status:
        return "error", _("The cluster at %(server)s answered with an error (%(status)s): %(reason)s") % {
            "server": server,
            "status": exc.status,
            "reason": exc.detail,
        }
    if exc.reason == "credentials":
        return "invalid", _("The credentials cannot be loaded: %(detail)s") % {"detail": exc.detail}
    if exc.reason == "dns":
        return "dns", _("The host name of %(server)s does not resolve (DNS): check the address.") % {"server": server}
    if exc.reason == "tls":
        return "tls", _("The TLS handshake with %(server)s failed: %(detail)s") % {
            "server": server,
            "detail": exc.detail,
        }
    if exc.reason == "not_tls":
        return "tls", _(
            "%(server)s does not speak TLS on that port: it is a plain HTTP service, or the port is wrong."
        ) % {"server": server}
    if exc.reason == "redirect":
        return "error", _(
            "%(server)s answered with redirects instead of the Kubernetes API: the address is a web page or a "
            "proxy, not an API server."
        ) % {"server": server}
    if exc.reason == "closed":
        return "network", _(
            "%(server)s closed the connection before answering: a proxy or load balancer in between, or a "
            "service that is not Kubernetes."
        ) % {"server": server}
    if exc.reason == "tls_untrusted":
        return "tls", _(
            "The TLS certificate of %(server)s is not trusted with the CA certificate given (wrong CA, or the "
            "address is not in the server's certificate)."
        ) % {"server": server}
    if exc.reason == "refused":
        return "refused", _(
            "%(server)s refused the connection: nothing listens on that port, or a firewall rejects it."
        ) % {"server": server}
    if exc.reason == "timeout":
        return "timeout", _("%(server)s did not answer within %(seconds)s seconds.") % {
            "server": server,
            "seconds": f"{timeout:g}",
        }
    return "error", _("The connection to %(server)s failed: %(detail)s") % {"server": server, "detail": exc.reason}


def parse_version(answer: dict) -> tuple[int, int]:
    """(major, minor) from a /version answer; managed offerings write minors like "28+"."""
    try:
        major = int(re.match(r"\d+", str(answer["major"])).group())
        minor = int(re.match(r"\d+", str(answer["minor"])).group())
    except (KeyError, AttributeError, ValueError, TypeError):
        raise UnexpectedAnswer(_("/version does not name a Kubernetes version")) from None
    return major, minor


def _count_nodes(k: kube.Client) -> int:
    first = k.list_page("Node", query=[("limit", "1")])
    meta = first.get("metadata") or {}
    if "remainingItemCount" in meta or not meta.get("continue"):
        return len(first.get("items") or []) + int(meta.get("remainingItemCount") or 0)
    # Some servers omit the remaining count; page through with metadata only.
    count, token = 0, ""
    while True:
        query = [("limit", "500")] + ([("continue", token)] if token else [])
        page = k.list_page("Node", query=query)
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


def _check_permissions(k: kube.Client, purpose: str) -> None:
    for verb, group, resource, subresource, namespace in NEEDED_PERMISSIONS[purpose]:
        if not k.may(verb, group, resource, subresource, namespace):
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
    server = server_of(kubeconfig_yaml)
    probe = Cluster(name="connection-test", api_server=server)
    probe.set_kubeconfig(kubeconfig_yaml)
    try:
        with kube.client(probe, connect_timeout=timeout, read_timeout=timeout) as k:
            try:
                answer = k.version()
            except kube.NotFound:
                raise UnexpectedAnswer(_("it has no /version")) from None
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
                nodes = _count_nodes(k)
            except kube.Forbidden:
                raise ConnectionProblem(
                    "forbidden",
                    _(
                        "The credentials are valid, but they may not list nodes, which Kubemate needs. Grant it "
                        "(see deploy/kubernetes/kubemate-rbac.yaml) or register with administrator credentials "
                        "so that Kubemate installs its own identity."
                    ),
                ) from None
            _check_permissions(k, purpose)
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


KUBEMATE_SERVICE_ACCOUNT = "kubemate"
TOKEN_SECONDS = 365 * 24 * 3600


def install_identity(admin: Cluster, manifest_documents: list[dict]) -> str:
    """With an administrator's credentials, apply Kubemate's identity manifest and return a kubeconfig
    for Kubemate's own ServiceAccount (token authentication, the cluster's CA)."""
    with kube.client(admin) as k:
        for document in manifest_documents:
            k.apply(document)
        _status, answer = k.post(
            "ServiceAccount",
            MANAGED_NAMESPACE,
            KUBEMATE_SERVICE_ACCOUNT,
            sub="token",
            body={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": TOKEN_SECONDS},
            },
        )
        token = answer["status"]["token"]
        ca_data = base64.b64encode(k.ca_data()).decode()
        server = k.server
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": admin.name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
            "users": [{"name": "kubemate", "user": {"token": token}}],
            "contexts": [{"name": admin.name, "context": {"cluster": admin.name, "user": "kubemate"}}],
            "current-context": admin.name,
        }
    )
