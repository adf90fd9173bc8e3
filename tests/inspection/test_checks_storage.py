"""Storage, backup, registry and image checks against the sandbox: real claims and volumes bound (or not) by the
real controller-manager, an etcd backup CronJob and its Job, a registry answering the Registry API on loopback
(a stand-in: the real registry arrives with CI/CD), node images; and volume fullness from the real Prometheus of
tests/plugins/prometheus.py scraping kubelet volume series."""

from __future__ import annotations

import http.server
import threading
from datetime import timedelta

import pytest
from django.utils import timezone
from kubernetes import client as k8s

from apps.clusters.inventory.sync import full_resync
from apps.clusters.kinds import BY_KIND
from apps.core.deferred import render
from apps.inspection import registry, runner
from apps.inspection.catalogue import CATALOGUE
from apps.inspection.checks.context import Context
from apps.inspection.models import Measurement, Run, Template
from tests.helpers import unique, wait_for
from tests.plugins.served import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]


def run(check_id, cluster, ctx):
    return runner.run_one(ctx, CATALOGUE[check_id], cluster)


def resync(cluster, *kinds):
    full_resync(cluster, [BY_KIND[k] for k in kinds])


def claim(name: str, storage_class: str) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


def test_claims_pending_bound_and_volumes_released(sandbox, registered_cluster, namespace, clustera_context):
    core, storage = k8s.CoreV1Api(sandbox.api_client), k8s.StorageV1Api(sandbox.api_client)
    volume, klass, later = unique("pv"), unique("manual"), unique("local")
    core.create_persistent_volume(
        {
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": klass,
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": "/tmp/" + volume},
            },
        }
    )
    storage.create_storage_class(
        {
            "metadata": {"name": later},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    )
    core.create_namespaced_persistent_volume_claim(namespace, claim("data", klass))
    core.create_namespaced_persistent_volume_claim(namespace, claim("waiting", "no-such-class"))
    core.create_namespaced_persistent_volume_claim(namespace, claim("first-pod", later))
    assert wait_for(lambda: core.read_namespaced_persistent_volume_claim("data", namespace).status.phase == "Bound", 60)
    resync(registered_cluster, "PersistentVolumeClaim", "PersistentVolume", "StorageClass")
    seen = {volume, later}

    young = run("cluster.pvc.pending", registered_cluster, clustera_context(namespace=namespace, names=seen))
    pending = run(
        "cluster.pvc.pending",
        registered_cluster,
        clustera_context(namespace=namespace, names=seen, thresholds={"pvc.pending_minutes": 0}),
    )
    released = run("cluster.pv.released", registered_cluster, clustera_context(namespace=namespace, names=seen))

    assert young.status == "passed"  # pending for seconds: not yet stuck
    # Pending with a class that does not exist; the WaitForFirstConsumer claim waits for its first pod by design.
    assert [(f.subject, f.namespace) for f in pending.findings] == [
        (f"PersistentVolumeClaim {namespace}/waiting", namespace)
    ]
    assert "storage class no-such-class does not exist" in render(pending.findings[0].message)
    assert released.status == "passed"
    core.delete_namespaced_persistent_volume_claim("data", namespace)
    core.delete_namespaced_persistent_volume_claim("waiting", namespace)
    assert wait_for(lambda: core.read_persistent_volume(volume).status.phase == "Released", 60)
    assert wait_for(lambda: len(core.list_namespaced_persistent_volume_claim(namespace).items) == 1, 60)
    resync(registered_cluster, "PersistentVolumeClaim", "PersistentVolume")
    ctx = clustera_context(namespace=namespace, names=seen, thresholds={"pvc.pending_minutes": 0})
    assert run("cluster.pvc.pending", registered_cluster, ctx).status == "passed"
    (finding,) = run("cluster.pv.released", registered_cluster, ctx).findings
    assert finding.subject == f"PersistentVolume {volume}" and f"{namespace}/data" in render(finding.message)
    assert finding.facts == {"phase": "Released", "capacity": "1Gi"}
    core.delete_persistent_volume(volume)
    storage.delete_storage_class(later)


def test_volume_fullness_from_prometheus(registered_cluster, prometheus):
    team = unique("payments")
    series = {"orders-data": 95.0, "audit-data": 40.0}
    assert run("cluster.pvc.nearly_full", registered_cluster, Context()).status == "not_checked"  # no Prometheus
    registered_cluster.prometheus_url = prometheus.url
    registered_cluster.save(update_fields=["prometheus_url"])
    prometheus.wait_for("count(kubelet_volume_stats_capacity_bytes)", None)
    empty = run("cluster.pvc.nearly_full", registered_cluster, Context())
    assert empty.status == "not_checked" and "no kubelet volume statistics" in render(empty.reason)
    try:
        for name, used in series.items():
            labels = {"namespace": team, "persistentvolumeclaim": name}
            prometheus.exporter.set("kubelet_volume_stats_used_bytes", labels, used * 2**30)
            prometheus.exporter.set("kubelet_volume_stats_capacity_bytes", labels, 100 * 2**30)
        prometheus.wait_for(f'count(kubelet_volume_stats_used_bytes{{namespace="{team}"}})', 2)

        (finding,) = run("cluster.pvc.nearly_full", registered_cluster, Context()).findings
        relaxed = run("cluster.pvc.nearly_full", registered_cluster, Context(thresholds={"pvc.full_percent": 96}))

        assert finding.subject == f"PersistentVolumeClaim {team}/orders-data" and finding.namespace == team
        assert finding.facts["percent"] == 95.0 and "95.0% full (limit 85%)" in render(finding.message)
        assert relaxed.status == "passed"
    finally:
        for name in series:
            labels = {"namespace": team, "persistentvolumeclaim": name}
            prometheus.exporter.remove("kubelet_volume_stats_used_bytes", labels)
            prometheus.exporter.remove("kubelet_volume_stats_capacity_bytes", labels)


def stamp(ago: timedelta) -> str:
    return (timezone.now() - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_etcd_backup_is_scheduled_and_recent(sandbox, registered_cluster, namespace, clustera_context):
    batch = k8s.BatchV1Api(sandbox.api_client)
    resync(registered_cluster, "CronJob", "Job")
    (none,) = run("cluster.etcd.backup", registered_cluster, clustera_context(namespace=namespace)).findings
    assert "No etcd backup is scheduled" in render(none.message)
    pod = {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "snap", "image": "registry.bank.example/etcd:3.6"}]}
    }
    cron = batch.create_namespaced_cron_job(
        namespace,
        {
            "metadata": {"name": "snapshot", "labels": {"kubemate.io/backup": "etcd"}},
            "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": pod}}},
        },
    )
    owner = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "name": "snapshot",
        "uid": cron.metadata.uid,
        "controller": True,
    }
    batch.create_namespaced_job(
        namespace,
        {"metadata": {"name": "snapshot-1", "ownerReferences": [owner]}, "spec": {"suspend": True, "template": pod}},
    )
    resync(registered_cluster, "CronJob", "Job")
    # Made a moment ago: it has not had its first night yet. Older than the limit (0 h here), it never succeeded.
    assert run("cluster.etcd.backup", registered_cluster, clustera_context(namespace=namespace)).status == "passed"
    strict = clustera_context(namespace=namespace, thresholds={"etcd.backup_max_hours": 0})
    (never,) = run("cluster.etcd.backup", registered_cluster, strict).findings
    assert f"({namespace}/snapshot) has never succeeded" in render(never.message)

    done, started = stamp(timedelta(hours=3)), stamp(timedelta(hours=3, minutes=1))
    conditions = [
        {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": done, "reason": "CompletionsReached"},
        {"type": "Complete", "status": "True", "lastTransitionTime": done, "reason": "CompletionsReached"},
    ]
    batch.patch_namespaced_job_status(
        "snapshot-1",
        namespace,
        {"status": {"startTime": started, "completionTime": done, "succeeded": 1, "conditions": conditions}},
    )
    resync(registered_cluster, "Job")
    assert run("cluster.etcd.backup", registered_cluster, clustera_context(namespace=namespace)).status == "passed"
    stale = clustera_context(namespace=namespace, thresholds={"etcd.backup_max_hours": 2})
    (old,) = run("cluster.etcd.backup", registered_cluster, stale).findings
    assert old.facts["hours"] >= 3 and "succeeded 3 hours ago (at most 2)" in render(old.message)

    # The CronJob's own record of its last success counts too (its Jobs may be cleaned up already).
    batch.patch_namespaced_cron_job_status(
        "snapshot", namespace, {"status": {"lastSuccessfulTime": stamp(timedelta(hours=1))}}
    )
    resync(registered_cluster, "CronJob")
    stale = clustera_context(namespace=namespace, thresholds={"etcd.backup_max_hours": 2})
    assert run("cluster.etcd.backup", registered_cluster, stale).status == "passed"


class RegistryApi(http.server.BaseHTTPRequestHandler):
    """A stand-in registry (the real one arrives with the CI/CD issue): answers the Docker Registry HTTP API V2 base
    endpoint as a registry that wants a login does (401 with its version header and a Bearer challenge)."""

    def do_GET(self):
        status = 401 if self.path == "/v2/" else 404
        self.send_response(status)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("WWW-Authenticate", 'Bearer realm="https://auth.bank.example/token"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def deployment(name: str, image: str) -> dict:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": image}]}},
        },
    }


