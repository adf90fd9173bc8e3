"""Writes to the cluster registry from its pages: register, edit, replace credentials, delete, test, rotate keys.

Each write is one transaction with one audit event. Credentials travel as a
``Credentials`` value whose repr hides them; they are never put in an audit
detail, a log line, a task argument or a page. The cluster is asked before
anything is stored, so a registration that cannot work saves nothing.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from cryptography import x509
from cryptography.fernet import InvalidToken
from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from apps.clusters import values
from apps.clusters.kube import KubeError
from apps.clusters.models import Cluster
from apps.clusters.registry.k8s import ConnectionReport, Purpose, check_connection, install_identity
from apps.core import audit, crypto, untrusted
from apps.core.models import AuditEvent

LINK_LOCAL_NETWORKS = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
# Cloud metadata services outside the link-local ranges (Alibaba Cloud, AWS over IPv6, Oracle Cloud).
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("100.100.100.200"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("192.0.0.192"),
    }
)
# Names the clouds give their metadata services; refused even where they do not resolve at registration time.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.tencentyun.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
# IPv6 ranges that carry an IPv4 address a gateway may forward to (NAT64, IPv4-compatible).
NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
ALLOWED_CLUSTER_KEYS = frozenset({"server", "certificate-authority-data", "tls-server-name", "extensions"})
ALLOWED_USER_KEYS = frozenset({"token", "client-certificate-data", "client-key-data", "extensions"})
HOST_NAME = re.compile(
    r"^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*\.?$"
)


class RegistryError(ValueError):
    """A registry change that cannot be made, with a sentence that says why and what to do."""


@dataclass(frozen=True, repr=False)
class Credentials:
    """A minimal kubeconfig (one cluster, one user, one context) and what it is for (``Purpose``)."""

    kubeconfig_yaml: str
    purpose: str = Purpose.OWN

    def __repr__(self) -> str:
        return f"<Credentials for {self.server} ({self.purpose})>"

    @property
    def server(self) -> str:
        # Built by this module (one cluster, its server checked): the shape is known.
        return untrusted.load_yaml(self.kubeconfig_yaml, untrusted.KUBECONFIG)["clusters"][0]["cluster"]["server"]


@dataclass(frozen=True)
class ClusterSettings:
    """Everything about a cluster that is not a credential."""

    name: str
    environment: str = ""
    region: str = ""
    labels: dict | None = None
    prometheus_url: str = ""
    alertmanager_url: str = ""
    logs_url: str = ""
    logs_backend: str = "victorialogs"
    jaeger_url: str = ""
    allow_link_local: bool = False
    # Per endpoint (Cluster.ENDPOINTS): None keeps what is stored, {} removes it, else the credentials; with
    # "keep": True the stored credentials stay and only the tenant given beside it is written.
    endpoint_auth: dict | None = None

    def as_fields(self) -> dict:
        fields = {**self.__dict__, "labels": dict(self.labels or {})}
        fields.pop("endpoint_auth")
        return fields

    def apply_endpoint_auth(self, cluster: Cluster) -> list[str]:
        """Set the credentials chosen on ``cluster`` (not saved); the names of the fields that change."""
        changed = []
        for endpoint, secret in (self.endpoint_auth or {}).items():
            if secret is None or (not secret and not getattr(cluster, f"{endpoint}_auth_encrypted")):
                continue
            if secret.get("keep"):
                stored = cluster.endpoint_auth(endpoint)
                if stored.get("tenant", "") == secret.get("tenant", ""):
                    continue
                secret = {**stored, "tenant": secret.get("tenant", "")}
            cluster.set_endpoint_auth(endpoint, **secret)
            changed.append(f"{endpoint}_auth_encrypted")
        return changed


# Validation ------------------------------------------------------------------------------------


def check_url(url: str, *, schemes: tuple[str, ...] = ("https",)) -> str:
    """``url`` if it is an absolute URL Kubemate may call; RegistryError with a sentence otherwise."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # an unclosed IPv6 bracket, as in https://[::1
        raise RegistryError(_("The address is not a valid URL; check the brackets around an IPv6 address.")) from None
    if parts.scheme not in schemes:
        raise RegistryError(_("The address must start with %(schemes)s.") % {"schemes": " or ".join(schemes)})
    if parts.username or parts.password:
        raise RegistryError(_("Do not put a user name or password in the address."))
    try:
        port = parts.port
    except ValueError:
        raise RegistryError(_("The port must be a number from 1 to 65535.")) from None
    if port == 0:
        raise RegistryError(_("The port must be a number from 1 to 65535."))
    host = parts.hostname or ""
    if not host or not (HOST_NAME.match(host) or _is_ip(host)):
        raise RegistryError(_("The address has no valid host name or IP address."))
    if parts.query or parts.fragment:
        raise RegistryError(_("The address must not contain a query (?) or a fragment (#)."))
    return url.strip().rstrip("/")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolved_addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses ``host`` stands for (itself when it is an IP literal); empty when it does not resolve."""
    if _is_ip(host):
        return [ipaddress.ip_address(host)]
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64, IPv4-compatible), if any."""
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if any(address in network for network in NAT64_NETWORKS) or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_link_local_or_metadata(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if address in METADATA_ADDRESSES or any(address in network for network in LINK_LOCAL_NETWORKS):
        return True
    inner = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    return inner is not None and is_link_local_or_metadata(inner)


def address_problem(url: str, *, allow_link_local: bool) -> str | None:
    """A sentence when ``url`` points at a link-local or cloud metadata address that is not allowed.

    Such addresses answer with the cloud host's own secrets, so Kubemate refuses
    them (literal or behind a host name) unless an administrator allowed them.
    Loopback stays allowed.
    """
    if allow_link_local:
        return None
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return _("The address is not a valid URL; check the brackets around an IPv6 address.")
    if ("%" in host and ":" not in host) or any(ord(char) < 33 or ord(char) > 126 for char in host):
        # Percent-escapes and characters outside ASCII in a host are spellings, not names: a resolver
        # elsewhere may decode them to an address this check never saw.
        return _("%(host)s is not a host name or IP address Kubemate can check; write it plainly.") % {"host": host}
    if host.lower() in METADATA_HOSTS:
        return _(
            "%(host)s is a cloud metadata service. Kubemate refuses such addresses unless a platform "
            "administrator ticks “allow link-local addresses”."
        ) % {"host": host}
    for address in resolved_addresses(host):
        if is_link_local_or_metadata(address):
            return _(
                "%(host)s is a link-local or cloud metadata address (%(address)s). Kubemate refuses such "
                "addresses unless a platform administrator ticks “allow link-local addresses”."
            ) % {"host": host, "address": address}
    return None


def parse_labels(text: str) -> dict[str, str]:
    """key=value lines into a dict, validated the way Kubernetes validates label keys and values."""
    labels: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise RegistryError(_("Line %(line)d: write each label as key=value.") % {"line": number})
        prefix, slash, name = key.rpartition("/")
        if slash and not values.is_label_prefix(prefix):
            raise RegistryError(
                _("Line %(line)d: the prefix %(prefix)s of a label key must be a DNS subdomain (e.g. example.com).")
                % {"line": number, "prefix": prefix}
            )
        if not values.is_label_name(name):
            raise RegistryError(
                _(
                    "Line %(line)d: the label key %(key)s must be at most 63 letters, digits, '-', '_' or '.', "
                    "starting and ending with a letter or digit."
                )
                % {"line": number, "key": key}
            )
        if not values.is_label_value(value):
            raise RegistryError(
                _(
                    "Line %(line)d: the label value %(value)s must be at most 63 letters, digits, '-', '_' or '.', "
                    "starting and ending with a letter or digit."
                )
                % {"line": number, "value": value}
            )
        if key in labels:
            raise RegistryError(_("Line %(line)d: the label %(key)s is given twice.") % {"line": number, "key": key})
        labels[key] = value
    return labels


def labels_text(labels: dict) -> str:
    return "\n".join(f"{key}={value}" for key, value in sorted((labels or {}).items()))


def check_pem(pem: str) -> bytes:
    """The PEM bytes of one or more certificates; RegistryError otherwise."""
    data = pem.strip().encode()
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise RegistryError(
            _("The CA certificate is not a PEM certificate (it starts with -----BEGIN CERTIFICATE-----).")
        ) from None
    return data + b"\n"


def _minimal_kubeconfig(cluster: dict, user: dict) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "cluster", "cluster": cluster}],
            "users": [{"name": "kubemate", "user": user}],
            "contexts": [{"name": "kubemate", "context": {"cluster": "cluster", "user": "kubemate"}}],
            "current-context": "kubemate",
        }
    )


