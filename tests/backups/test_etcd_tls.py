"""etcd reached over TLS with a client certificate, as a bank's etcd is: a second, real etcd (the sandbox's binary)
started here with its own CA, serving clients only over mutual TLS. Kubemate's stored access (CA, client certificate
and key, the last two encrypted) takes and checks a snapshot; without the client certificate etcd refuses."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from apps.backups import etcd, services
from apps.backups.models import EtcdAccess
from apps.core.deferred import Failure
from tests.plugins.s3 import built_binary
from tests.plugins.served import free_port, wait
from tests.tls import cert_pem, certificate, key_pem, new_key

pytestmark = pytest.mark.django_db


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


@pytest.fixture(scope="module")
def tls_etcd():
    folder = Path(tempfile.mkdtemp(prefix="kubemate-etcd-tls-"))
    ca_key, server_key, client_key = new_key(), new_key(), new_key()
    ca = certificate("kubemate-test-etcd-ca", ca_key, ca_key, None, ca=True)
    server = certificate("etcd", server_key, ca_key, ca.subject, server=True)
    client = certificate("kubemate-backup", client_key, ca_key, ca.subject)
    ca_pem = cert_pem(ca)
    files = {
        "ca": _write(folder / "ca.pem", ca_pem),
        "cert": _write(folder / "server.pem", cert_pem(server)),
        "key": _write(folder / "server-key.pem", key_pem(server_key)),
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
        cert_pem=cert_pem(client),
        key_pem=key_pem(client_key),
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
