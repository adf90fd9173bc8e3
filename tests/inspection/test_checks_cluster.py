"""Cluster checks against real control planes: the API server's health, etcd, the scheduler's and controller-manager's
leases, node conditions and warning events.

The control-plane checks run against a second kube-apiserver started here from the sandbox's own binary and
certificates, storing its objects in the sandbox's etcd under a prefix of its own through a relay the test can cut:
etcd "going away" for that API server alone, while the shared sandbox keeps serving the other tests. It is
registered the way an operator registers a cluster, so the checks ask through Kubemate's own identity.

Node and event checks read the inventory of the shared sandbox, listed by the sync's full resync, through a context
that sees only the objects each test made (``clustera_context``).
"""

from __future__ import annotations

import base64
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kubernetes import client as k8s

from apps.clusters.inventory.store import Upsert, apply_ops
from apps.clusters.inventory.sync import full_resync
from apps.clusters.kinds import BY_KIND
from apps.clusters.registry.services import register_from_kubeconfig
from apps.core.deferred import render
from apps.inspection import runner
from apps.inspection.catalogue import CATALOGUE
from apps.inspection.checks.context import Context
from apps.inspection.models import Outcome
from tests.faults.proxy import Relay
from tests.helpers import create_namespace, delete_namespace, free_port, unique, wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]


def run(ctx, check_id, cluster):
    return runner.run_one(ctx, CATALOGUE[check_id], cluster)


def subjects(result) -> set[str]:
    return {f.subject for f in result.findings}


# A control plane of the test's own -----------------------------------------------------------------------------


@dataclass
class ControlPlane:
    server: str
    etcd: Relay
    process: subprocess.Popen

    def admin_kubeconfig(self, sandbox) -> str:
        return sandbox.kubeconfig.read_text().replace(sandbox.server, self.server)

    def admin_api(self, sandbox):
        api = sandbox.new_admin_client()
        api.configuration.host = self.server
        return api

    def readyz(self, sandbox) -> int:
        context = ssl.create_default_context(cafile=sandbox.ca_file)
        try:
            with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=5) as answer:  # noqa: S310
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0


def _etcd_range(prefix: str) -> dict:
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return {"key": base64.b64encode(prefix.encode()).decode(), "range_end": base64.b64encode(end.encode()).decode()}


@pytest.fixture(scope="module")
def clustera_control_plane(sandbox, tmp_path_factory):
    """A kube-apiserver with the sandbox's command line, another port, and etcd behind a relay under its own prefix."""
    pid = int((Path(sandbox.run_dir) / "pids" / "kube-apiserver").read_text().split()[0])
    argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")]
    etcd_host, etcd_port = sandbox.etcd_url.removeprefix("http://").rsplit(":", 1)
    relay = Relay(etcd_host, int(etcd_port))
    relay.up()
    port, prefix = free_port(), f"/{unique('clustera')}/"
    changed = {
        "--etcd-servers": f"http://127.0.0.1:{relay.port}",
        "--secure-port": str(port),
        "--cert-dir": str(tmp_path_factory.mktemp("apiserver-certs")),
    }
    args = [argv[0]] + [
        f"{a.split('=', 1)[0]}={changed[a.split('=', 1)[0]]}" if a.split("=", 1)[0] in changed else a for a in argv[1:]
    ]
    log = open(tmp_path_factory.mktemp("apiserver-log") / "kube-apiserver.log", "wb")  # noqa: SIM115 - the child's
    # Its etcd probes give up after 1 s, not 2 s: the test waits for them while etcd is away.
    probes = ["--etcd-healthcheck-timeout=1s", "--etcd-readycheck-timeout=1s"]
    process = subprocess.Popen(
        [*args, f"--etcd-prefix={prefix}", *probes], stdout=log, stderr=log, start_new_session=True
    )
    plane = ControlPlane(f"https://127.0.0.1:{port}", relay, process)
    try:
        assert wait_for(lambda: plane.readyz(sandbox) == 200, timeout=90), "the test's kube-apiserver did not start"
        yield plane
    finally:
        if relay.listener is None:
            relay.up()  # a server that reaches etcd shuts down at once
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        relay.down()
        log.close()
        sandbox.etcd("/v3/kv/deleterange", _etcd_range(prefix))


