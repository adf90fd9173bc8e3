"""Automatic canary steps against the real sandbox and a real Prometheus scraping metrics the test sets.

Each check is run by the beat task's function (analysis.analyse_due) after the test makes the canary due, so
the test does not wait out the interval; the schedule itself is checked separately.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from kubernetes.client.exceptions import ApiException

from apps.core import deferred
from apps.core.deferred import render as R
from apps.core.models import AuditEvent
from apps.releases import analysis
from apps.releases.models import Canary, CanaryCheck, CanaryStep, Revision
from tests.helpers import bind, login, wait_for
from tests.releases.helpers import (
    CANARY,
    NAME,
    NEW,
    OLD,
    canary_leftovers,
    check_now,
    deployments,
    live_route,
    weights,
)

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]
QUERY = 'max(app_error_ratio{namespace="$namespace",service="$canary"})'


@pytest.fixture
def watched(deployed, metrics, team, admin_user):
    """The deployed release on a cluster whose Prometheus URL is the test's Prometheus; its owner also sees the
    whole cluster (viewer), so may write a query of their own."""
    cluster = deployed.project.cluster
    cluster.prometheus_url = metrics.url
    cluster.save(update_fields=["prometheus_url"])
    bind(admin_user, cluster, team["user"], "viewer")
    return deployed


def report(metrics, release, value: float | None) -> None:
    """The canary's error ratio as the app would export it (None: the app reports nothing)."""
    labels = {"namespace": release.namespace, "service": CANARY}
    if value is None:
        metrics.exporter.remove("app_error_ratio", labels)
    else:
        metrics.exporter.set("app_error_ratio", labels, value)
    metrics.wait_for(analysis.expand(QUERY, release), value)


def start_automatic(client, release, **overrides):
    data = {
        "image": NEW,
        "replicas": 1,
        "mode": "weight",
        "weight": 10,
        "automatic": "on",
        "analysis_preset": "custom",
        "analysis_query": QUERY,
        "analysis_max": "0.05",
        "analysis_interval": 30,
        "analysis_failure_limit": 2,
        **overrides,
    }
    return client.post(reverse("releases:canary_start", args=[release.pk]), data)


def test_passing_checks_step_10_25_50_100_then_promote_as_the_user(
    client, team, watched, metrics, sandbox, apps_api, core_api
):
    report(metrics, watched, 0.01)
    response = start_automatic(client, watched, auto_promote="on")
    assert response.status_code == 302
    canary = Canary.objects.get(release=watched)
    assert (canary.analysis, canary.weight, canary.analysis_by) == ("running", 10, team["user"])
    assert canary.next_check_at > timezone.now() + timedelta(seconds=25)
    assert analysis.analyse_due() == 0  # not due yet: nothing happens before the interval

    seen = []
    for expected in (25, 50, 100):
        canary = check_now(canary)
        route = weights(live_route(sandbox, team["namespace"]))
        seen.append((canary.weight, route))
        assert route == [(NAME, 100 - expected), (CANARY, expected)]
    assert [w for w, _route in seen] == [25, 50, 100]

    canary = check_now(canary)

    assert canary.state == Canary.State.PROMOTED
    assert deployments(apps_api, team["namespace"]) == [(NAME, NEW)]
    assert weights(live_route(sandbox, team["namespace"])) == [(NAME, 1)]
    revision = Revision.objects.get(release=watched, number=2)
    assert (revision.actor, R(revision.note), revision.spec["image"]) == (
        team["user"],
        "canary promoted automatically",
        NEW,
    )
    steps = list(canary.steps.values_list("action", "weight", "automatic"))
    assert steps == [
        ("start", 10, False),
        ("step", 25, True),
        ("step", 50, True),
        ("step", 100, True),
        ("promote", 100, True),
    ]
    assert list(canary.checks.order_by("pk").values_list("outcome", "value")) == [("passed", 0.01)] * 4
    audited = AuditEvent.objects.filter(action__startswith="releases.canary.", actor_id=team["user"].pk)
    assert [e.detail.get("automatic", False) for e in audited.order_by("seq")] == [False, True, True, True, True]
    wait_for_no_leftovers(apps_api, core_api, team["namespace"])


