"""How fresh each plan's newest good backup is against its recovery point objective, and the inspection's
``cluster.backups.fresh`` and ``cluster.etcd.backup`` checks reading Kubemate's own backups."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.backups import freshness
from apps.backups.models import Backup, Kind, Plan, Target
from apps.core import crypto
from apps.core.deferred import render
from apps.inspection import runner
from apps.inspection.catalogue import CATALOGUE
from apps.inspection.checks.context import Context
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster():
    return ClusterFactory()


@pytest.fixture
def plan(cluster):
    target = Target.objects.create(
        name="t",
        endpoint="http://127.0.0.1:9",
        bucket="b",
        access_key_encrypted=crypto.encrypt("a"),
        secret_key_encrypted=crypto.encrypt("s"),
    )
    return Plan.objects.create(kind=Kind.ETCD, name="etcd", cluster=cluster, target=target, rpo_hours=24)


def backup(plan, hours_ago: float, status=Backup.Status.SUCCEEDED, size=1000) -> Backup:
    when = timezone.now() - timedelta(hours=hours_ago)
    return Backup.objects.create(
        kind=plan.kind,
        plan=plan,
        cluster=plan.cluster,
        target=plan.target,
        name=f"b{hours_ago}",
        status=status,
        size_bytes=size,
        started_at=when,
        finished_at=when,
    )


def check(check_id, cluster):
    return runner.run_one(Context(), CATALOGUE[check_id], cluster)


def test_a_plan_is_fresh_within_its_recovery_point_and_stale_after(plan):
    backup(plan, 30, size=900)
    (fresh,) = freshness.of_plans([plan])
    assert fresh.stale and round(fresh.age_hours) == 30

    backup(plan, 2, status=Backup.Status.FAILED)
    backup(plan, 1, size=1100)
    (fresh,) = freshness.of_plans([plan])
    assert not fresh.stale
    assert fresh.trend == [900, 1100]
    assert fresh.failed_since == 0


def test_the_last_backups_of_every_plan_are_read_in_one_query(plan, cluster):
    database = Plan.objects.create(kind=Kind.DATABASE, name="db", target=plan.target, rpo_hours=24)
    backup(plan, 30, size=900)
    backup(plan, 2, status=Backup.Status.FAILED)
    backup(database, 1, size=500)

    with CaptureQueriesContext(connection) as queries:
        etcd, db = freshness.of_plans([plan, database])

    assert len(queries) == 1
    assert (etcd.plan, etcd.trend, etcd.failed_since, etcd.stale) == (plan, [900], 1, True)
    assert (db.plan, db.trend, db.failed_since, db.stale) == (database, [500], 0, False)


def test_the_inspection_finds_a_plan_past_its_recovery_point(plan, cluster):
    backup(plan, 30)
    backup(plan, 3, status=Backup.Status.FAILED)

    result = check("cluster.backups.fresh", cluster)

    (finding,) = result.findings
    assert finding.subject == "plan etcd"
    assert "30 hours old" in render(finding.message)
    assert finding.facts["failed_since"] == 1
    backup(plan, 1)
    assert check("cluster.backups.fresh", cluster).status == "passed"


def test_a_cluster_without_plans_is_not_checked(cluster):
    assert check("cluster.backups.fresh", cluster).status == "not_checked"


def test_the_etcd_check_reads_kubemates_snapshots_when_a_plan_exists(plan, cluster):
    (never,) = check("cluster.etcd.backup", cluster).findings
    assert "has succeeded yet" in render(never.message)
    backup(plan, 2)
    assert check("cluster.etcd.backup", cluster).status == "passed"