@pytest.fixture
def own_cluster(sandbox, clustera_control_plane):
    """The test's control plane, registered with administrator credentials: the checks use Kubemate's identity."""
    return register_from_kubeconfig(
        actor=None, name="clustera-cp", kubeconfig_text=clustera_control_plane.admin_kubeconfig(sandbox)
    )


CONTROL_PLANE = ("cluster.apiserver.ready", "cluster.apiserver.live", "cluster.etcd.health")


def test_a_healthy_api_server_passes_and_one_that_lost_etcd_fails_with_the_failed_entries(
    sandbox, clustera_control_plane, own_cluster
):
    healthy = {check_id: run(Context(), check_id, own_cluster) for check_id in CONTROL_PLANE}
    assert {k: r.status for k, r in healthy.items()} == dict.fromkeys(CONTROL_PLANE, Outcome.Status.PASSED)

    clustera_control_plane.etcd.down()
    try:
        # The API server notices at its next etcd health probe.
        assert wait_for(lambda: clustera_control_plane.readyz(sandbox) == 500, timeout=60)
        ctx = Context()
        broken = {check_id: run(ctx, check_id, own_cluster) for check_id in CONTROL_PLANE}
    finally:
        clustera_control_plane.etcd.up()

    assert {k: r.status for k, r in broken.items()} == dict.fromkeys(CONTROL_PLANE, Outcome.Status.FAILED)
    ready, live, etcd = (broken[k].findings[0] for k in CONTROL_PLANE)
    assert ready.subject == "apiserver /readyz" and ready.facts["status"] == 500
    assert {"etcd", "etcd-readiness"} <= set(ready.facts["failed"])
    assert live.subject == "apiserver /livez" and "etcd" in live.facts["failed"]
    assert etcd.subject == "etcd" and etcd.facts["failed"] == ["etcd", "etcd-readiness"]
    assert render(etcd.message) == "The API server of cluster clustera-cp cannot use etcd: etcd, etcd-readiness failed."
    assert wait_for(lambda: clustera_control_plane.readyz(sandbox) == 200, timeout=60)


def test_an_api_server_that_does_not_answer_is_a_finding_and_etcd_is_not_checked(own_cluster):
    kubeconfig = own_cluster.kubeconfig().replace(own_cluster.api_server, f"https://127.0.0.1:{free_port()}")
    own_cluster.set_kubeconfig(kubeconfig)
    own_cluster.save()
    ctx = Context()

    ready = run(ctx, "cluster.apiserver.ready", own_cluster)
    etcd = run(ctx, "cluster.etcd.health", own_cluster)

    assert ready.status == Outcome.Status.FAILED
    assert subjects(ready) == {"apiserver /readyz"}
    assert "does not answer Kubemate" in render(ready.findings[0].message)
    assert "refused" in ready.findings[0].facts["error"]
    assert etcd.status == Outcome.Status.NOT_CHECKED
    assert "does not answer" in render(etcd.reason)


def _lease(name: str, holder: str, renewed: datetime) -> dict:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }


