"""The inventory sync against the real sandbox: first list, live changes, and faults that must not lose deletes."""

import base64
import threading
import time
import uuid

import pytest
from kubernetes import client

from apps.clusters.inventory.sync import SyncProcess, full_resync, lease_name, wait_until_listed
from apps.clusters.kinds import BY_KIND
from apps.clusters.models import Resource, SyncState
from apps.core import leases
from tests.clusters.sandbox_faults import compact_etcd, restart_apiserver
from tests.helpers import wait_for

pytestmark = [pytest.mark.sandbox, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
KIND_NAMES = ["Namespace", "Node", "ConfigMap", "Deployment", "Pod", "Secret"]


@pytest.fixture
def running_sync(inventory_sync):
    return inventory_sync(KIND_NAMES)


def rows(cluster, kind, namespace=None) -> set[str]:
    qs = Resource.objects.filter(cluster=cluster, kind=kind)
    if namespace:
        qs = qs.filter(namespace=namespace)
    return set(qs.values_list("name", flat=True))


def live(sandbox, kind, namespace) -> set[str]:
    core = client.CoreV1Api(sandbox.api_client)
    items = {
        "ConfigMap": lambda: core.list_namespaced_config_map(namespace).items,
        "Pod": lambda: core.list_namespaced_pod(namespace).items,
        "Secret": lambda: core.list_namespaced_secret(namespace).items,
    }[kind]()
    return {i.metadata.name for i in items}


def config_map(name, value="1"):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"app": "sync-test"}), data={"v": value})


def test_first_list_equals_the_cluster_and_secrets_keep_no_data(sandbox, registered_cluster, namespace, running_sync):
    core = client.CoreV1Api(sandbox.api_client)
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="db"), string_data={"password": "hunter2-secret"})
    )
    assert wait_for(lambda: "db" in rows(registered_cluster, "Secret", namespace))

    nodes = {n.metadata.name for n in core.list_node().items}
    assert rows(registered_cluster, "Node") == nodes
    secret = Resource.objects.get(cluster=registered_cluster, kind="Secret", namespace=namespace, name="db")
    stored = str(secret.object)
    # The API server returns the data base64-encoded: look for that form as well as the plaintext.
    assert "hunter2" not in stored and base64.b64encode(b"hunter2-secret").decode() not in stored
    assert "aHVudGVyM" not in stored
    assert "data" not in secret.object and "stringData" not in secret.object
    assert secret.object["keys"] == ["password"]
    state = SyncState.objects.get(cluster=registered_cluster, kind="Pod")
    assert state.state == SyncState.State.WATCHING and state.listed_at is not None


def test_changes_reach_the_rows_within_two_seconds(sandbox, registered_cluster, namespace, running_sync):
    core = client.CoreV1Api(sandbox.api_client)
    started = time.monotonic()
    core.create_namespaced_config_map(namespace, config_map("fresh"))
    assert wait_for(lambda: "fresh" in rows(registered_cluster, "ConfigMap", namespace), timeout=2)
    assert time.monotonic() - started < 2

    core.patch_namespaced_config_map("fresh", namespace, {"metadata": {"labels": {"tier": "gold"}}})
    assert wait_for(
        lambda: (
            Resource.objects.get(
                cluster=registered_cluster, kind="ConfigMap", namespace=namespace, name="fresh"
            ).labels.get("tier")
            == "gold"
        ),
        timeout=2,
    )
    core.delete_namespaced_config_map("fresh", namespace)
    assert wait_for(lambda: "fresh" not in rows(registered_cluster, "ConfigMap", namespace), timeout=2)


def test_deployment_rows_follow_a_rollout(sandbox, registered_cluster, namespace, running_sync):
    apps = client.AppsV1Api(sandbox.api_client)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.27")]),
                ),
            ),
        ),
    )
    assert wait_for(
        lambda: Resource.objects.filter(
            cluster=registered_cluster, kind="Deployment", namespace=namespace, name="web", status="Available"
        ).exists(),
        timeout=30,
    )
    pods = Resource.objects.filter(cluster=registered_cluster, kind="Pod", namespace=namespace)
    assert wait_for(lambda: pods.filter(status="Running").count() == 2, timeout=30)
    assert set(pods.values_list("owner_kind", flat=True)) == {"ReplicaSet"}


