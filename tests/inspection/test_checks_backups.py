"""The inspection's ``cluster.backups.fresh`` and ``cluster.etcd.backup`` checks reading Kubemate's own backups: each
plan's newest good backup against its recovery point objective (apps/backups/freshness.py)."""

from __future__ import annotations

import pytest

from apps.backups.models import Backup, Kind, Plan
from apps.core.deferred import render
from apps.inspection import runner
from apps.inspection.catalogue import CATALOGUE
from apps.inspection.checks.context import Context
from tests.backups.rows import backup_row, stored_target
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster():
    return ClusterFactory()


@pytest.fixture
def plan(cluster):
    return Plan.objects.create(kind=Kind.ETCD, name="etcd", cluster=cluster, target=stored_target(), rpo_hours=24)


backup = backup_row


def check(check_id, cluster):
    return runner.run_one(Context(), CATALOGUE[check_id], cluster)


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
