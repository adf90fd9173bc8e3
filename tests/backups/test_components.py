"""The backup components as real programs, before Kubemate uses them: versitygw (S3) stores, lists and deletes
objects through boto3 and answers nothing while killed; etcdctl v3.6.16 saves a snapshot of the sandbox's own etcd and
etcdutl reads it back; Velero v1.18.3 with the AWS plugin, run out of cluster against the sandbox, backs a namespace up
into versitygw and restores it after the namespace is deleted."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import tarfile

import pytest
from botocore.exceptions import EndpointConnectionError
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from tests.helpers import create_namespace, delete_namespace, unique, wait_for
from tests.plugins.s3 import built_binary


def test_versitygw_stores_lists_and_deletes_objects_and_answers_nothing_while_killed(s3_server, s3_bucket):
    s3 = s3_server.client()
    body = os.urandom(256 * 1024)
    s3.put_object(Bucket=s3_bucket, Key="etcd/one.db", Body=body)
    s3.put_object(Bucket=s3_bucket, Key="etcd/two.db", Body=b"second")
    s3.put_object(Bucket=s3_bucket, Key="other/three.txt", Body=b"third")

    assert s3.get_object(Bucket=s3_bucket, Key="etcd/one.db")["Body"].read() == body
    assert s3_server.keys(s3_bucket, "etcd/") == ["etcd/one.db", "etcd/two.db"]
    assert (s3_server.path / s3_bucket / "etcd" / "one.db").read_bytes() == body  # the posix backend: a file

    s3.delete_object(Bucket=s3_bucket, Key="etcd/one.db")
    assert s3_server.keys(s3_bucket) == ["etcd/two.db", "other/three.txt"]
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=s3_bucket, Key="etcd/one.db")

    s3_server.stop()
    try:
        assert not s3_server.alive()
        with pytest.raises(EndpointConnectionError):
            s3.put_object(Bucket=s3_bucket, Key="etcd/while-down.db", Body=b"lost")
    finally:
        s3_server.start()

    s3.put_object(Bucket=s3_bucket, Key="etcd/after.db", Body=b"back")
    assert s3.get_object(Bucket=s3_bucket, Key="etcd/after.db")["Body"].read() == b"back"
    assert s3_server.keys(s3_bucket, "etcd/") == ["etcd/after.db", "etcd/two.db"]


def _run(*argv, timeout: float = 120) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCDCTL_", "ETCDUTL_"))}
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{' '.join(map(str, argv))} exited with {done.returncode}: {done.stderr}"
    return done.stdout


@pytest.mark.sandbox
def test_etcdctl_saves_a_snapshot_of_the_sandbox_etcd_that_etcdutl_reads(sandbox, tmp_path):
    etcdctl = built_binary("ETCDCTL", "etcdctl")
    etcdutl = built_binary("ETCDUTL", "etcdutl")
    assert "etcdctl version: 3.6.16" in _run(etcdctl, "version")
    assert "etcdutl version: 3.6.16" in _run(etcdutl, "version")

    before = sandbox.etcd_revision()
    snapshot = tmp_path / "etcd.db"
    _run(etcdctl, "--endpoints", sandbox.etcd_url, "snapshot", "save", snapshot)

    status = json.loads(_run(etcdutl, "snapshot", "status", snapshot, "-w", "json"))
    assert status["revision"] >= before
    assert status["totalKey"] > 0
    # the bbolt database and, appended by `snapshot save`, its sha256 (which `snapshot restore` checks)
    assert status["totalSize"] == snapshot.stat().st_size - 32


def _namespace_gone(sandbox, name: str) -> bool:
    try:
        k8s_client.CoreV1Api(sandbox.api_client).read_namespace(name)
    except ApiException as error:
        return error.status == 404
    return False


@pytest.mark.sandbox
def test_velero_backs_a_namespace_up_to_versitygw_and_restores_it(sandbox, velero, s3_server):
    core = k8s_client.CoreV1Api(sandbox.api_client)
    namespace = unique("bk-velero")
    create_namespace(sandbox, namespace)
    try:
        data = {"mode": "live", "limit": "42"}
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": data})
        backup = unique("smoke")
        velero.create(
            {
                "kind": "Backup",
                "metadata": {"name": backup},
                "spec": {
                    "includedNamespaces": [namespace],
                    "storageLocation": velero.bsl,
                    "snapshotVolumes": False,
                    "ttl": "1h0m0s",
                },
            }
        )
        done = velero.wait("Backup", backup, "Completed", timeout=180)
        assert done["status"]["progress"]["itemsBackedUp"] >= 2  # the namespace and the ConfigMap, at least

        keys = s3_server.keys(velero.bucket, f"backups/{backup}/")
        assert f"backups/{backup}/{backup}.tar.gz" in keys
        assert f"backups/{backup}/velero-backup.json" in keys
        tarball = s3_server.s3.get_object(Bucket=velero.bucket, Key=f"backups/{backup}/{backup}.tar.gz")
        with tarfile.open(fileobj=io.BytesIO(tarball["Body"].read()), mode="r:gz") as archive:
            stored = archive.extractfile(f"resources/configmaps/namespaces/{namespace}/settings.json")
            assert json.load(stored)["data"] == data

        delete_namespace(sandbox, namespace)
        assert wait_for(lambda: _namespace_gone(sandbox, namespace), timeout=90), f"{namespace} was not deleted"

        restore = unique("smoke-restore")
        velero.create({"kind": "Restore", "metadata": {"name": restore}, "spec": {"backupName": backup}})
        velero.wait("Restore", restore, "Completed", timeout=180)

        back = core.read_namespaced_config_map("settings", namespace)
        assert back.data == data
        assert back.metadata.labels["velero.io/backup-name"] == backup
        assert back.metadata.labels["velero.io/restore-name"] == restore
    finally:
        with contextlib.suppress(ApiException):
            delete_namespace(sandbox, namespace)
