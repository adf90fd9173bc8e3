"""The report of a run: new / unchanged / fixed findings ordered by severity then check with the catalogue's words,
counts, checks that could not look, the score trend; a project developer reads only their namespace's findings and
scores recomputed from them; the number of queries does not grow with the findings.

Runs are stored through runner.store with hand-made Results of checks registered here (ids ``test.report.``):
the catalogue's own checks are tested beside them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from apps.accounts.models import Project
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.inspection import runner
from apps.inspection.checks.base import CATALOGUE, Check, Domain, Finding, Severity
from apps.inspection.models import Outcome, Run, Template
from apps.inspection.reports import build
from tests.factories import ClusterFactory, UserFactory
from tests.helpers import grant

pytestmark = pytest.mark.django_db


def _none(ctx, target):
    return ()


PODS = Check(
    "test.report.pods",
    Domain.CLUSTER,
    Severity.CRITICAL,
    N_("Pods keep crashing"),
    N_("A crashing pod serves nobody."),
    N_("Read the pod's last log lines and fix what it says."),
    run=_none,
)
NODES = Check(
    "test.report.nodes",
    Domain.CLUSTER,
    Severity.WARNING,
    "Nodes are short of disk",
    "A full disk evicts pods.",
    "Free the disk.",
    run=_none,
)
APPS = Check("test.report.apps", Domain.APPS, Severity.INFO, "Apps log errors", "Errors.", "Fix them.", run=_none)
BLIND = Check("test.report.blind", Domain.APPS, Severity.WARNING, "Latency", "Slow.", "Speed up.", run=_none)
CHECKS = [PODS, NODES, APPS, BLIND]


@pytest.fixture(autouse=True)
def report_checks():
    for c in CHECKS:
        CATALOGUE[c.id] = c
    yield
    for c in CHECKS:
        CATALOGUE.pop(c.id, None)


def finding(subject: str, namespace: str = "", **kwargs) -> Finding:
    return Finding(
        subject=subject,
        message=D(N_("Found %(subject)s."), subject=subject),
        namespace=namespace,
        **kwargs,
    )


def result(check, cluster, findings=(), *, cannot: str = "") -> runner.Result:
    if cannot:
        return runner.Result(check, f"cluster:{cluster.name}", cluster.pk, Outcome.Status.NOT_CHECKED, reason=cannot)
    r = runner.Result(check, f"cluster:{cluster.name}", cluster.pk, Outcome.Status.PASSED)
    r.add(list(findings))
    r.status = Outcome.Status.FAILED if r.found else Outcome.Status.PASSED
    return r


def stored(template, cluster, actor, results) -> Run:
    run = Run.objects.create(template=template, actor=actor)
    run.clusters.set([cluster])
    runner.store(run, results)
    run.refresh_from_db()
    return run


def history(*, cluster=None, actor=None):
    """Two runs of one template on one cluster with projects payments and lending.

    First: pods A (payments) and B (lending), node N1 (cluster-wide), apps L (lending).
    Second: pods B and C (payments), node N1, apps passes, latency could not look.
    So the second run has C new, B and N1 unchanged, A and L fixed."""
    cluster = cluster or ClusterFactory(name="prod-sh")
    actor = actor or UserFactory(is_superuser=True)
    template = Template.objects.create(slug="report-test", name="Report test", checks=["test.report."])
    first = stored(
        template,
        cluster,
        actor,
        [
            result(
                PODS, cluster, [finding("Pod payments/api-a", "payments"), finding("Pod lending/loan-b", "lending")]
            ),
            result(NODES, cluster, [finding("node-1:/var")]),
            result(APPS, cluster, [finding("Deployment lending/loan", "lending")]),
            result(BLIND, cluster),
        ],
    )
    second = stored(
        template,
        cluster,
        actor,
        [
            result(
                PODS,
                cluster,
                [finding("Pod lending/loan-b", "lending"), finding("Pod payments/api-c", "payments")],
            ),
            result(NODES, cluster, [finding("node-1:/var")]),
            result(APPS, cluster),
            result(
                BLIND,
                cluster,
                cannot=D(N_("No Prometheus URL is set for this cluster.")),
            ),
        ],
    )
    return {"cluster": cluster, "actor": actor, "template": template, "first": first, "second": second}


def _subjects(report, change):
    return [(b.check_id, [i.subject for i in b.items]) for b in report.section[change].blocks]


def test_the_report_of_the_second_run_tells_new_unchanged_and_fixed_in_order_with_the_catalogues_words():
    h = history()
    report = build.build_report(h["second"], h["actor"])
    assert report.whole
    assert _subjects(report, "new") == [("test.report.pods", ["Pod payments/api-c"])]
    # Critical before warning: the pods block comes before the nodes block.
    assert _subjects(report, "unchanged") == [
        ("test.report.pods", ["Pod lending/loan-b"]),
        ("test.report.nodes", ["node-1:/var"]),
    ]
    assert _subjects(report, "fixed") == [
        ("test.report.pods", ["Pod payments/api-a"]),
        ("test.report.apps", ["Deployment lending/loan"]),
    ]
    block = report.section["new"].blocks[0]
    assert str(block.title) == "Pods keep crashing" and str(block.fix).startswith("Read the pod's last log")
    assert report.changes == {"new": 1, "unchanged": 2, "fixed": 2}
    assert report.severities == {"critical": 2, "warning": 1, "info": 0}
    assert report.outcomes == {"passed": 1, "failed": 2, "not_checked": 1}
    # Stored scores: cluster = pods (5) and nodes (2) failed -> 0; apps passed (1) -> 100; latency did not look.
    assert report.scores == {"cluster": 0, "apps": 100}
    # The first run's apps: the apps check failed (1), latency passed (2): 67.
    assert [(d.domain, d.score, d.previous) for d in report.domains] == [("cluster", 0, 0), ("apps", 100, 67)]
    assert [scores for _when, scores in report.trend] == [{"cluster": 0, "apps": 67}, {"cluster": 0, "apps": 100}]
    assert [(n.check_id, n.targets) for n in report.not_checked] == [("test.report.blind", ["cluster:prod-sh"])]
    with translation.override("en"):
        lines = build.summary_lines(report)
    assert lines[0] == "Scores: Cluster 0, Apps 100 (+33)."
    assert lines[1] == "1 new finding, 2 fixed, 2 unchanged."
    assert "1 check could not look" in lines[3]
    assert lines[4] == "[Critical] Pods keep crashing: Pod payments/api-c - Found Pod payments/api-c."


def test_a_project_developer_reads_only_their_namespaces_findings_and_scores_recomputed_from_them():
    h = history()
    payments = Project.objects.create(cluster=h["cluster"], slug="payments", name="Payments", namespaces=["payments"])
    dev = UserFactory()
    grant(dev, "developer", project=payments)
    report = build.build_report(h["second"], dev)
    assert not report.whole
    assert _subjects(report, "new") == [("test.report.pods", ["Pod payments/api-c"])]
    assert _subjects(report, "unchanged") == []  # loan-b is lending's; node-1 is cluster-wide
    assert _subjects(report, "fixed") == [("test.report.pods", ["Pod payments/api-a"])]
    assert report.changes == {"new": 1, "unchanged": 0, "fixed": 1}
    assert report.severities == {"critical": 1, "warning": 0, "info": 0}
    # Pods failed on what they see (5 of 7 lost); nodes' finding is hidden, and it looked: passed for them (2).
    assert report.scores == {"cluster": round(100 * 2 / 7), "apps": 100}
    # The first run, for them: the apps finding was lending's, so apps passed; the stored score said 67.
    assert [scores for _when, scores in report.trend] == [
        {"cluster": round(100 * 2 / 7), "apps": 100},
        {"cluster": round(100 * 2 / 7), "apps": 100},
    ]
    assert report.domains[1].delta == 0
    html = _body(report)
    assert "Pod payments/api-c" in html and "Pod lending/loan-b" not in html and "node-1:/var" not in html
    assert 'data-testid="report-partial"' in html


def test_someone_who_reads_no_inspection_in_the_cluster_sees_nothing_of_it():
    h = history()
    other = ClusterFactory(name="elsewhere")
    stranger = UserFactory()
    grant(stranger, "viewer", cluster=other)
    report = build.build_report(h["second"], stranger)
    assert report.changes == {"new": 0, "unchanged": 0, "fixed": 0}
    assert report.scores == {} and report.not_checked == [] and report.outcomes["failed"] == 0


def _body(report) -> str:
    return render_to_string("inspection/report/_body.html", {"report": report, "run": report.run})


def test_the_body_renders_sections_and_the_reason_in_the_readers_language():
    h = history()
    report = build.build_report(h["second"], h["actor"])
    with translation.override("en"):
        english = _body(report)
    assert english.count('data-testid="finding"') == 5
    assert "No Prometheus URL is set for this cluster." in english
    assert 'data-testid="score-trend"' in english  # two runs: the trend chart is drawn, as SVG
    with translation.override("zh-hans"):
        chinese = _body(report)
    assert "No Prometheus URL" not in chinese and "Prometheus" in chinese
    assert "prod-sh" in chinese


def test_queries_stay_bounded_and_findings_shown_are_capped_with_the_rest_counted():
    h = history()
    actor, cluster, template = h["actor"], h["cluster"], h["template"]
    with CaptureQueriesContext(connection) as small:
        build.build_report(h["second"], actor)
    many = [finding(f"Pod payments/p-{i:03}", "payments") for i in range(150)]
    big = stored(template, cluster, actor, [result(PODS, cluster, many), result(NODES, cluster, [finding("n")])])
    with CaptureQueriesContext(connection) as large:
        report = build.build_report(big, actor, limit=100)
    assert len(large) <= len(small) + 1  # the fixed section has rows to fetch in the big run
    assert len(large) <= 12
    new = report.section["new"]
    assert new.total == 151 and new.shown == 100 and new.more == 51
    assert report.section["fixed"].shown == 0 and report.section["fixed"].more == report.changes["fixed"]
