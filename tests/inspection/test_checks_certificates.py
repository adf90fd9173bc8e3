"""Certificate checks: the sandbox API server's real serving certificate, TLS Secrets a real Gateway and Ingress
serve in the sandbox (read by Kubemate's own identity), and the credentials in Kubemate's stored kubeconfig (a client
certificate, and a real bound ServiceAccount token from the sandbox's TokenRequest API)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client as k8s

from apps.clusters.inventory.sync import full_resync
from apps.clusters.kinds import BY_KIND
from apps.core.deferred import render
from apps.inspection import runner
from apps.inspection.catalogue import CATALOGUE
from apps.inspection.checks.context import Context
from tests.factories import ClusterFactory
from tests.plugins.served import free_port

pytestmark = [pytest.mark.django_db]


def certificate(days: float, name: str = "pay.bank.example") -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=30))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def run(check_id: str, cluster, ctx=None):
    return runner.run_one(ctx or Context(), CATALOGUE[check_id], cluster)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(user: dict) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443"}}],
            # Only the current context's user is Kubemate's; another user's old certificate is no concern.
            "users": [
                {"name": "old", "user": {"client-certificate-data": b64(certificate(-5)[0])}},
                {"name": "kubemate", "user": user},
            ],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "kubemate"}}],
            "current-context": "c",
        }
    )


@pytest.mark.sandbox
def test_the_api_servers_certificate_is_read_from_the_handshake(registered_cluster):
    fine = run("security.certificates.apiserver", registered_cluster)
    near = run(
        "security.certificates.apiserver", registered_cluster, Context(thresholds={"certificate.warning_days": 100_000})
    )
    silent = run("security.certificates.apiserver", ClusterFactory(api_server=f"https://127.0.0.1:{free_port()}"))

    assert fine.status == "passed"
    (finding,) = near.findings
    assert finding.subject.startswith("apiserver 127.0.0.1:") and "expires on" in render(finding.message)
    assert finding.severity == "warning" and finding.facts["days"] > 7
    assert silent.status == "not_checked" and "did not complete a TLS handshake" in render(silent.reason)


@pytest.mark.sandbox
def test_tls_secrets_served_by_a_gateway_and_an_ingress_are_read_and_judged(
    sandbox, registered_cluster, namespace, clustera_context
):
    core = k8s.CoreV1Api(sandbox.api_client)
    custom = k8s.CustomObjectsApi(sandbox.api_client)
    networking = k8s.NetworkingV1Api(sandbox.api_client)
    soon, soon_key = certificate(3)
    later, later_key = certificate(400)
    ca_expiring, _ = certificate(2, "Bank Issuing CA")
    secrets = {
        "soon": {"tls.crt": b64(soon), "tls.key": b64(soon_key)},
        # The leaf comes first in a chain: it is what clients see expire, not the CA after it.
        "later": {"tls.crt": b64(later + ca_expiring), "tls.key": b64(later_key)},
        "garbled": {"tls.crt": b64(b"not a certificate"), "tls.key": b64(later_key)},
    }
    for name, data in secrets.items():
        core.create_namespaced_secret(
            namespace,
            {"metadata": {"name": name}, "type": "kubernetes.io/tls" if name != "garbled" else "Opaque", "data": data},
        )
    listeners = [
        {
            "name": n,
            "protocol": "HTTPS",
            "port": 443,
            "hostname": f"{n}.bank.example",
            "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": n}]},
        }
        for n in ("soon", "later", "gone")
    ]
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "public"},
        "spec": {"gatewayClassName": "traefik", "listeners": listeners},
    }
    custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "gateways", gateway)
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    networking.create_namespaced_ingress(
        namespace,
        {
            "metadata": {"name": "legacy"},
            "spec": {
                "defaultBackend": backend,
                "tls": [{"hosts": ["old.bank.example"], "secretName": "garbled"}, {"secretName": "later"}],
            },
        },
    )
    full_resync(registered_cluster, [BY_KIND["Gateway"], BY_KIND["Ingress"]])

    result = run("security.certificates.tls_secrets", registered_cluster, clustera_context(namespace=namespace))

    found = {f.subject: f for f in result.findings}
    assert set(found) == {f"Secret {namespace}/soon", f"Secret {namespace}/gone", f"Secret {namespace}/garbled"}
    assert found[f"Secret {namespace}/soon"].severity == "critical"
    assert 2 < found[f"Secret {namespace}/soon"].facts["days"] < 4
    assert "does not exist" in render(found[f"Secret {namespace}/gone"].message)
    assert "holds no readable certificate" in render(found[f"Secret {namespace}/garbled"].message)
    assert all(f.namespace == namespace for f in result.findings)
    assert "PRIVATE KEY" not in repr(result.findings) and secrets["soon"]["tls.key"] not in repr(result.findings)
    relaxed = {"certificate.warning_days": 2, "certificate.critical_days": 1}
    kept = run(
        "security.certificates.tls_secrets",
        registered_cluster,
        clustera_context(namespace=namespace, thresholds=relaxed),
    )
    assert {f.subject for f in kept.findings} == {f"Secret {namespace}/gone", f"Secret {namespace}/garbled"}


def test_kubemates_client_certificate_is_read_from_its_stored_credentials():
    cert, key = certificate(20)
    cluster = ClusterFactory()
    cluster.set_kubeconfig(kubeconfig({"client-certificate-data": b64(cert), "client-key-data": b64(key)}))
    cluster.save()

    (finding,) = run("security.certificates.client", cluster).findings

    assert finding.subject == "client kubemate" and finding.severity == "warning" and 19 <= finding.facts["days"] <= 20
    assert render(finding.message).startswith(f"Kubemate's client certificate for {cluster.name} expires on ")
    renewed, key = certificate(365)
    cluster.set_kubeconfig(kubeconfig({"client-certificate-data": b64(renewed), "client-key-data": b64(key)}))
    cluster.save()
    assert run("security.certificates.client", cluster).status == "passed"
    cluster.set_kubeconfig("users: [unclosed")
    cluster.save()
    broken = run("security.certificates.client", cluster)
    assert broken.status == "not_checked" and "cannot be read" in render(broken.reason)


@pytest.mark.sandbox
def test_kubemates_bearer_token_expiry_is_read_from_the_token(sandbox, namespace):
    k8s.CoreV1Api(sandbox.api_client).create_namespaced_service_account(namespace, {"metadata": {"name": "kubemate"}})
    bound = sandbox.service_account_token(namespace, "kubemate", seconds=3600)
    cluster = ClusterFactory()
    cluster.set_kubeconfig(kubeconfig({"token": bound}))
    cluster.save()

    (finding,) = run("security.certificates.client", cluster).findings

    assert finding.subject == "token kubemate" and finding.severity == "critical" and finding.facts["days"] == 0
    left = datetime.fromisoformat(finding.facts["not_after"]) - datetime.now(UTC)
    assert timedelta(minutes=55) < left <= timedelta(hours=1)
    assert bound not in repr(finding)
    cluster.set_kubeconfig(kubeconfig({"token": "a-legacy-token-that-never-expires"}))
    cluster.save()
    assert run("security.certificates.client", cluster).status == "passed"