def wait_for_no_leftovers(apps_api, core_api, namespace):
    assert wait_for(lambda: canary_leftovers(apps_api, core_api, namespace) == [], timeout=60)


def test_checks_above_the_limit_abort_after_the_failure_limit(
    client, team, watched, metrics, sandbox, apps_api, core_api
):
    report(metrics, watched, 0.01)
    start_automatic(client, watched)
    canary = Canary.objects.get(release=watched)
    canary = check_now(canary)
    assert canary.weight == 25

    report(metrics, watched, 0.3)
    canary = check_now(canary)

    assert (canary.state, canary.weight, canary.failures) == ("active", 25, 1)
    assert weights(live_route(sandbox, team["namespace"])) == [(NAME, 75), (CANARY, 25)]

    canary = check_now(canary)

    assert canary.state == Canary.State.ABORTED
    assert weights(live_route(sandbox, team["namespace"])) == [(NAME, 1)]
    assert deployments(apps_api, team["namespace"]) == [(NAME, OLD)]
    abort = canary.steps.get(action=CanaryStep.Action.ABORT)
    assert abort.automatic and abort.analysis_check.value == 0.3
    assert list(canary.checks.order_by("pk").values_list("outcome", flat=True)) == ["passed", "above", "above"]
    event = AuditEvent.objects.get(action="releases.canary.abort")
    assert (event.actor_id, event.detail["automatic"], event.detail["check"]) == (
        team["user"].pk,
        True,
        {"value": 0.3, "outcome": "above"},
    )
    wait_for_no_leftovers(apps_api, core_api, team["namespace"])


def test_no_data_and_an_unreachable_prometheus_count_as_failed_checks_and_never_step(
    client, team, watched, metrics, sandbox
):
    report(metrics, watched, None)
    start_automatic(client, watched, analysis_failure_limit=3)
    canary = Canary.objects.get(release=watched)

    canary = check_now(canary)
    cluster = watched.project.cluster
    cluster.prometheus_url = "http://127.0.0.1:9"
    cluster.save(update_fields=["prometheus_url"])
    canary = check_now(canary)

    assert (canary.state, canary.weight, canary.failures) == ("active", 10, 2)
    checks = list(canary.checks.order_by("pk").values_list("outcome", "detail"))
    assert [(outcome, deferred.in_installation_language(detail)) for outcome, detail in checks] == [
        ("no_data", ""),
        ("error", "Prometheus at http://127.0.0.1:9 could not be reached."),
    ]
    # Stored as a sentence to read later: a Chinese reader reads why the check failed in Chinese.
    assert deferred.is_deferred(checks[1][1])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    page = client.get(reverse("releases:release_detail", args=[watched.pk])).content.decode()
    assert "无法连接 http://127.0.0.1:9 上的 Prometheus。" in page
    assert "could not be reached" not in page and deferred.MARK not in page
    assert weights(live_route(sandbox, team["namespace"])) == [(NAME, 90), (CANARY, 10)]


def test_a_user_who_lost_the_right_pauses_the_automatic_steps(client, team, watched, metrics, sandbox):
    report(metrics, watched, 0.01)
    start_automatic(client, watched)
    canary = Canary.objects.get(release=watched)
    team["user"].is_active = False
    team["user"].save(update_fields=["is_active"])

    canary = check_now(canary)

    assert (canary.state, canary.analysis, canary.weight) == ("active", "paused", 10)
    assert not canary.checks.exists()
    pause = canary.steps.get(action=CanaryStep.Action.PAUSE)
    assert pause.automatic
    assert R(pause.note) == f"{team['user'].username} may no longer release canaries in {team['namespace']}."
    assert weights(live_route(sandbox, team["namespace"])) == [(NAME, 90), (CANARY, 10)]