def test_scheduler_and_controller_manager_are_judged_by_their_leases(sandbox, clustera_control_plane, own_cluster):
    leases = k8s.CoordinationV1Api(clustera_control_plane.admin_api(sandbox))
    checks = {
        "kube-scheduler": "cluster.scheduler.health",
        "kube-controller-manager": "cluster.controller_manager.health",
    }

    # Leader election off: no lease to read, and the checks say so rather than pass.
    none = {name: run(Context(), check_id, own_cluster) for name, check_id in checks.items()}
    assert {r.status for r in none.values()} == {Outcome.Status.NOT_CHECKED}
    assert "has no lease kube-system/kube-scheduler" in render(none["kube-scheduler"].reason)

    now = datetime.now(UTC)
    leases.create_namespaced_lease("kube-system", _lease("kube-scheduler", "cp-1_4f2a", now))
    leases.create_namespaced_lease(
        "kube-system", _lease("kube-controller-manager", "cp-2_9c1d", now - timedelta(minutes=10))
    )
    try:
        fresh, stale = (run(Context(), checks[name], own_cluster) for name in checks)
        assert fresh.status == Outcome.Status.PASSED
        assert stale.status == Outcome.Status.FAILED
        assert subjects(stale) == {"kube-controller-manager"}
        assert stale.findings[0].facts["holder"] == "cp-2_9c1d"
        assert 590 < stale.findings[0].facts["seconds"] < 700
        assert "has not renewed its lease for" in render(stale.findings[0].message)

        # Renewed two minutes ago is still healthy with a template's longer limit.
        patient = Context(thresholds={"controlplane.lease_seconds": 900})
        assert run(patient, checks["kube-controller-manager"], own_cluster).status == Outcome.Status.PASSED

        # A released lease (the leader stopped and no other took over) names no holder.
        leases.patch_namespaced_lease("kube-scheduler", "kube-system", {"spec": {"holderIdentity": None}})
        released = run(Context(), checks["kube-scheduler"], own_cluster)
        assert released.status == Outcome.Status.FAILED
        assert "none is leading" in render(released.findings[0].message)
    finally:
        for name in checks:
            leases.delete_namespaced_lease(name, "kube-system")


# Nodes ---------------------------------------------------------------------------------------------------------

NODE_CHECKS = (
    "cluster.nodes.not_ready",
    "cluster.nodes.memory_pressure",
    "cluster.nodes.disk_pressure",
    "cluster.nodes.pid_pressure",
    "cluster.nodes.network_unavailable",
    "cluster.nodes.cordoned",
)
TAINT = "clustera.kubemate.dev/test"


def node_manifest(name: str) -> dict:
    resources = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "type": "kwok"},
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        # No pod of another test lands here.
        "spec": {"taints": [{"key": TAINT, "value": "true", "effect": "NoSchedule"}]},
        "status": {"capacity": resources, "allocatable": resources},
    }


def conditions(**statuses: str) -> list[dict]:
    words = {
        "Ready": ("KubeletReady", "kubelet is posting ready status"),
        "MemoryPressure": ("KubeletHasInsufficientMemory", "memory.available 90Mi < 100Mi"),
        "DiskPressure": ("KubeletHasDiskPressure", "nodefs.available 4% < 10%"),
        "PIDPressure": ("KubeletHasInsufficientPID", "pid.available 900 < 1000"),
        "NetworkUnavailable": ("NoRouteCreated", "calico-node is not running"),
    }
    if statuses.get("Ready") == "False":
        words["Ready"] = ("KubeletNotReady", "container runtime is down")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        {"type": kind, "status": status, "reason": words[kind][0], "message": words[kind][1]}
        | {"lastHeartbeatTime": now, "lastTransitionTime": now}
        for kind, status in statuses.items()
    ]


