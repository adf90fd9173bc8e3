"""etcd reached over TLS with a client certificate, as a bank's etcd is: a second, real etcd (the sandbox's binary)
started here with its own CA, serving clients only over mutual TLS. Kubemate's stored access (CA, client certificate
and key, the last two encrypted) takes and checks a snapshot; without the client certificate etcd refuses."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apps.backups import etcd, services
from apps.backups.models import EtcdAccess
from apps.core.deferred import Failure
from tests.plugins.s3 import built_binary
from tests.plugins.served import free_port, wait

pytestmark = pytest.mark.django_db


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _cert(subject: str, key, issuer_key, issuer: x509.Name | None, *, ca=False, server=False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


@pytest.fixture(scope="module")
def tls_etcd():
    folder = Path(tempfile.mkdtemp(prefix="kubemate-etcd-tls-"))
    ca_key, server_key, client_key = _key(), _key(), _key()
    ca = _cert("kubemate-test-etcd-ca", ca_key, ca_key, None, ca=True)
    server = _cert("etcd", server_key, ca_key, ca.subject, server=True)
    client = _cert("kubemate-backup", client_key, ca_key, ca.subject)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    files = {
        "ca": _write(folder / "ca.pem", ca_pem),
        "cert": _write(folder / "server.pem", server.public_bytes(serialization.Encoding.PEM).decode()),
        "key": _write(folder / "server-key.pem", _pem(server_key)),
    }
    client_port, peer_port = free_port(), free_port()
    url, peer = f"https://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    log = open(folder / "etcd.log", "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [
            str(built_binary("ETCD", "etcd")),
            "--name", "tls", "--data-dir", str(folder / "data"),
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", f"tls={peer}",
            "--cert-file", files["cert"], "--key-file", files["key"], "--trusted-ca-file", files["ca"],
            "--client-cert-auth",
        ],
        stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    access = etcd.Access(
        (url,),
        ca_pem=ca_pem,
        cert_pem=client.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=_pem(client_key),
    )
    try:
        wait(lambda: _answers(access), 30, "the TLS etcd to answer")
        yield access
    finally:
        process.kill()
        process.wait(10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _answers(access) -> bool:
    try:
        return bool(etcd.member_status(access))
    except Failure:
        return False


def test_a_snapshot_over_mutual_tls_with_the_stored_client_certificate(
    tls_etcd, registered_cluster, admin_user, tmp_path
):
    found = services.save_etcd_access(
        actor=admin_user,
        cluster=registered_cluster,
        endpoints=list(tls_etcd.endpoints),
        ca_pem=tls_etcd.ca_pem,
        cert_pem=tls_etcd.cert_pem,
        key_pem=tls_etcd.key_pem,
    )

    stored = EtcdAccess.objects.get(pk=found.pk)
    assert stored.cert_subject == "CN=kubemate-backup"
    assert stored.cert_expires_at is not None
    assert "PRIVATE KEY" not in stored.key_encrypted and "CERTIFICATE" not in stored.cert_encrypted
    snapshot = tmp_path / "tls.db"
    etcd.save(etcd.access_for(stored), snapshot)
    status = etcd.status(snapshot)
    assert status.total_size > 0 and status.version.startswith("3.6")


def test_without_the_client_certificate_etcd_refuses_and_nothing_is_saved(
    tls_etcd, registered_cluster, admin_user, settings
):
    settings.KUBEMATE_BACKUP_ETCD_CHECK_SECONDS = 1  # etcdctl retries the refused handshake until then
    with pytest.raises(Failure):
        services.save_etcd_access(
            actor=admin_user, cluster=registered_cluster, endpoints=list(tls_etcd.endpoints), ca_pem=tls_etcd.ca_pem
        )
    assert not EtcdAccess.objects.filter(cluster=registered_cluster).exists()