@sensitive_variables("token")
def check_token(token: str) -> str:
    token = token.strip()
    if not token or any(ch.isspace() for ch in token):
        raise RegistryError(_("Paste the bearer token as one line without spaces."))
    return token


@sensitive_variables("token")
def kubeconfig_from_token(*, server: str, token: str, ca_pem: str) -> str:
    """A minimal kubeconfig from an API server URL, a bearer token and the cluster's CA certificate (PEM)."""
    server = check_url(server)
    token = check_token(token)
    ca = base64.b64encode(check_pem(ca_pem)).decode()
    return _minimal_kubeconfig({"server": server, "certificate-authority-data": ca}, {"token": token})


def _named(data: dict, section: str, field: str) -> dict[str, dict]:
    """A kubeconfig section (``contexts``, ``clusters``, ``users``) as name -> mapping, its shape checked.

    Every entry must be a mapping with a text ``name`` and a mapping under ``field``: a number, a list or
    a missing part anywhere answers a sentence naming the section, never an error page.
    """
    entries = data.get(section) or []
    if not isinstance(entries, list):
        raise RegistryError(_("The kubeconfig's %(section)s must be a list.") % {"section": section})
    named: dict[str, dict] = {}
    for number, entry in enumerate(entries, start=1):
        name = entry.get("name") if isinstance(entry, dict) else None
        body = entry.get(field) if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or not isinstance(body, dict):
            raise RegistryError(
                _("Entry %(number)d of the kubeconfig's %(section)s must have a name (text) and a %(field)s section.")
                % {"number": number, "section": section, "field": field}
            )
        named[name] = body
    return named


