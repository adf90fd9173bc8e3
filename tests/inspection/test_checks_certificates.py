"""Certificate checks: the sandbox API server's real serving certificate, TLS Secrets a real Gateway serves in the
sandbox (read by Kubemate's own identity), and the client certificate in Kubemate's stored credentials."""

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

pytestmark = [pytest.mark.django_db]


def certificate(days: float) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pay.bank.example")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def run(check_id: str, cluster, ctx=None):
    return runner.run_one(ctx or Context(), CATALOGUE[check_id], cluster)


@pytest.mark.sandbox
def test_the_api_servers_certificate_is_read_from_the_handshake(registered_cluster):
    fine = run("security.certificates.apiserver", registered_cluster)
    assert fine.status == "passed"
    near = run(
        "security.certificates.apiserver", registered_cluster, Context(thresholds={"certificate.warning_days": 100_000})
    )
    (finding,) = near.findings
    assert finding.subject.startswith("apiserver 127.0.0.1:") and "expires on" in render(finding.message)
    assert finding.severity == "warning" and finding.facts["days"] > 7


@pytest.mark.sandbox
def test_tls_secrets_served_by_a_gateway_are_read_and_judged(sandbox, registered_cluster, namespace, clustera_context):
    core = k8s.CoreV1Api(sandbox.api_client)
    custom = k8s.CustomObjectsApi(sandbox.api_client)
    for name, days in (("soon", 3), ("later", 400)):
        cert, key = certificate(days)
        core.create_namespaced_secret(
            namespace,
            {
                "metadata": {"name": name},
                "type": "kubernetes.io/tls",
                "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()},
            },
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
    full_resync(registered_cluster, [BY_KIND["Gateway"], BY_KIND["Ingress"]])

    result = run("security.certificates.tls_secrets", registered_cluster, clustera_context(namespace=namespace))

    found = {f.subject: f for f in result.findings}
    assert set(found) == {f"Secret {namespace}/soon", f"Secret {namespace}/gone"}
    assert (
        found[f"Secret {namespace}/soon"].severity == "critical" and found[f"Secret {namespace}/soon"].facts["days"] < 4
    )
    assert "does not exist" in render(found[f"Secret {namespace}/gone"].message)
    assert all(f.namespace == namespace for f in result.findings)
    assert "PRIVATE KEY" not in repr(result.findings)


def test_kubemates_client_certificate_is_read_from_its_stored_credentials():
    cert, key = certificate(20)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "users": [
            {
                "name": "kubemate",
                "user": {
                    "client-certificate-data": base64.b64encode(cert).decode(),
                    "client-key-data": base64.b64encode(key).decode(),
                },
            }
        ],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "kubemate"}}],
        "current-context": "c",
    }
    cluster = ClusterFactory()
    cluster.set_kubeconfig(yaml.safe_dump(config))
    cluster.save()
    (finding,) = run("security.certificates.client", cluster).findings
    assert finding.subject == "client kubemate" and finding.severity == "warning" and 19 <= finding.facts["days"] <= 20
    renewed, key = certificate(365)
    config["users"][0]["user"]["client-certificate-data"] = base64.b64encode(renewed).decode()
    cluster.set_kubeconfig(yaml.safe_dump(config))
    cluster.save()
    assert run("security.certificates.client", cluster).status == "passed"