def test_pause_stops_the_steps_and_resume_acts_as_the_person_who_resumed(client, team, watched, metrics, sandbox):
    report(metrics, watched, 0.01)
    start_automatic(client, watched)
    canary = Canary.objects.get(release=watched)

    client.post(reverse("releases:canary_pause", args=[watched.pk]))
    canary.refresh_from_db()
    assert (canary.analysis, canary.next_check_at) == ("paused", None)
    Canary.objects.filter(pk=canary.pk).update(next_check_at=timezone.now() - timedelta(seconds=1))
    analysis.analyse_due()
    canary.refresh_from_db()

    assert (canary.analysis, canary.weight) == ("paused", 10)
    assert not canary.checks.exists()
    page = client.get(reverse("releases:release_detail", args=[watched.pk])).content.decode()
    assert 'data-testid="analysis-resume"' in page

    client.post(reverse("releases:canary_resume", args=[watched.pk]))
    canary = check_now(canary)

    assert (canary.analysis, canary.weight) == ("running", 25)
    actions = list(canary.steps.values_list("action", flat=True))
    assert actions == ["start", "pause", "resume", "step"]
    assert AuditEvent.objects.filter(action="releases.canary.analysis").count() == 2


def test_waiting_at_100_percent_for_a_person_without_auto_promote(client, team, watched, metrics, sandbox, apps_api):
    report(metrics, watched, 0.0)
    start_automatic(client, watched, weight=50)
    canary = Canary.objects.get(release=watched)

    canary = check_now(canary)
    canary = check_now(canary)

    assert (canary.state, canary.weight, canary.analysis) == ("active", 100, "waiting")
    assert sorted(deployments(apps_api, team["namespace"])) == [(NAME, OLD), (CANARY, NEW)]
    page = client.get(reverse("releases:release_detail", args=[watched.pk])).content.decode()
    assert "At 100 %, waiting for a person to promote" in page


def test_the_form_refuses_a_query_prometheus_cannot_parse_and_starts_nothing(client, team, watched, apps_api):
    response = start_automatic(client, watched, analysis_query="sum(rate(app_errors[1m])")

    assert response.status_code == 200
    assert "refused the query" in response.content.decode()
    assert "parse error" in response.content.decode()
    assert not Canary.objects.exists()
    assert deployments(apps_api, team["namespace"]) == [(NAME, OLD)]


def test_the_form_refuses_automatic_steps_for_header_mode_and_without_prometheus(client, team, deployed, apps_api):
    without = start_automatic(client, deployed)
    header = start_automatic(client, deployed, mode="header")

    assert "has no Prometheus URL: an administrator sets it on the cluster&#x27;s page first." in (
        without.content.decode()
    )
    assert "Automatic steps change a share of traffic: choose a grey release." in header.content.decode()
    assert not Canary.objects.exists()
    assert deployments(apps_api, team["namespace"]) == [(NAME, OLD)]


def test_a_project_user_gets_only_the_ready_made_checks_about_their_own_release(client, team, deployed, metrics):
    cluster = deployed.project.cluster
    cluster.prometheus_url = metrics.url
    cluster.save(update_fields=["prometheus_url"])

    page = client.get(reverse("releases:release_detail", args=[deployed.pk])).content.decode()
    own_query = start_automatic(client, deployed, analysis_query='max(app_error_ratio{namespace="other-team"})')

    assert 'data-testid="field-analysis_preset"' in page
    assert 'name="analysis_query"' not in page and 'value="custom"' not in page
    assert own_query.status_code == 200 and not Canary.objects.exists()  # "custom" is not among their choices

    preset = start_automatic(client, deployed, analysis_preset="latency_p99", analysis_query="sum(up)", analysis_max="")

    assert preset.status_code == 302
    canary = Canary.objects.get()
    assert (canary.analysis_query, canary.analysis_max) == (
        analysis.PRESETS["latency_p99"]["query"],
        analysis.PRESETS["latency_p99"]["max"],
    )