@sensitive_variables("text", "data", "user")
def kubeconfig_for_context(text: str, context: str = "") -> str:
    """The cluster and user of one context of a kubeconfig, as a minimal kubeconfig; the others are dropped.

    Only embedded credentials are accepted: file paths would read files on the
    Kubemate server and exec/auth-provider entries would run commands there.
    """
    try:
        data = untrusted.load_yaml(text, untrusted.KUBECONFIG)
    except untrusted.UntrustedInput as exc:
        raise RegistryError(_("The kubeconfig cannot be read: %(reason)s") % {"reason": exc}) from None
    if not isinstance(data, dict) or not isinstance(data.get("contexts"), list):
        raise RegistryError(_("This is not a kubeconfig: it has no contexts."))
    contexts = _named(data, "contexts", "context")
    name = context.strip() or data.get("current-context") or ""
    if not isinstance(name, str):
        raise RegistryError(_("The kubeconfig's current-context must be a name (text)."))
    if not name:
        raise RegistryError(_("The kubeconfig has no current context; enter the name of the context to use."))
    if name not in contexts:
        raise RegistryError(
            _("The kubeconfig has no context named %(name)s. Its contexts are: %(names)s.")
            % {"name": name, "names": ", ".join(sorted(contexts)) or "—"}
        )
    clusters, users = _named(data, "clusters", "cluster"), _named(data, "users", "user")
    cluster_name, user_name = contexts[name].get("cluster"), contexts[name].get("user")
    if not isinstance(cluster_name, str) or not isinstance(user_name, str):
        raise RegistryError(_("The context %(name)s must name its cluster and user as text.") % {"name": name})
    cluster, user = clusters.get(cluster_name), users.get(user_name)
    if cluster is None or user is None:
        raise RegistryError(
            _("The context %(name)s names a cluster or user the kubeconfig does not define.") % {"name": name}
        )
    refused = sorted((set(cluster) - ALLOWED_CLUSTER_KEYS) | (set(user) - ALLOWED_USER_KEYS))
    if refused:
        raise RegistryError(
            _(
                "The kubeconfig uses %(keys)s, which Kubemate does not accept: only embedded certificates "
                "(…-data) and tokens are stored, never file paths, commands, proxies or skipped TLS checks."
            )
            % {"keys": ", ".join(refused)}
        )
    for key, value in (*cluster.items(), *user.items()):
        if key != "extensions" and not isinstance(value, str):
            raise RegistryError(_("The kubeconfig's %(key)s must be text.") % {"key": key})
    if not user.get("token") and not (user.get("client-certificate-data") and user.get("client-key-data")):
        raise RegistryError(_("The kubeconfig's user has neither a token nor a client certificate and key."))
    server = check_url(str(cluster.get("server") or ""))
    if cluster.get("certificate-authority-data"):
        try:
            pem = base64.b64decode(cluster["certificate-authority-data"], validate=True).decode()
        except (binascii.Error, ValueError):
            raise RegistryError(_("The kubeconfig's certificate-authority-data is not valid base64.")) from None
        check_pem(pem)
    return _minimal_kubeconfig({**cluster, "server": server}, user)