def test_deletes_missed_while_no_watch_ran_are_removed_after_compaction(sandbox, registered_cluster, namespace):
    """The sync stops, objects change and go, etcd compacts: the old watch position is 410 Gone, the relist repairs."""
    core = client.CoreV1Api(sandbox.api_client)
    for i in range(5):
        core.create_namespaced_config_map(namespace, config_map(f"cm-{i}"))
    kinds = [BY_KIND["ConfigMap"]]
    process = SyncProcess(kinds=kinds, metrics=False)
    stop = threading.Event()
    thread = threading.Thread(target=process.run_forever, args=(stop, 1), daemon=True)
    thread.start()
    assert wait_until_listed(registered_cluster, kinds)
    assert wait_for(lambda: rows(registered_cluster, "ConfigMap", namespace) == live(sandbox, "ConfigMap", namespace))
    old_version = SyncState.objects.get(cluster=registered_cluster, kind="ConfigMap").resource_version
    stop.set()
    thread.join(15)

    core.delete_namespaced_config_map("cm-0", namespace)
    core.delete_namespaced_config_map("cm-1", namespace)
    core.create_namespaced_config_map(namespace, config_map("cm-new"))
    compact_etcd(sandbox)

    restarted = SyncProcess(kinds=kinds, metrics=False)
    restarted.start()
    from apps.clusters.inventory.sync import KindSync

    # Its own watch under the cluster's lease, as the process would after taking it (the writer is fenced).
    tenure = leases.acquire(lease_name(registered_cluster.pk), restarted.holder)
    restarted.fencing.hold(registered_cluster.pk, tenure)
    watcher = KindSync(registered_cluster, kinds[0], restarted.writer, threading.Event(), tenure.token)
    watcher.resource_version = old_version  # resume where the stopped sync was: expired by the compaction
    watcher.start()
    try:
        assert wait_for(
            lambda: rows(registered_cluster, "ConfigMap", namespace) == live(sandbox, "ConfigMap", namespace),
            timeout=20,
        )
    finally:
        watcher.stopping.set()
        restarted.stop()
    assert {"cm-0", "cm-1"}.isdisjoint(rows(registered_cluster, "ConfigMap", namespace))
    assert "cm-new" in rows(registered_cluster, "ConfigMap", namespace)


def test_apiserver_down_keeps_rows_and_a_restart_ends_equal_to_a_fresh_list(
    sandbox, registered_cluster, namespace, running_sync
):
    """While the apiserver is away, rows stay (pages show their age) and the state says disconnected; after it
    returns (every watch dropped), the rows end equal to a fresh list. One restart for both: each costs a minute."""
    core = client.CoreV1Api(sandbox.api_client)
    for i in range(3):
        core.create_namespaced_config_map(namespace, config_map(f"keep-{i}"))
    assert wait_for(lambda: rows(registered_cluster, "ConfigMap", namespace) == live(sandbox, "ConfigMap", namespace))
    before = rows(registered_cluster, "ConfigMap", namespace)  # keep-0..2 and the namespace's kube-root-ca.crt
    seen_while_down = {}

    def look():
        seen_while_down["rows"] = rows(registered_cluster, "ConfigMap", namespace)
        wait_for(
            lambda: SyncState.objects.filter(
                cluster=registered_cluster, kind="ConfigMap", state=SyncState.State.DISCONNECTED
            ).exists(),
            timeout=30,
        )
        seen_while_down["state"] = SyncState.State.DISCONNECTED

    restart_apiserver(sandbox, down_seconds=4, while_down=look)
    assert seen_while_down == {"rows": before, "state": SyncState.State.DISCONNECTED}
    assert {"keep-0", "keep-1", "keep-2"} <= before
    core = client.CoreV1Api(sandbox.new_admin_client())
    core.delete_namespaced_config_map("keep-0", namespace)
    core.create_namespaced_config_map(namespace, config_map("after-restart"))

    assert wait_for(
        lambda: rows(registered_cluster, "ConfigMap", namespace) == live(sandbox, "ConfigMap", namespace), timeout=120
    )
    assert "keep-0" not in rows(registered_cluster, "ConfigMap", namespace)


def test_full_resync_repairs_rows_without_a_running_sync(sandbox, registered_cluster, namespace):
    core = client.CoreV1Api(sandbox.api_client)
    core.create_namespaced_config_map(namespace, config_map("listed"))
    Resource.objects.create(
        cluster=registered_cluster,
        kind="ConfigMap",
        namespace=namespace,
        name="ghost",
        uid=uuid.uuid4(),
        resource_version="1",
        object={},
    )
    full_resync(registered_cluster, kinds=[BY_KIND["ConfigMap"]])
    assert rows(registered_cluster, "ConfigMap", namespace) == live(sandbox, "ConfigMap", namespace)