def test_the_ready_made_error_rate_check_is_used_when_no_query_is_written(client, team, watched):
    response = start_automatic(client, watched, analysis_preset="error_rate", analysis_query="", analysis_max="")

    assert response.status_code == 302
    canary = Canary.objects.get(release=watched)
    assert canary.analysis_query == analysis.PRESETS["error_rate"]["query"]
    assert canary.analysis_max == 0.01


def test_the_beat_schedule_runs_the_check_every_10_seconds():
    task = PeriodicTask.objects.get(task="releases.analyse_canaries")

    assert (task.enabled, task.interval.every, task.interval.period) == (True, 10, "seconds")
    assert analysis.analyse_canaries.apply().get() == 0
    assert not CanaryCheck.objects.exists()


def test_removing_a_release_during_automatic_steps_leaves_nothing_to_step(
    client, team, watched, metrics, sandbox, apps_api, core_api
):
    report(metrics, watched, 0.01)
    start_automatic(client, watched)
    canary = Canary.objects.get(release=watched)
    Canary.objects.filter(pk=canary.pk).update(next_check_at=timezone.now() - timedelta(seconds=1))
    login(client, team["user"], recent_auth=True)

    response = client.post(reverse("releases:release_delete", args=[watched.pk]))

    assert response.status_code == 302
    assert analysis.analyse_due() == 0
    assert analysis.check_canary(canary.pk) is None
    with pytest.raises(ApiException) as missing:
        live_route(sandbox, team["namespace"])
    assert missing.value.status == 404
    wait_for_no_leftovers(apps_api, core_api, team["namespace"])


def test_a_freeze_pauses_the_automatic_steps_and_keeps_the_share(client, team, watched, metrics, sandbox):
    from apps.compliance.models import ChangeWindow

    report(metrics, watched, 0.01)
    start_automatic(client, watched)
    canary = Canary.objects.get(release=watched)
    now = timezone.now()
    ChangeWindow.objects.create(
        name="Year-end freeze",
        kind=ChangeWindow.Kind.FREEZE,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=2),
        reason="year-end close",
    )

    canary = check_now(canary)

    assert (canary.state, canary.analysis, canary.weight) == ("active", "paused", 10)  # paused, not aborted
    assert not canary.checks.exists()
    note = R(canary.steps.get(action=CanaryStep.Action.PAUSE).note)
    assert note.startswith("Changes are frozen until") and "Year-end freeze: year-end close" in note
    assert weights(live_route(sandbox, team["namespace"])) == [(NAME, 90), (CANARY, 10)]


def test_an_automatic_promotion_under_four_eyes_approval_pauses_and_waits_as_a_change_request(
    client, team, watched, metrics, sandbox, apps_api
):
    from apps.compliance.models import ApprovalPolicy, ChangeRequest

    cluster = watched.project.cluster
    cluster.labels = {"env": "prod"}
    cluster.save(update_fields=["labels"])
    ApprovalPolicy.objects.create(
        name="Production promotions", cluster_labels={"env": "prod"}, actions=["releases.promote"]
    )
    report(metrics, watched, 0.01)
    start_automatic(client, watched, auto_promote="on", weight=100)
    canary = Canary.objects.get(release=watched)

    canary = check_now(canary)

    assert (canary.state, canary.analysis, canary.weight) == ("active", "paused", 100)  # not promoted, not aborted
    request = ChangeRequest.objects.get(action="releases.promote")
    assert request.status == ChangeRequest.Status.PENDING and request.maker == team["user"]
    note = R(canary.steps.get(action=CanaryStep.Action.PAUSE).note)
    assert f"change request #{request.pk}" in note
    assert deployments(apps_api, team["namespace"]) == sorted([(NAME, OLD), (CANARY, NEW)])