# Connection tests ------------------------------------------------------------------------------


def connect(credentials: Credentials, *, allow_link_local: bool) -> ConnectionReport:
    """The connection test, after the address policy; no database writes."""
    try:
        server = credentials.server
    except (untrusted.UntrustedInput, KeyError, IndexError, TypeError):
        return ConnectionReport(
            ok=False, reason="invalid", message=_("The stored credentials are not a usable kubeconfig; replace them.")
        )
    problem = address_problem(server, allow_link_local=allow_link_local)
    if problem:
        return ConnectionReport(ok=False, reason="address", message=problem)
    return check_connection(credentials.kubeconfig_yaml, purpose=credentials.purpose)


def _report_detail(report: ConnectionReport, server: str) -> dict:
    return {"api_server": server, "reason": report.reason, "version": report.version, "nodes": report.nodes}


def probe_credentials(
    *, actor, credentials: Credentials, allow_link_local: bool, name: str = "", request=None
) -> ConnectionReport:
    """Test credentials that are not stored yet (the button on the registration form)."""
    report = connect(credentials, allow_link_local=allow_link_local)
    audit.record(
        actor=actor,
        action="clusters.cluster.test",
        result=AuditEvent.Result.SUCCESS if report.ok else AuditEvent.Result.FAILURE,
        cluster=name,
        kind="Cluster",
        name=name,
        detail={**_report_detail(report, credentials.server), "purpose": credentials.purpose},
        request=request,
    )
    return report


def probe_cluster(*, actor, cluster: Cluster, request=None) -> ConnectionReport:
    """Test a registered cluster's stored credentials; remember the version it reports."""
    report = connect(Credentials(cluster.kubeconfig()), allow_link_local=cluster.allow_link_local)
    with transaction.atomic():
        if report.ok and report.version != cluster.kubernetes_version:
            Cluster.objects.filter(pk=cluster.pk).update(kubernetes_version=report.version)
            cluster.kubernetes_version = report.version
        audit.record(
            actor=actor,
            action="clusters.cluster.test",
            result=AuditEvent.Result.SUCCESS if report.ok else AuditEvent.Result.FAILURE,
            cluster=cluster.name,
            kind="Cluster",
            name=cluster.name,
            detail=_report_detail(report, cluster.api_server),
            request=request,
        )
    return report


