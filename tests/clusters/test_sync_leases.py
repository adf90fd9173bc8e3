"""Several sync processes: each cluster is watched by exactly one at a time (a lease in PostgreSQL), taken over
within 30 s when its holder dies, and a holder that was frozen and comes back cannot write (fencing).

The leases themselves first (apps/core/leases.py), then real ``manage.py inventory_sync`` processes on two
registered clusters. The two clusters are the session's sandbox registered twice, under two names: Kubemate
keeps a separate lease, rows and watches for each, which is what is tested; a second apiserver would only add a
minute of start-up. The seconds are printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection, transaction
from kubernetes import client as k8s

from apps.clusters.inventory.store import Fencing, Upsert, apply_ops
from apps.clusters.inventory.sync import LEASE_PREFIX, lease_name
from apps.clusters.models import Cluster, Resource
from apps.core import leases
from apps.core.models import Lease
from tests.helpers import create_namespace, delete_namespace, session_database_url, unique, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
REPO = Path(__file__).resolve().parents[2]


def configmap(name: str, namespace: str = "default") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
        },
        "data": {},
    }


def test_one_holder_at_a_time_and_the_next_takes_it_with_a_higher_token(settings):
    settings.KUBEMATE_LEASE_SECONDS = 1
    first = leases.acquire("work", "one")
    assert first is not None and first.token == 1
    assert leases.acquire("work", "two") is None  # held
    assert leases.renew(first)
    time.sleep(1.3)  # expired, not renewed
    second = leases.acquire("work", "two")
    assert second is not None and second.token == 2 and second.holder == "two"
    assert not leases.renew(first), "a holder whose lease was taken must learn it at its next renewal"
    assert leases.renew(second)
    leases.release(second)
    third = leases.acquire("work", "one")
    assert third is not None and third.token == 3
    # free_for: a lease released just now is left one round to others.
    leases.release(third)
    assert leases.acquire("work", "two", free_for=5) is None
    assert leases.acquire("work", "two") is not None


def test_a_stale_holders_writes_are_refused_and_a_taker_waits_for_the_holders_transaction(settings, registered_cluster):
    settings.KUBEMATE_LEASE_SECONDS = 1
    name = lease_name(registered_cluster.pk)
    old = leases.acquire(name, "old")
    lost: list = []
    fencing = Fencing(lost=lambda cluster_id, token: lost.append((cluster_id, token)))
    fencing.hold(registered_cluster.pk, old)
    ok = Upsert(registered_cluster.pk, "ConfigMap", configmap(unique("held")), token=old.token)
    apply_ops([ok], fencing)
    assert Resource.objects.filter(cluster=registered_cluster, name=ok.key[3]).exists()

    # A writer inside its fenced transaction holds the lease row: the taker waits for it (here: gives up after
    # its 2 s lock timeout and tries at its next round), so the old holder's batch commits whole before the take.
    time.sleep(1.2)
    inside, release_writer = threading.Event(), threading.Event()

    def writer():
        with transaction.atomic():
            assert fencing.admit([ok]) == [ok]
            inside.set()
            release_writer.wait(10)
        connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(10)
    started = time.monotonic()
    assert leases.acquire(name, "new") is None, "a taker must not take the lease under an open fenced write"
    waited = time.monotonic() - started
    release_writer.set()
    thread.join(10)
    assert 1.5 < waited < 5, waited
    new = leases.acquire(name, "new")
    assert new is not None and new.token == old.token + 1

    stale = Upsert(registered_cluster.pk, "ConfigMap", configmap(unique("stale")), token=old.token)
    apply_ops([stale], fencing)
    assert not Resource.objects.filter(cluster=registered_cluster, name=stale.key[3]).exists()
    assert fencing.refused == 1 and lost == [(registered_cluster.pk, old.token)]
    print(f"\ntaker waited {waited:.1f} s for the holder's open write (lock timeout 2 s)")


# --- Two real sync processes ---------------------------------------------------------------------------------


class SyncProcessRunner:
    """``manage.py inventory_sync`` in its own process on the test database; its JSON log in a file."""

    def __init__(self, tmp: Path, label: str):
        self.log = tmp / f"sync-{label}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "kubemate.settings.test",
            "DATABASE_URL": session_database_url(),
            "KUBEMATE_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(REPO),
        }
        command = [sys.executable, "manage.py", "inventory_sync", "--no-metrics"]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.pid = self.process.pid

    def holds(self) -> set[int]:
        """The cluster ids whose lease this process holds now."""
        marker = f":{self.pid}:"
        return {int(t.name[len(LEASE_PREFIX) :]) for t in leases.held(LEASE_PREFIX).values() if marker in t.holder}

    def lines(self) -> list[dict]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def two_clusters(registered_cluster):
    second = Cluster.objects.create(
        name="sandbox-again",
        api_server=registered_cluster.api_server,
        kubeconfig_encrypted=registered_cluster.kubeconfig_encrypted,
    )
    return [registered_cluster, second]


@pytest.fixture
def syncs(tmp_path):
    started: list[SyncProcessRunner] = []

    def start(label: str) -> SyncProcessRunner:
        started.append(SyncProcessRunner(tmp_path, label))
        return started[-1]

    yield start
    for runner in started:
        runner.stop()


def configmap_row(cluster: Cluster, namespace: str, name: str) -> bool:
    return Resource.objects.filter(cluster=cluster, kind="ConfigMap", namespace=namespace, name=name).exists()


def test_a_killed_holders_cluster_is_taken_over_within_30_s_and_a_frozen_one_cannot_write(sandbox, two_clusters, syncs):
    core = k8s.CoreV1Api(sandbox.api_client)
    namespace = unique("lease")
    create_namespace(sandbox, namespace)
    try:
        a = syncs("a")
        assert wait_for(lambda: a.holds() == {c.pk for c in two_clusters}, 30), "the first process takes both"
        b = syncs("b")
        # The second member is below its share: the first hands one cluster over, each then holds one.
        assert wait_for(lambda: len(a.holds()) == 1 and len(b.holds()) == 1, 40), (a.holds(), b.holds())
        for cluster in two_clusters:
            listed = wait_for(lambda c=cluster: c.resources.filter(kind="Namespace", name=namespace).exists(), 30)
            assert listed, f"{cluster.name} was not listed"

        # Kill the holder of the first cluster (SIGKILL: no release), change the cluster while nobody watches it.
        victim, survivor = (a, b) if two_clusters[0].pk in a.holds() else (b, a)
        watched = two_clusters[0]
        token_before = Lease.objects.get(name=lease_name(watched.pk)).token
        os.kill(victim.pid, signal.SIGKILL)
        died = time.monotonic()
        victim.process.wait(10)
        core.create_namespaced_config_map(namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="while-unwatched")))

        assert wait_for(lambda: watched.pk in survivor.holds(), 30), "nobody took the dead holder's cluster"
        taken = time.monotonic() - died
        assert wait_for(lambda: configmap_row(watched, namespace, "while-unwatched"), 30), "a change was missed"
        caught_up = time.monotonic() - died
        assert caught_up < 30, caught_up
        assert Lease.objects.get(name=lease_name(watched.pk)).token == token_before + 1
        print(
            f"\ntaken over {taken:.1f} s after the kill; the change made meanwhile in the rows after {caught_up:.1f} s"
        )

        # A third process joins and gets one cluster; then it is frozen (SIGSTOP) past its lease: the survivor
        # takes its cluster back, and when it thaws, its buffered events are refused and it stops that sync.
        c = syncs("c")
        assert wait_for(lambda: len(c.holds()) == 1 and len(survivor.holds()) == 1, 45), (c.holds(), survivor.holds())
        [frozen_cluster_id] = c.holds()
        frozen_cluster = Cluster.objects.get(pk=frozen_cluster_id)
        frozen_token = Lease.objects.get(name=lease_name(frozen_cluster_id)).token
        os.kill(c.pid, signal.SIGSTOP)
        try:
            assert wait_for(lambda: frozen_cluster_id in survivor.holds(), 30), "the frozen holder kept its cluster"
            core.create_namespaced_config_map(
                namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="while-frozen"))
            )
            assert wait_for(lambda: configmap_row(frozen_cluster, namespace, "while-frozen"), 30)
        finally:
            os.kill(c.pid, signal.SIGCONT)
        new_token = Lease.objects.get(name=lease_name(frozen_cluster_id)).token
        assert new_token == frozen_token + 1

        stopped = wait_for(
            lambda: [
                line
                for line in c.lines()
                if line.get("message") == "inventory sync stopped" and line.get("cluster_id") == frozen_cluster_id
            ],
            20,
        )
        assert stopped, "the thawed holder did not notice that it lost its lease"
        assert stopped[0]["why"] in ("another process took its lease", "its writes were refused")
        # From now on the thawed process is a new member below its share: it may get a cluster again, but only by
        # a hand-over, under a new token, never by writing under the frozen one.
        assert wait_for(lambda: len(c.holds()) == 1 and len(survivor.holds()) == 1, 30), "not balanced again"
        assert not (c.holds() & survivor.holds())
        tokens = {cid: Lease.objects.get(name=lease_name(cid)).token for cid in c.holds()}
        assert all(token > frozen_token for token in tokens.values()), tokens
        print(f"the frozen holder stopped ({stopped[0]['why']}); the clusters balanced again, tokens {tokens}")
    finally:
        delete_namespace(sandbox, namespace)