def initialized(core, name: str) -> bool:
    node = core.read_node(name)
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def test_node_conditions_and_cordons_are_findings_of_their_node(sandbox, registered_cluster, clustera_context):
    core = k8s.CoreV1Api(sandbox.api_client)
    healthy, troubled, down = (unique(f"clustera-{word}") for word in ("ok", "bad", "down"))
    for name in (healthy, troubled, down):
        core.create_node(node_manifest(name))
    try:
        assert wait_for(lambda: all(initialized(core, n) for n in (healthy, troubled, down)), timeout=30)
        pressure = conditions(
            Ready="True", MemoryPressure="True", DiskPressure="True", PIDPressure="True", NetworkUnavailable="True"
        )
        core.patch_node_status(troubled, {"status": {"conditions": pressure}})
        core.patch_node(troubled, {"spec": {"unschedulable": True}})
        full_resync(registered_cluster, [BY_KIND["Node"]])
        # kwok plays every kubelet of the sandbox and makes a node that is not ready ready again within a second, so
        # the sandbox cannot hold one: the row is the API server's own answer to the status write, stored by the
        # sync's writer as the watch would have stored it for that second.
        answer = core.patch_node_status(down, {"status": {"conditions": conditions(Ready="False")}})
        stored = sandbox.api_client.sanitize_for_serialization(answer)
        apply_ops([Upsert(registered_cluster.pk, "Node", stored)])

        ctx = clustera_context(names={healthy, troubled, down})
        results = {check_id: run(ctx, check_id, registered_cluster) for check_id in NODE_CHECKS}

        assert {k: subjects(r) for k, r in results.items()} == {
            "cluster.nodes.not_ready": {f"Node {down}"},
            "cluster.nodes.memory_pressure": {f"Node {troubled}"},
            "cluster.nodes.disk_pressure": {f"Node {troubled}"},
            "cluster.nodes.pid_pressure": {f"Node {troubled}"},
            "cluster.nodes.network_unavailable": {f"Node {troubled}"},
            "cluster.nodes.cordoned": {f"Node {troubled}"},
        }
        assert {r.status for r in results.values()} == {Outcome.Status.FAILED}
        not_ready = results["cluster.nodes.not_ready"].findings[0]
        assert not_ready.facts["ready"] == "False" and not_ready.facts["reason"] == "KubeletNotReady"
        memory = results["cluster.nodes.memory_pressure"].findings[0]
        assert memory.facts["reason"] == "KubeletHasInsufficientMemory"
        assert "memory.available 90Mi < 100Mi" in render(memory.message)
        assert "calico-node is not running" in render(results["cluster.nodes.network_unavailable"].findings[0].message)

        only_healthy = clustera_context(names={healthy})
        passed = {check_id: run(only_healthy, check_id, registered_cluster).status for check_id in NODE_CHECKS}
        assert passed == dict.fromkeys(NODE_CHECKS, Outcome.Status.PASSED)
    finally:
        for name in (healthy, troubled, down):
            core.delete_node(name)


# Events --------------------------------------------------------------------------------------------------------


def event(namespace: str, name: str, reason: str, count: int, *, kind: str = "Warning", hours_ago: float = 0) -> dict:
    when = (datetime.now(UTC) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": unique(name), "namespace": namespace},
        "involvedObject": {"kind": "Pod", "name": name, "namespace": namespace, "apiVersion": "v1"},
        "reason": reason,
        "message": f"{reason} on {name}",
        "type": kind,
        "count": count,
        "firstTimestamp": when,
        "lastTimestamp": when,
        "source": {"component": "kubelet", "host": "node-000"},
    }


def test_warning_events_are_grouped_by_namespace_and_reason(sandbox, registered_cluster, clustera_context):
    core = k8s.CoreV1Api(sandbox.api_client)
    namespace = unique("clustera-ev")
    create_namespace(sandbox, namespace)
    try:
        for body in (
            event(namespace, "ledger-0", "FailedMount", 7, hours_ago=0.5),
            event(namespace, "ledger-1", "FailedMount", 6),
            event(namespace, "api-1", "BackOff", 3),
            event(namespace, "api-2", "Pulled", 40, kind="Normal"),
            event(namespace, "batch-1", "FailedScheduling", 50, hours_ago=30),
        ):
            core.create_namespaced_event(namespace, body)
        full_resync(registered_cluster, [BY_KIND["Event"]])

        found = run(clustera_context(namespace=namespace), "cluster.events.warnings", registered_cluster)

        assert found.status == Outcome.Status.FAILED
        assert subjects(found) == {f"Warning events {namespace}/FailedMount"}
        finding = found.findings[0]
        assert finding.namespace == namespace
        assert finding.facts["count"] == 13 and finding.facts["events"] == 2
        assert finding.facts["object"] == "Pod ledger-1"  # the latest of the two
        assert render(finding.message) == (
            f"13 warning events FailedMount in namespace {namespace}; the latest, on Pod ledger-1: "
            "FailedMount on ledger-1"
        )

        # 13 is not above 13; events older than the window are left out unless the window is widened.
        higher = clustera_context(namespace=namespace, thresholds={"events.warning_count": 13})
        assert run(higher, "cluster.events.warnings", registered_cluster).status == Outcome.Status.PASSED
        wider = clustera_context(namespace=namespace, thresholds={"events.window_hours": 48})
        assert subjects(run(wider, "cluster.events.warnings", registered_cluster)) == {
            f"Warning events {namespace}/FailedMount",
            f"Warning events {namespace}/FailedScheduling",
        }
    finally:
        delete_namespace(sandbox, namespace)