def test_registries_the_workloads_pull_from_answer(sandbox, registered_cluster, namespace, clustera_context, settings):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RegistryApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    up, down, nodes_own = (
        f"127.0.0.1:{server.server_address[1]}",
        f"127.0.0.1:{free_port()}",
        f"localhost:{free_port()}",
    )
    # Plain HTTP for the loopback stand-ins, named as an administrator names a plain-HTTP registry; the node's own
    # localhost registry is not named, so it is not asked (Kubemate's loopback is not the node's).
    settings.KUBEMATE_INSECURE_REGISTRIES = [up, down]
    apps = k8s.AppsV1Api(sandbox.api_client)
    for name, host in (("pay", up), ("ledger", down), ("cache", nodes_own)):
        apps.create_namespaced_deployment(namespace, deployment(name, f"{host}/{name}:1.0"))
    resync(registered_cluster, "Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "Pod")
    try:
        result = run("cluster.registry.reachable", registered_cluster, clustera_context(namespace=namespace))
        (finding,) = result.findings
        assert finding.subject == f"registry {down}" and finding.facts == {"containers": 1}
        assert render(finding.message) == f"Registry {down} could not be reached: the connection was refused."
        apps.delete_namespaced_deployment("ledger", namespace)
        resync(registered_cluster, "Deployment")
        passed = run("cluster.registry.reachable", registered_cluster, clustera_context(namespace=namespace))
        assert passed.status == "passed"
    finally:
        server.shutdown()
        server.server_close()


def test_image_references_name_their_registry_and_full_names():
    assert registry.registry_of("busybox:1.36") == "docker.io"
    assert registry.registry_of("registry.bank.example:5000/pay/api@sha256:" + "a" * 64) == "registry.bank.example:5000"
    assert registry.registry_of("bad host/app:1") == ""
    assert registry.base_url("docker.io") == "https://registry-1.docker.io/v2/"
    assert registry.full_names("busybox") == {"docker.io/library/busybox:latest"}
    assert registry.full_names("docker-pullable://busybox@sha256:ab") == {"docker.io/library/busybox@sha256:ab"}


def test_images_on_nodes_that_nothing_runs_are_reported_after_a_while(
    sandbox, registered_cluster, namespace, clustera_context
):
    core = k8s.CoreV1Api(sandbox.api_client)
    node, old = unique("img-node"), "registry.bank.example/old-batch:0.9"
    core.create_node(
        {
            "metadata": {"name": node, "labels": {"type": "test"}},
            "spec": {"taints": [{"key": "inspection-test", "effect": "NoSchedule"}]},
        }
    )
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "tool"},
            "spec": {"nodeName": node, "containers": [{"name": "t", "image": "busybox:1.36"}]},
        },
    )
    try:
        images = [
            {"names": [old, "registry.bank.example/old-batch@sha256:" + "b" * 64], "sizeBytes": 734003200},
            {"names": ["docker.io/library/busybox:1.36"], "sizeBytes": 2_000_000},  # the pod's busybox:1.36
            {"names": ["registry.k8s.io/pause:3.10"], "sizeBytes": 320_000},  # beside every pod, named by none
        ]
        core.patch_node_status(node, {"status": {"images": images}})
        resync(registered_cluster, "Node", "Pod")
        target = f"cluster:{registered_cluster.name}"

        first = clustera_context(namespace=namespace, names={node})
        assert run("cluster.images.unused", registered_cluster, first).status == "passed"  # the clock starts today
        assert [key for _t, key, _v in first.measured] == ["images:checked", f"unused:{old}"]

        earlier = Run.objects.create(template=Template.objects.create(slug=unique("t"), name="T"))
        forty = timezone.now() - timedelta(days=40)
        for key, value in (("images:checked", 1), (f"unused:{old}", forty.timestamp())):
            Measurement.objects.create(run=earlier, target=target, key=key, value=value, measured_at=forty)
        (finding,) = run(
            "cluster.images.unused", registered_cluster, clustera_context(namespace=namespace, names={node})
        ).findings
        assert finding.subject == f"image {old}" and finding.facts == {"nodes": 1, "bytes": 734003200, "days": 40}
        assert f"has not been used for 40 days; it takes 700 MiB on {node}" in render(finding.message)

        # A later run that did not find it unused (it ran somewhere in between): the clock starts again.
        between = Run.objects.create(template=Template.objects.create(slug=unique("t"), name="T"))
        Measurement.objects.create(
            run=between, target=target, key="images:checked", value=0, measured_at=timezone.now() - timedelta(days=2)
        )
        again = clustera_context(namespace=namespace, names={node})
        assert run("cluster.images.unused", registered_cluster, again).status == "passed"
    finally:
        core.delete_namespaced_pod("tool", namespace, grace_period_seconds=0)
        core.delete_node(node)
