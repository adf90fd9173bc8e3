"""How fresh each plan's newest good backup is against its recovery point objective (apps/backups/freshness.py); the
inspection's checks that read it are tested in tests/inspection/test_checks_backups.py."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.backups import freshness
from apps.backups.models import Backup, Kind, Plan
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