def _usable_kubeconfig(*, actor, action: str, name: str, credentials: Credentials, allow_link_local: bool, request):
    """Test the credentials; with administrator credentials install Kubemate's identity and return its
    kubeconfig. Raises RegistryError (after auditing the failure) when the cluster cannot be used."""
    report = connect(credentials, allow_link_local=allow_link_local)
    kubeconfig = credentials.kubeconfig_yaml
    failure = None if report.ok else report.message
    if report.ok and credentials.purpose == Purpose.ADMIN:
        admin = Cluster(name=name, api_server=credentials.server)
        admin.set_kubeconfig(credentials.kubeconfig_yaml)
        try:
            kubeconfig = install_identity(admin, identity_manifest())
        except KubeError as exc:
            failure = _("Kubemate could not install its own identity: %(reason)s") % {"reason": exc}
    if failure:
        audit.record(
            actor=actor,
            action=action,
            result=AuditEvent.Result.FAILURE,
            cluster=name,
            kind="Cluster",
            name=name,
            detail={**_report_detail(report, credentials.server), "purpose": credentials.purpose},
            request=request,
        )
        raise RegistryError(failure)
    return kubeconfig, report


def identity_manifest() -> list[dict]:
    """Kubemate's own least-privilege identity (deploy/kubernetes/kubemate-rbac.yaml) as documents."""
    path = Path(django_settings.BASE_DIR) / "deploy" / "kubernetes" / "kubemate-rbac.yaml"
    return [doc for doc in untrusted.load_yaml_all(path.read_text(), untrusted.MANIFESTS) if doc]


# Writes ----------------------------------------------------------------------------------------


def register_from_kubeconfig(
    *, actor, name: str, kubeconfig_text: str, purpose: str = Purpose.ADMIN, environment: str = "", request=None
) -> Cluster:
    """Register ``name`` from a kubeconfig, or replace its credentials when it is registered already.

    The registration form's own path (minimised kubeconfig, address policy, connection test, identity
    install with administrator credentials, audit event), for ``manage.py register_sandbox`` and the tests.
    """
    credentials = Credentials(kubeconfig_for_context(kubeconfig_text), purpose=purpose)
    existing = Cluster.objects.filter(name=name).first()
    if existing is None:
        settings = ClusterSettings(name=name, environment=environment)
        return create_cluster(actor=actor, settings=settings, credentials=credentials, request=request)
    return replace_credentials(
        actor=actor,
        cluster=existing,
        credentials=credentials,
        allow_link_local=existing.allow_link_local,
        request=request,
    )


def create_cluster(*, actor, settings: ClusterSettings, credentials: Credentials, request=None) -> Cluster:
    """Register a cluster. Administrator credentials are used once to install Kubemate's identity, then forgotten."""
    if Cluster.objects.filter(name=settings.name).exists():
        raise RegistryError(_("A cluster named %(name)s is already registered.") % {"name": settings.name})
    kubeconfig, report = _usable_kubeconfig(
        actor=actor,
        action="clusters.cluster.create",
        name=settings.name,
        credentials=credentials,
        allow_link_local=settings.allow_link_local,
        request=request,
    )
    cluster = Cluster(**settings.as_fields(), api_server=credentials.server, kubernetes_version=report.version)
    cluster.set_kubeconfig(kubeconfig)
    settings.apply_endpoint_auth(cluster)
    try:
        with transaction.atomic():
            cluster.save()
            _record_create(actor, cluster, credentials, report, request)
    except IntegrityError:
        # Someone registered the same name meanwhile.
        raise RegistryError(_("A cluster named %(name)s is already registered.") % {"name": settings.name}) from None
    return cluster


def _record_create(actor, cluster: Cluster, credentials: Credentials, report: ConnectionReport, request) -> None:
    audit.record(
        actor=actor,
        action="clusters.cluster.create",
        cluster=cluster.name,
        kind="Cluster",
        name=cluster.name,
        detail={
            "api_server": cluster.api_server,
            "purpose": credentials.purpose,
            "environment": cluster.environment,
            "version": report.version,
        },
        request=request,
    )


