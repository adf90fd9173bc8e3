"""One worker process that also runs beat and the inventory sync (KUBEMATE_WORKER_BEAT / KUBEMATE_WORKER_SYNC)."""

import threading
import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from apps.accounts.models import Project
from apps.clusters.models import SyncState
from apps.core.models import Lease
from apps.releases import render
from apps.releases.models import Canary, CanaryCheck, Release
from kubemate.celery import app
from tests.helpers import wait_for
from tests.releases.helpers import member

pytestmark = [pytest.mark.sandbox, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_worker_runs_the_schedule_and_the_sync_in_threads_when_told(settings, registered_cluster):
    # A canary whose automatic check is due: only beat (every 10 s) sends the task that records a check.
    registered_cluster.prometheus_url = "http://127.0.0.1:9"
    registered_cluster.save(update_fields=["prometheus_url"])
    project = Project.objects.create(cluster=registered_cluster, slug="pay", name="Payments", namespaces=["pay"])
    spec = {**render.default_spec(), "image": "registry.bank.example/payments-api:1.0.0"}
    release = Release.objects.create(project=project, namespace="pay", name="payments-api", spec=spec)
    canary = Canary.objects.create(
        release=release,
        spec=release.spec,
        analysis=Canary.Analysis.RUNNING,
        analysis_query="vector(0)",
        analysis_max=0.1,
        analysis_failure_limit=5,
        analysis_by=member(release, "project-owner"),
        next_check_at=timezone.now() - timedelta(seconds=1),
    )
    settings.KUBEMATE_WORKER_BEAT = True
    settings.KUBEMATE_WORKER_SYNC = True

    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"):
        # Beat starts once this worker holds the beat lease (its first round: nobody else holds it).
        beating = wait_for(lambda: "Beat" in {thread.name for thread in threading.enumerate()}, timeout=10)
        threads = {thread.name for thread in threading.enumerate()}
        beat_lease = Lease.objects.filter(name="beat", holder__startswith="beat@").exists()
        checked = wait_for(lambda: CanaryCheck.objects.filter(canary=canary).exists(), timeout=60)
        listed = wait_for(
            lambda: SyncState.objects.filter(cluster=registered_cluster, listed_at__isnull=False).count() >= 20,
            timeout=60,
        )

    assert beating and {"Beat", "BeatLease", "kubemate-inventory-sync"} <= threads
    assert beat_lease, "the beating worker holds the beat lease"
    assert Lease.objects.get(name="beat").holder == ""  # given up when the worker stopped
    assert checked, "beat inside the worker did not send the automatic check"
    assert CanaryCheck.objects.get(canary=canary).outcome == CanaryCheck.Outcome.ERROR
    assert listed, "the sync inside the worker did not list the registered cluster"
    assert registered_cluster.resources.filter(kind="Namespace", name="kube-system").exists()
    assert "Beat" not in {thread.name for thread in threading.enumerate()}  # stopped with the worker


def test_without_the_settings_the_worker_runs_neither(settings, registered_cluster):
    settings.KUBEMATE_WORKER_BEAT = False
    settings.KUBEMATE_WORKER_SYNC = False

    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, loglevel="WARNING"):
        time.sleep(3)
        threads = {thread.name for thread in threading.enumerate()}

    assert "Beat" not in threads and "kubemate-inventory-sync" not in threads
    assert not SyncState.objects.filter(cluster=registered_cluster).exists()
