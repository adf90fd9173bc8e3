"""Certificates near expiry: the API server's serving certificate (read from a TLS handshake), the TLS Secrets that
Gateways and Ingresses serve (each referenced Secret read once through the Kubernetes door as Kubemate's own
identity; the key is never read into a finding, the certificate's dates only), and the client certificate Kubemate
itself holds for the cluster. Critical within ``certificate.critical_days``, a warning within
``certificate.warning_days``."""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import urlsplit

import yaml
from cryptography import x509
from django.utils.translation import gettext_lazy as _

from apps.clusters import kube
from apps.clusters.kinds import BY_KIND
from apps.clusters.models import Cluster
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.inspection.checks.base import CannotCheck, Domain, Finding, Severity, check

CLUSTER = Domain.CLUSTER
MAX_SECRETS = 200  # referenced TLS Secrets read per cluster and run
MAX_PEM = 64 * 1024


def _expiry(ctx, subject: str, namespace: str, not_after: datetime, what: str) -> Finding | None:
    days = (not_after - ctx.now).total_seconds() / 86400
    if days > ctx.threshold("certificate.warning_days"):
        return None
    severity = Severity.CRITICAL if days <= ctx.threshold("certificate.critical_days") else Severity.WARNING
    if days < 0:
        message = D(N_("%(what)s expired on %(date)s."), what=what, date=not_after.strftime("%Y-%m-%d"))
    else:
        message = D(
            N_("%(what)s expires on %(date)s, in %(days)s days."),
            what=what,
            date=not_after.strftime("%Y-%m-%d"),
            days=int(days),
        )
    return Finding(
        subject=subject,
        namespace=namespace,
        severity=severity,
        message=message,
        facts={"not_after": not_after.isoformat(), "days": round(days, 1)},
    )


def _first_certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem[:MAX_PEM])[0]


@check(
    "security.certificates.apiserver",
    CLUSTER,
    Severity.CRITICAL,
    _("The API server's certificate is not near expiry"),
    _(
        "When the API server's serving certificate expires, every client (kubectl, the controllers, Kubemate) refuses "
        "to talk to it: the cluster cannot be operated."
    ),
    _(
        "Renew the control plane certificates (kubeadm certs renew all, or your installer's way) and restart the API "
        "server before the date."
    ),
)
def apiserver_certificate(ctx, cluster: Cluster) -> Iterator[Finding]:
    parts = urlsplit(cluster.api_server)
    host, port = parts.hostname or "", parts.port or 443
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the dates are read, not trusted: Kubernetes' own door verifies the CA
    try:
        with (
            socket.create_connection((host, port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError as exc:
        raise CannotCheck(
            D(
                N_("The API server of %(cluster)s did not complete a TLS handshake: %(error)s"),
                cluster=cluster.name,
                error=type(exc).__name__,
            )
        ) from exc
    cert = x509.load_der_x509_certificate(der)
    what = D(N_("The API server's certificate (%(host)s)"), host=f"{host}:{port}")
    yield from filter(None, [_expiry(ctx, f"apiserver {host}:{port}", "", cert.not_valid_after_utc, what)])


def _referenced_secrets(ctx, cluster: Cluster) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for row in ctx.rows(cluster, "Gateway"):
        for listener in (row.object.get("spec") or {}).get("listeners") or []:
            for ref in ((listener or {}).get("tls") or {}).get("certificateRefs") or []:
                if (ref.get("kind") or "Secret") == "Secret" and not ref.get("group"):
                    found.add((ref.get("namespace") or row.namespace, str(ref.get("name") or "")))
    for row in ctx.rows(cluster, "Ingress"):
        for tls in (row.object.get("spec") or {}).get("tls") or []:
            if (tls or {}).get("secretName"):
                found.add((row.namespace, str(tls["secretName"])))
    return {ref for ref in found if ref[1]}


@check(
    "security.certificates.tls_secrets",
    CLUSTER,
    Severity.CRITICAL,
    _("Certificates served by routes are not near expiry"),
    _(
        "A Gateway or Ingress serving an expired certificate breaks every client of the application at once, and "
        "browsers and partner systems refuse to connect."
    ),
    _(
        "Renew the certificate in the TLS Secret (cert-manager, or your CA's process) before the date; the Gateway "
        "picks the new one up without a restart."
    ),
)
def route_certificates(ctx, cluster: Cluster) -> Iterator[Finding]:
    refs = sorted(_referenced_secrets(ctx, cluster))[:MAX_SECRETS]
    if not refs:
        return
    with kube.client(cluster) as k:
        for namespace, name in refs:
            try:
                secret = k.get(BY_KIND["Secret"], namespace, name)
            except kube.NotFound:
                yield Finding(
                    subject=f"Secret {namespace}/{name}",
                    namespace=namespace,
                    message=D(N_("TLS Secret %(name)s, used by a route, does not exist."), name=f"{namespace}/{name}"),
                )
                continue
            except kube.Forbidden as exc:
                raise CannotCheck(
                    D(
                        N_("Kubemate may not read the TLS Secrets of %(cluster)s: %(error)s"),
                        cluster=cluster.name,
                        error=str(exc)[:200],
                    )
                ) from exc
            try:
                pem = base64.b64decode((secret.get("data") or {}).get("tls.crt") or "")
                cert = _first_certificate(pem)
            except ValueError:
                yield Finding(
                    subject=f"Secret {namespace}/{name}",
                    namespace=namespace,
                    message=D(N_("TLS Secret %(name)s holds no readable certificate."), name=f"{namespace}/{name}"),
                )
                continue
            what = D(N_("The certificate in TLS Secret %(name)s"), name=f"{namespace}/{name}")
            finding = _expiry(ctx, f"Secret {namespace}/{name}", namespace, cert.not_valid_after_utc, what)
            if finding:
                yield finding


@check(
    "security.certificates.client",
    CLUSTER,
    Severity.CRITICAL,
    _("Kubemate's own credentials for the cluster are not near expiry"),
    _(
        "Kubemate reads and operates the cluster with the credentials it was registered with: when its client "
        "certificate expires, the inventory stops and every page of the cluster goes stale."
    ),
    _(
        "Register the cluster again with renewed credentials (Clusters, the cluster's settings), or give Kubemate a "
        "ServiceAccount token."
    ),
)
def client_certificate(ctx, cluster: Cluster) -> Iterator[Finding]:
    try:
        config = yaml.safe_load(cluster.kubeconfig()) or {}
    except yaml.YAMLError as exc:
        raise CannotCheck(
            D(N_("Kubemate's stored credentials for %(cluster)s do not parse."), cluster=cluster.name)
        ) from exc
    for entry in config.get("users") or []:
        data = ((entry or {}).get("user") or {}).get("client-certificate-data")
        if not data:
            continue
        cert = _first_certificate(base64.b64decode(data))
        what = D(N_("Kubemate's client certificate for %(cluster)s"), cluster=cluster.name)
        finding = _expiry(ctx, f"client {entry.get('name') or 'kubemate'}", "", cert.not_valid_after_utc, what)
        if finding:
            yield finding
