"""Security checks against real workloads in the sandbox: a Deployment, a CronJob, a Job of its own, a bare pod and
a bare ReplicaSet (whose pods the real controller-manager makes) that fail security checks, and a Deployment that
passes them all, read from the inventory its full resync lists."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from apps.clusters.inventory.sync import full_resync
from apps.clusters.kinds import BY_KIND
from apps.inspection import runner
from apps.inspection.catalogue import CATALOGUE
from tests.helpers import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]

CHECKS = (
    "security.images.latest",
    "security.images.unpinned",
    "security.containers.privileged",
    "security.containers.root",
    "security.containers.privilege_escalation",
    "security.containers.capabilities",
    "security.containers.writable_root",
    "security.pods.host_path",
    "security.pods.host_namespaces",
)
PINNED = "registry.bank.example/pay@sha256:" + "a" * 64
SAFE = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
RISKY = {"privileged": True, "runAsUser": 0, "capabilities": {"add": ["SYS_ADMIN", "NET_BIND_SERVICE"]}}


def pod_spec(image: str, security: dict, **extra) -> dict:
    return {"containers": [{"name": "app", "image": image, "securityContext": security}], **extra}


def deployment(name: str, spec: dict) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


def test_each_security_check_fails_the_risky_workloads_and_passes_the_hardened_one(
    sandbox, registered_cluster, namespace, clustera_context
):
    apps, batch, core = (
        k8s.AppsV1Api(sandbox.api_client),
        k8s.BatchV1Api(sandbox.api_client),
        k8s.CoreV1Api(sandbox.api_client),
    )
    risky = pod_spec(
        "registry.bank.example/tools:latest",
        RISKY,
        hostNetwork=True,
        volumes=[{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}],
    )
    apps.create_namespaced_deployment(namespace, deployment("risky", risky))
    apps.create_namespaced_deployment(namespace, deployment("hardened", pod_spec(PINNED, SAFE)))
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "0 1 * * *",
            "jobTemplate": {"spec": {"template": {"spec": {**pod_spec("busybox", {}), "restartPolicy": "Never"}}}},
        },
    }
    batch.create_namespaced_cron_job(namespace, cron)
    core.create_namespaced_pod(
        namespace, {"metadata": {"name": "loose"}, "spec": pod_spec("busybox:1.36", {"privileged": True})}
    )
    migrate = {**pod_spec("registry.bank.example/migrate:2.1", {"runAsUser": 0}), "restartPolicy": "Never"}
    batch.create_namespaced_job(
        namespace, {"metadata": {"name": "migrate"}, "spec": {"suspend": True, "template": {"spec": migrate}}}
    )
    labels = {"app": "legacy"}
    legacy = {
        "metadata": {"name": "legacy"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": pod_spec(PINNED, {**SAFE, "allowPrivilegeEscalation": True, "privileged": True}),
            },
        },
    }
    apps.create_namespaced_replica_set(namespace, legacy)
    made = "app in (risky, legacy)"
    assert wait_for(lambda: len(core.list_namespaced_pod(namespace, label_selector=made).items) == 3, 60)
    full_resync(
        registered_cluster, [BY_KIND[k] for k in ("Deployment", "CronJob", "Job", "Pod", "StatefulSet", "DaemonSet")]
    )
    ctx = clustera_context(namespace=namespace)

    results = {c: runner.run_one(ctx, CATALOGUE[c], registered_cluster) for c in CHECKS}

    failing = {c: {f.subject for f in r.findings} for c, r in results.items()}
    risky_subject, hardened = f"Deployment {namespace}/risky", f"Deployment {namespace}/hardened"
    for check_id in CHECKS:
        assert risky_subject in failing[check_id], check_id
        assert hardened not in failing[check_id], check_id
    assert failing["security.images.latest"] == {risky_subject, f"CronJob {namespace}/nightly"}
    # A bare pod and a bare ReplicaSet are named as they are, once (two pods); the Deployment's pods are not judged
    # again, nor the Job its CronJob would make; a Job of its own is judged.
    assert failing["security.containers.privileged"] == {
        risky_subject,
        f"Pod {namespace}/loose",
        f"ReplicaSet {namespace}/legacy",
    }
    assert failing["security.containers.root"] == {
        risky_subject,
        f"CronJob {namespace}/nightly",
        f"Pod {namespace}/loose",
        f"Job {namespace}/migrate",
    }
    capabilities = next(f for f in results["security.containers.capabilities"].findings if f.subject == risky_subject)
    assert capabilities.facts["items"] == ["app (SYS_ADMIN)"]  # NET_BIND_SERVICE is not a dangerous one
    host = next(f for f in results["security.pods.host_path"].findings if f.subject == risky_subject)
    assert host.facts["items"] == ["docker (/var/run/docker.sock)"] and host.namespace == namespace
    # The risky workload hardened: every check passes for it.
    apps.replace_namespaced_deployment("risky", namespace, deployment("risky", pod_spec(PINNED, SAFE)))
    batch.delete_namespaced_cron_job("nightly", namespace)
    batch.delete_namespaced_job("migrate", namespace, propagation_policy="Background")
    apps.delete_namespaced_replica_set("legacy", namespace, propagation_policy="Background")
    core.delete_namespaced_pod("loose", namespace, grace_period_seconds=0)
    assert wait_for(lambda: not core.list_namespaced_pod(namespace, label_selector="app=legacy").items, 60)
    full_resync(registered_cluster, [BY_KIND[k] for k in ("Deployment", "CronJob", "Job", "Pod")])
    ctx = clustera_context(namespace=namespace)
    after = {c: runner.run_one(ctx, CATALOGUE[c], registered_cluster) for c in CHECKS}
    assert {c: r.status for c, r in after.items()} == dict.fromkeys(CHECKS, "passed")