def update_cluster(*, actor, cluster: Cluster, settings: ClusterSettings, request=None) -> list[str]:
    """Save the non-credential settings; returns the names of the fields that changed (nothing is written
    or audited when none did)."""
    fields = settings.as_fields()
    changed = [field for field, value in fields.items() if getattr(cluster, field) != value]
    secrets = settings.apply_endpoint_auth(cluster)  # the row's fields only; saved below or not at all
    changed += secrets
    if not changed:
        return []
    if settings.name != cluster.name and Cluster.objects.filter(name=settings.name).exists():
        cluster.refresh_from_db()
        raise RegistryError(_("A cluster named %(name)s is already registered.") % {"name": settings.name})
    with transaction.atomic():
        old_name = cluster.name
        for field, value in fields.items():
            setattr(cluster, field, value)
        cluster.save(update_fields=[*fields, *secrets])
        audit.record(
            actor=actor,
            action="clusters.cluster.update",
            cluster=cluster.name,
            kind="Cluster",
            name=cluster.name,
            detail={"changed": changed, **({"renamed_from": old_name} if old_name != cluster.name else {})},
            request=request,
        )
    return changed


def replace_credentials(
    *, actor, cluster: Cluster, credentials: Credentials, allow_link_local: bool, request=None
) -> Cluster:
    """Replace the stored credentials after the cluster accepted the new ones."""
    kubeconfig, report = _usable_kubeconfig(
        actor=actor,
        action="clusters.cluster.credentials_replace",
        name=cluster.name,
        credentials=credentials,
        allow_link_local=allow_link_local,
        request=request,
    )
    with transaction.atomic():
        cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
        cluster.set_kubeconfig(kubeconfig)
        cluster.api_server = credentials.server
        cluster.kubernetes_version = report.version
        cluster.save(update_fields=["kubeconfig_encrypted", "api_server", "kubernetes_version"])
        audit.record(
            actor=actor,
            action="clusters.cluster.credentials_replace",
            cluster=cluster.name,
            kind="Cluster",
            name=cluster.name,
            detail={"api_server": cluster.api_server, "purpose": credentials.purpose},
            request=request,
        )
    return cluster


def delete_cluster(*, actor, cluster: Cluster, request=None) -> None:
    """Forget a cluster, its credentials and its inventory. Nothing is changed inside the cluster."""
    projects = sorted(cluster.projects.values_list("name", flat=True))
    if projects:
        raise RegistryError(
            _("Cluster %(name)s still has projects (%(projects)s); delete or move them first.")
            % {"name": cluster.name, "projects": ", ".join(projects)}
        )
    name, server = cluster.name, cluster.api_server
    try:
        with transaction.atomic():
            cluster.delete()
            audit.record(
                actor=actor,
                action="clusters.cluster.delete",
                cluster=name,
                kind="Cluster",
                name=name,
                detail={"api_server": server},
                request=request,
            )
    except ProtectedError:
        raise RegistryError(
            _("Cluster %(name)s is still used elsewhere in Kubemate; remove what uses it first.") % {"name": name}
        ) from None


ENCRYPTED_ENDPOINT_FIELDS = tuple(f"{endpoint}_auth_encrypted" for endpoint in Cluster.ENDPOINTS)


def rotate_stored_credentials(*, actor=None) -> int:
    """Re-encrypt every stored credential with the newest key of KUBEMATE_ENCRYPTION_KEYS, all or nothing."""
    with transaction.atomic():
        clusters = list(Cluster.objects.select_for_update().order_by("pk"))
        for cluster in clusters:
            try:
                cluster.kubeconfig_encrypted = crypto.rotate(cluster.kubeconfig_encrypted)
                for field in ENCRYPTED_ENDPOINT_FIELDS:
                    if getattr(cluster, field):
                        setattr(cluster, field, crypto.rotate(getattr(cluster, field)))
            except InvalidToken:
                raise RegistryError(
                    _(
                        "The credentials of cluster %(name)s cannot be decrypted with any configured key; nothing "
                        "was re-encrypted. Put the old key back into KUBEMATE_ENCRYPTION_KEYS."
                    )
                    % {"name": cluster.name}
                ) from None
            cluster.save(update_fields=["kubeconfig_encrypted", *ENCRYPTED_ENDPOINT_FIELDS])
        audit.record(
            actor=actor,
            actor_name=None if actor else "system",
            action="core.encryption.rotate",
            kind="Cluster",
            detail={"clusters": len(clusters)},
        )
    return len(clusters)
