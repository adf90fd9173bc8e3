"""Certificates near expiry: the API server's serving certificate (read from a TLS handshake), the TLS Secrets that
Gateways and Ingresses serve (each referenced Secret read once through the Kubernetes door as Kubemate's own
identity; only the certificate's dates are kept, never the Secret's data), and the credentials Kubemate itself holds
for the cluster (its client certificate, or the expiry of its bearer token). Critical within
``certificate.critical_days``, a warning within ``certificate.warning_days``."""

from __future__ import annotations

import base64
import binascii
import json
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

from cryptography import x509
from django.utils.translation import gettext_lazy as _

from apps.clusters import kube
from apps.clusters.kinds import BY_KIND
from apps.clusters.models import Cluster
from apps.core import untrusted
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.inspection.checks.base import CannotCheck, Domain, Finding, Severity, check

CLUSTER = Domain.CLUSTER
MAX_SECRETS = 200  # referenced TLS Secrets read per cluster and run
MAX_PEM = 64 * 1024
MAX_TOKEN = 16 * 1024
HANDSHAKE_SECONDS = 5
END = b"-----END CERTIFICATE-----"


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


def first_certificate(pem: bytes) -> x509.Certificate:
    """The first certificate of a PEM chain (the leaf, the one that expires for the clients), read from at most
    64 KiB; ValueError when there is none."""
    pem = pem[:MAX_PEM]
    end = pem.find(END)
    if end < 0:
        raise ValueError("no certificate")
    return x509.load_pem_x509_certificate(pem[: end + len(END)])


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
    """The certificate the API server at the cluster's registered address presents in a TLS handshake."""
    parts = urlsplit(cluster.api_server)
    host, port = parts.hostname or "", parts.port or 443
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the dates are read, not trusted: Kubernetes' own door verifies the CA
    try:
        with (
            socket.create_connection((host, port), timeout=HANDSHAKE_SECONDS) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True) or b""
        cert = x509.load_der_x509_certificate(der)
    except (OSError, ValueError) as exc:
        raise CannotCheck(
            D(
                N_("The API server of %(cluster)s did not complete a TLS handshake with a certificate: %(error)s"),
                cluster=cluster.name,
                error=type(exc).__name__,
            )
        ) from None
    what = D(N_("The API server's certificate (%(host)s)"), host=f"{host}:{port}")
    yield from filter(None, [_expiry(ctx, f"apiserver {host}:{port}", "", cert.not_valid_after_utc, what)])


def _referenced_secrets(ctx, cluster: Cluster) -> set[tuple[str, str]]:
    """(namespace, name) of the Secrets Gateway listeners (certificateRefs) and Ingresses (tls.secretName) serve."""
    found: set[tuple[str, str]] = set()
    for row in ctx.rows(cluster, "Gateway"):
        for listener in (row.object.get("spec") or {}).get("listeners") or []:
            for ref in ((listener or {}).get("tls") or {}).get("certificateRefs") or []:
                if (ref.get("kind") or "Secret") == "Secret" and not ref.get("group"):
                    found.add((str(ref.get("namespace") or row.namespace), str(ref.get("name") or "")))
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
    """The inventory keeps Secrets without their data, so each Secret a route serves is read once (one GET, as
    Kubemate's own identity); its tls.crt is parsed for the leaf's expiry and dropped."""
    refs = sorted(_referenced_secrets(ctx, cluster))[:MAX_SECRETS]
    if not refs:
        return
    with kube.client(cluster) as k:
        for namespace, name in refs:
            subject, shown = f"Secret {namespace}/{name}", f"{namespace}/{name}"
            try:
                secret = k.get(BY_KIND["Secret"], namespace, name)
            except kube.NotFound:
                yield Finding(
                    subject=subject,
                    namespace=namespace,
                    message=D(N_("TLS Secret %(name)s, used by a route, does not exist."), name=shown),
                )
                continue
            except kube.KubeError as exc:
                raise CannotCheck(
                    D(
                        N_("Kubemate could not read the TLS Secrets of %(cluster)s: %(error)s"),
                        cluster=cluster.name,
                        error=str(exc)[:200],
                    )
                ) from None
            encoded = str((secret.get("data") or {}).get("tls.crt") or "")
            del secret  # the key is in there: nothing of it outlives this line
            try:
                cert = first_certificate(base64.b64decode(encoded[: MAX_PEM * 2], validate=True))
            except (ValueError, binascii.Error):
                yield Finding(
                    subject=subject,
                    namespace=namespace,
                    message=D(N_("TLS Secret %(name)s holds no readable certificate in tls.crt."), name=shown),
                )
                continue
            what = D(N_("The certificate in TLS Secret %(name)s"), name=shown)
            finding = _expiry(ctx, subject, namespace, cert.not_valid_after_utc, what)
            if finding:
                yield finding


def _token_expiry(token: str) -> datetime | None:
    """The ``exp`` of a JWT bearer token (a ServiceAccount token from the TokenRequest API has one); None for a
    token that is not a JWT or never expires. The signature is not checked: only the date is read."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > MAX_TOKEN:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = claims.get("exp") if isinstance(claims, dict) else None
        return datetime.fromtimestamp(int(exp), UTC) if isinstance(exp, int | float) else None
    except (ValueError, binascii.Error, OverflowError, OSError):
        return None


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
    """The user of the current context of the stored kubeconfig (decrypted in memory, parsed with the bounds every
    kubeconfig gets): its client certificate, or the expiry a bearer token carries."""
    try:
        config = untrusted.load_yaml(cluster.kubeconfig(), untrusted.KUBECONFIG) or {}
        contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
        user_name = contexts[config["current-context"]]["user"]
        user = next(u for u in config.get("users") or [] if u["name"] == user_name)["user"] or {}
    except (ValueError, KeyError, TypeError, StopIteration) as exc:  # UntrustedInput is a ValueError
        raise CannotCheck(
            D(
                N_("Kubemate's stored credentials for %(cluster)s cannot be read (%(error)s)."),
                cluster=cluster.name,
                error=type(exc).__name__,
            )
        ) from None
    if user.get("client-certificate-data"):
        try:
            cert = first_certificate(base64.b64decode(str(user["client-certificate-data"])[: MAX_PEM * 2]))
        except (ValueError, binascii.Error):
            raise CannotCheck(
                D(N_("Kubemate's stored client certificate for %(cluster)s cannot be read."), cluster=cluster.name)
            ) from None
        what = D(N_("Kubemate's client certificate for %(cluster)s"), cluster=cluster.name)
        yield from filter(None, [_expiry(ctx, f"client {user_name}", "", cert.not_valid_after_utc, what)])
    expires = _token_expiry(str(user.get("token") or ""))
    if expires is not None:
        what = D(N_("Kubemate's bearer token for %(cluster)s"), cluster=cluster.name)
        yield from filter(None, [_expiry(ctx, f"token {user_name}", "", expires, what)])
