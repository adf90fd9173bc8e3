"""Storage, backup, registry and image checks against the sandbox: real claims and volumes bound (or not) by the
real controller-manager, an etcd backup CronJob and its Job, a registry answering the Registry API on loopback
(a stand-in: the real registry arrives with CI/CD), node images; and volume fullness from a real Prometheus holding
kubelet volume series."""

from __future__ import annotations

import http.server
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from kubernetes import client as k8s

from apps.clusters.inventory.sync import full_resync
from apps.clusters.kinds import BY_KIND
from apps.core.deferred import render
from apps.inspection import runner
from apps.inspection.catalogue import CATALOGUE
from apps.inspection.checks.context import Context
from apps.inspection.models import Measurement, Run, Template
from tests.helpers import unique, wait_for
from tests.inspection.test_checks_apps import History, serve_history
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
    core = k8s.CoreV1Api(sandbox.api_client)
    volume = unique("pv")
    klass = unique("manual")
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
    core.create_namespaced_persistent_volume_claim(namespace, claim("data", klass))
    core.create_namespaced_persistent_volume_claim(namespace, claim("waiting", "no-such-class"))
    assert wait_for(lambda: core.read_namespaced_persistent_volume_claim("data", namespace).status.phase == "Bound", 60)
    resync(registered_cluster, "PersistentVolumeClaim", "PersistentVolume")
    ctx = clustera_context(namespace=namespace, names={volume})

    pending = run("cluster.pvc.pending", registered_cluster, ctx)
    released = run("cluster.pv.released", registered_cluster, ctx)

    assert [(f.subject, f.namespace) for f in pending.findings] == [
        (f"PersistentVolumeClaim {namespace}/waiting", namespace)
    ]
    assert "no-such-class" in render(pending.findings[0].message)
    assert released.status == "passed"
    core.delete_namespaced_persistent_volume_claim("data", namespace)
    core.delete_namespaced_persistent_volume_claim("waiting", namespace)
    assert wait_for(lambda: core.read_persistent_volume(volume).status.phase == "Released", 60)
    resync(registered_cluster, "PersistentVolumeClaim", "PersistentVolume")
    ctx = clustera_context(namespace=namespace, names={volume})
    assert run("cluster.pvc.pending", registered_cluster, ctx).status == "passed"
    (finding,) = run("cluster.pv.released", registered_cluster, ctx).findings
    assert finding.subject == f"PersistentVolume {volume}" and f"{namespace}/data" in render(finding.message)
    core.delete_persistent_volume(volume)


def test_volume_fullness_from_prometheus(registered_cluster, tmp_path):
    now = int(datetime.now(UTC).timestamp())
    history = History(now)
    for name, used in (("orders-data", 95.0), ("audit-data", 40.0)):
        labels = {"namespace": "payments", "persistentvolumeclaim": name}
        history.gauge("kubelet_volume_stats_used_bytes", labels, lambda age, used=used: used * 2**30)
        history.gauge("kubelet_volume_stats_capacity_bytes", labels, lambda age: 100 * 2**30)
    process, url = serve_history(tmp_path, history)
    try:
        assert run("cluster.pvc.nearly_full", registered_cluster, Context()).status == "not_checked"  # no Prometheus
        registered_cluster.prometheus_url = url
        registered_cluster.save(update_fields=["prometheus_url"])
        (finding,) = run("cluster.pvc.nearly_full", registered_cluster, Context()).findings
        assert finding.subject == "PersistentVolumeClaim payments/orders-data" and finding.namespace == "payments"
        assert finding.facts["percent"] == 95.0
        relaxed = run("cluster.pvc.nearly_full", registered_cluster, Context(thresholds={"pvc.full_percent": 96}))
        assert relaxed.status == "passed"
    finally:
        process.terminate()
        process.wait(10)


