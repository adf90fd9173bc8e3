"""The runner: one streamed pass per kind for object checks, every outcome kept, new / unchanged / fixed against the
previous run, not-checked outcomes never turn findings into "fixed", scores per domain, the findings cap.

The checks here are registered by the tests (ids ``test.``) so each outcome is chosen; the catalogue's own checks
have their tests beside them (test_checks_*.py)."""

from __future__ import annotations

import pytest

from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.inspection import runner
from apps.inspection.checks.base import CATALOGUE, CannotCheck, Check, Domain, Finding, ObjectCheck, Severity
from apps.inspection.checks.context import Context
from apps.inspection.models import Finding as FindingRow
from apps.inspection.models import Outcome, Run, Template
from tests.clusters.inventory_rows import build_bank, namespace
from tests.factories import ClusterFactory, UserFactory

pytestmark = pytest.mark.django_db

SAID = {"subjects": [], "cannot": False, "pods_seen": 0, "events_seen": 0}


def _sample(ctx, cluster):
    if SAID["cannot"]:
        raise CannotCheck(D(N_("No Prometheus is configured for cluster %(cluster)s."), cluster=cluster.name))
    for subject in SAID["subjects"]:
        yield Finding(subject=subject, message=D(N_("Found %(subject)s."), subject=subject), namespace="payments")


def _pods(ctx, row):
    SAID["pods_seen"] += 1
    if row.summary.get("waiting") == "CrashLoopBackOff" or "CrashLoopBackOff" in str(row.object):
        yield Finding(subject=row.key, message="crash", namespace=row.namespace)


def _pods_too(ctx, row):
    SAID["pods_seen"] += 1
    return ()


def _broken(ctx, row):
    raise RuntimeError("boom")


TEST_CHECKS = [
    Check("test.sample", Domain.CLUSTER, Severity.CRITICAL, "t", "w", "f", run=_sample),
    ObjectCheck("test.pods.crash", Domain.CLUSTER, Severity.WARNING, "t", "w", "f", kind="Pod", visit=_pods),
    ObjectCheck("test.pods.other", Domain.CLUSTER, Severity.INFO, "t", "w", "f", kind="Pod", visit=_pods_too),
    ObjectCheck("test.pods.broken", Domain.CLUSTER, Severity.INFO, "t", "w", "f", kind="Pod", visit=_broken),
]


@pytest.fixture(autouse=True)
def test_checks():
    for c in TEST_CHECKS:
        CATALOGUE[c.id] = c
    SAID.update(subjects=[], cannot=False, pods_seen=0)
    yield
    for c in TEST_CHECKS:
        CATALOGUE.pop(c.id, None)


def _run(template, cluster, user):
    run = Run.objects.create(template=template, actor=user)
    run.clusters.set([cluster])
    return runner.execute(run, lambda percent, message: None)


def _changes(run) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in FindingRow.objects.filter(run=run, check_id="test.sample"):
        found.setdefault(row.change, set()).add(row.subject)
    return found


def test_second_run_tells_new_unchanged_and_fixed():
    cluster = ClusterFactory()
    namespace(cluster, "payments")
    user = UserFactory(is_superuser=True)
    template = Template.objects.create(slug="t1", name="T", checks=["test.sample"])
    SAID["subjects"] = ["A", "B"]
    first = _run(template, cluster, user)
    assert _changes(first) == {"new": {"A", "B"}}
    assert first.scores == {"cluster": 0}
    SAID["subjects"] = ["B", "C"]
    second = _run(template, cluster, user)
    assert second.previous_id == first.pk
    assert _changes(second) == {"new": {"C"}, "unchanged": {"B"}, "fixed": {"A"}}
    assert second.counts["new"] == 1 and second.counts["fixed"] == 1 and second.counts["unchanged"] == 1
    SAID["subjects"] = []
    third = _run(template, cluster, user)
    assert _changes(third) == {"fixed": {"B", "C"}}
    assert third.scores == {"cluster": 100}


def test_a_check_that_could_not_look_fixes_nothing_and_does_not_count_in_the_score():
    cluster = ClusterFactory()
    namespace(cluster, "payments")
    user = UserFactory(is_superuser=True)
    template = Template.objects.create(slug="t2", name="T", checks=["test.sample"])
    SAID["subjects"] = ["A"]
    _run(template, cluster, user)
    SAID["cannot"] = True
    second = _run(template, cluster, user)
    outcome = Outcome.objects.get(run=second, check_id="test.sample")
    assert outcome.status == Outcome.Status.NOT_CHECKED
    assert "No Prometheus" in outcome.reason
    assert not FindingRow.objects.filter(run=second).exists()
    assert second.scores == {}


def test_object_checks_of_a_kind_share_one_pass_and_a_broken_one_stops_alone():
    cluster = build_bank()["cluster"]
    user = UserFactory(is_superuser=True)
    template = Template.objects.create(slug="t3", name="T", checks=["test.pods."])
    run = _run(template, cluster, user)
    pods = cluster.resources.filter(kind="Pod").count()
    assert pods >= 3
    assert SAID["pods_seen"] == 2 * pods  # two working checks, each saw each pod once
    outcomes = {o.check_id: o for o in Outcome.objects.filter(run=run)}
    assert outcomes["test.pods.crash"].status == Outcome.Status.FAILED
    assert outcomes["test.pods.crash"].found == 1
    assert outcomes["test.pods.other"].status == Outcome.Status.PASSED
    assert outcomes["test.pods.broken"].status == Outcome.Status.NOT_CHECKED
    assert "RuntimeError" in outcomes["test.pods.broken"].reason
    crash = FindingRow.objects.get(run=run, check_id="test.pods.crash")
    assert crash.subject == "Pod lending/loan-api-55d-x" and crash.namespace == "lending"


def test_a_cluster_never_synced_is_not_checked_with_the_reason():
    cluster = ClusterFactory()
    user = UserFactory(is_superuser=True)
    template = Template.objects.create(slug="t4", name="T", checks=["test.sample"])
    SAID["subjects"] = ["A"]
    run = _run(template, cluster, user)
    outcome = Outcome.objects.get(run=run)
    assert outcome.status == Outcome.Status.NOT_CHECKED
    assert "has not been read yet" in outcome.reason


def test_findings_kept_are_capped_and_the_outcome_keeps_the_count():
    cluster = ClusterFactory()
    namespace(cluster, "payments")
    user = UserFactory(is_superuser=True)
    template = Template.objects.create(slug="t5", name="T", checks=["test.sample"])
    SAID["subjects"] = [f"s{i}" for i in range(runner.MAX_FINDINGS + 50)]
    run = _run(template, cluster, user)
    assert FindingRow.objects.filter(run=run).count() == runner.MAX_FINDINGS
    assert Outcome.objects.get(run=run).found == runner.MAX_FINDINGS + 50


def test_scores_weigh_severities():
    scores = runner.scores_of(
        [
            ("cluster", "critical", "passed"),
            ("cluster", "warning", "failed"),
            ("cluster", "info", "not_checked"),
            ("hosts", "info", "failed"),
        ]
    )
    assert scores == {"cluster": round(100 * 5 / 7), "hosts": 0}


def test_thresholds_of_the_template_override_the_defaults():
    ctx = Context(thresholds={"pvc.full_percent": 70})
    assert ctx.threshold("pvc.full_percent") == 70
    assert ctx.threshold("pod.restart_count") == 5
    assert ctx.threshold("unknown.one", 3) == 3
    with pytest.raises(KeyError):
        ctx.threshold("unknown.two")


def test_expand_takes_ids_and_prefixes():
    chosen = {c.id for c in runner.expand(["test.pods.", "test.sample", "no.such"])}
    assert chosen == {"test.pods.crash", "test.pods.other", "test.pods.broken", "test.sample"}