def test_the_etcd_backup_is_scheduled_and_recent(sandbox, registered_cluster, namespace, clustera_context):
    batch = k8s.BatchV1Api(sandbox.api_client)
    ctx = clustera_context(namespace=namespace)
    resync(registered_cluster, "CronJob", "Job")
    (none,) = run("cluster.etcd.backup", registered_cluster, ctx).findings
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
        {
            "metadata": {"name": "snapshot-1", "ownerReferences": [owner]},
            "spec": {"suspend": True, "template": pod},
        },
    )
    resync(registered_cluster, "CronJob", "Job")
    (never,) = run("cluster.etcd.backup", registered_cluster, clustera_context(namespace=namespace)).findings
    assert "never succeeded" in render(never.message)
    done = (timezone.now() - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    started = (timezone.now() - timedelta(hours=3, minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
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
    assert old.facts["hours"] >= 3


class RegistryApi(http.server.BaseHTTPRequestHandler):
    """Answers the Docker Registry HTTP API V2 base endpoint as a registry that wants a login does (401)."""

    def do_GET(self):
        status = 401 if self.path == "/v2/" else 404
        self.send_response(status)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("WWW-Authenticate", 'Bearer realm="https://auth.bank.example/token"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_registries_the_workloads_pull_from_answer(sandbox, registered_cluster, namespace, clustera_context, settings):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RegistryApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    up, down = f"127.0.0.1:{server.server_address[1]}", f"127.0.0.1:{free_port()}"
    settings.KUBEMATE_INSECURE_REGISTRIES = [up, down]
    apps = k8s.AppsV1Api(sandbox.api_client)
    for name, host in (("pay", up), ("ledger", down)):
        labels = {"app": name}
        apps.create_namespaced_deployment(
            namespace,
            {
                "metadata": {"name": name},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "app", "image": f"{host}/{name}:1.0"}]},
                    },
                },
            },
        )
    resync(registered_cluster, "Deployment", "StatefulSet", "DaemonSet", "CronJob", "Pod")
    try:
        (finding,) = run(
            "cluster.registry.reachable", registered_cluster, clustera_context(namespace=namespace)
        ).findings
        assert finding.subject == f"registry {down}" and "could not be reached" in render(finding.message)
        apps.delete_namespaced_deployment("ledger", namespace)
        resync(registered_cluster, "Deployment")
        passed = run("cluster.registry.reachable", registered_cluster, clustera_context(namespace=namespace))
        assert passed.status == "passed"
    finally:
        server.shutdown()
        server.server_close()


def test_images_on_nodes_that_nothing_runs_are_reported_after_a_while(sandbox, registered_cluster, clustera_context):
    core = k8s.CoreV1Api(sandbox.api_client)
    node = unique("img-node")
    core.create_node(
        {
            "metadata": {"name": node, "labels": {"type": "test"}},
            "spec": {"taints": [{"key": "inspection-test", "effect": "NoSchedule"}]},
        }
    )
    try:
        images = [{"names": ["registry.bank.example/old-batch:0.9"], "sizeBytes": 734003200}]
        core.patch_node_status(node, {"status": {"images": images}})
        resync(registered_cluster, "Node", "Pod")
        target = f"cluster:{registered_cluster.name}"
        first = Context()
        only_node = clustera_context(namespace="no-such-namespace", names={node})
        assert run("cluster.images.unused", registered_cluster, only_node).status == "passed"  # seen unused today
        assert only_node.measured and only_node.measured[0][1] == f"unused:{node}:registry.bank.example/old-batch:0.9"
        earlier = Run.objects.create(template=Template.objects.create(slug=unique("t"), name="T"))
        Measurement.objects.create(
            run=earlier,
            target=target,
            key=only_node.measured[0][1],
            value=0,
            measured_at=timezone.now() - timedelta(days=40),
        )
        (finding,) = run(
            "cluster.images.unused", registered_cluster, clustera_context(namespace="none", names={node})
        ).findings
        assert finding.subject == f"Node {node} image registry.bank.example/old-batch:0.9"
        assert finding.facts["bytes"] == 734003200 and "40 days" in render(finding.message)
        assert first.threshold("image.unused_days") == 30
    finally:
        core.delete_node(node)
