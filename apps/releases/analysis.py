"""Automatic canary steps gated on a Prometheus query.

A grey release started with automatic steps (canaries.start_canary(analysis=...))
is checked every ``analysis_interval`` seconds by the beat task
``releases.analyse_canaries`` (every 10 s, it picks the canaries whose
``next_check_at`` has come). A check runs the canary's PromQL query against the
cluster's Prometheus, with ``$namespace``, ``$release``, ``$stable`` and
``$canary`` replaced, and judges the highest value of the answer:

- at or below ``analysis_max``: the share moves to the next step of
  canaries.STEPS; a passing check at 100 % promotes the canary when
  ``auto_promote`` is set, otherwise the canary waits at 100 % for a person;
- above the limit, no data, or no answer: a failed check; after
  ``analysis_failure_limit`` failed checks in a row the canary is aborted (all
  traffic back to the stable version, canary removed).

Every step acts as ``analysis_by`` (the user who started or resumed the
automatic steps) through the same functions as the buttons, so it is
authorized by the cluster, audited (detail ``automatic: true`` with the check)
and recorded as a CanaryStep. When that user may no longer release canaries,
or the cluster refuses a step, the automatic steps pause with the reason and a
person decides. Every check is kept as a CanaryCheck for the page.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from string import Template

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.accounts import access
from apps.accounts.capabilities import RELEASES_CANARY
from apps.core import gates
from apps.core.deferred import N_, fit, sentence_of
from apps.core.deferred import text as D
from apps.core.locks import LockBusy, redis_lock
from apps.observability import endpoints, prometheus
from apps.releases import canaries, render, services
from apps.releases.models import Canary, CanaryCheck, CanaryStep

log = logging.getLogger(__name__)

# Ready-made checks for apps that export the usual HTTP metrics; the query can be written by hand instead.
PRESETS = {
    "error_rate": {
        "label": gettext_lazy("Error rate of the canary (share of 5xx responses)"),
        "query": (
            'sum(rate(http_requests_total{namespace="$namespace",service="$canary",code=~"5.."}[1m]))'
            ' / sum(rate(http_requests_total{namespace="$namespace",service="$canary"}[1m]))'
        ),
        "max": 0.01,
    },
    "latency_p99": {
        "label": gettext_lazy("99th percentile latency of the canary (seconds)"),
        "query": (
            "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket"
            '{namespace="$namespace",service="$canary"}[1m])))'
        ),
        "max": 0.5,
    },
}
LOCK_WAIT = 30  # seconds a person's action waits for a running check of the same canary
# A check is due a little early rather than one beat tick (10 s) late: the previous check scheduled it from the
# moment it ran, a few milliseconds after its own tick.
GRACE = timedelta(seconds=2)


def expand(query: str, release) -> str:
    """The query with the release's names put in for $namespace, $release, $stable and $canary."""
    names = {
        "namespace": release.namespace,
        "release": release.name,
        "stable": release.name,
        "canary": render.canary_name(release.name),
    }
    return Template(query).safe_substitute(names)


def try_query(cluster, query: str, release) -> None:
    """Run the query once before a canary starts; raise PrometheusError when Prometheus refuses it or is away.

    No data is fine here: the canary the query is about does not run yet.
    """
    with contextlib.suppress(prometheus.NoData):
        prometheus.worst_value(endpoints.prometheus(cluster), expand(query, release))


@contextlib.contextmanager
def exclusive(canary: Canary):
    """Hold the lock an automatic check holds, for a person's action on the canary; the canary is re-read inside.

    Without it a check that began before a person aborted could still step the route of the removed canary.
    """
    try:
        with redis_lock(f"canary-analysis-{canary.pk}", timeout=300, wait=LOCK_WAIT):
            canary.refresh_from_db()
            yield canary
    except LockBusy:
        raise canaries.CanaryError(
            _("An automatic check of this canary is still running; try again in a minute.")
        ) from None


def is_late(canary: Canary, now=None) -> bool:
    """A running canary's check is more than 30 s overdue: the beat or the worker is not running."""
    now = now or timezone.now()
    return (
        canary.analysis == Canary.Analysis.RUNNING
        and canary.next_check_at is not None
        and canary.next_check_at < now - timedelta(seconds=30)
    )


def next_weight(weight: int) -> int:
    return next((step for step in canaries.STEPS if step > weight), 100)


# --- the periodic task ----------------------------------------------------------------------------------------


def analyse_due(now=None) -> int:
    """Check every running canary whose next check has come; the number checked."""
    now = now or timezone.now()
    due = Canary.objects.filter(
        state=Canary.State.ACTIVE, analysis=Canary.Analysis.RUNNING, next_check_at__lte=now + GRACE
    ).values_list("pk", flat=True)
    done = 0
    for pk in list(due):
        try:
            with redis_lock(f"canary-analysis-{pk}", timeout=300):
                if check_canary(pk, now=now) is not None:
                    done += 1
        except LockBusy:
            continue  # the previous check of this canary is still running
        except Exception:
            log.exception("canary analysis failed", extra={"canary": pk})
    return done


@shared_task(name="releases.analyse_canaries", ignore_result=True)
def analyse_canaries() -> int:
    """Check the canaries with automatic steps whose next check has come (beat runs this every 10 seconds)."""
    return analyse_due()


def check_canary(pk: int, *, now=None) -> CanaryCheck | None:
    """Run one check of canary ``pk`` and take the step it decides; None when the canary is not due."""
    now = now or timezone.now()
    canary = Canary.objects.select_related("release__project__cluster", "analysis_by").filter(pk=pk).first()
    if canary is None or canary.state != Canary.State.ACTIVE or canary.analysis != Canary.Analysis.RUNNING:
        return None  # removed with its release, finished or paused since it was found due
    if canary.next_check_at and canary.next_check_at > now + GRACE:
        return None
    release = canary.release
    cluster = release.project.cluster
    actor = canary.analysis_by
    # Stored notes are written in the console's default language.
    with translation.override(settings.LANGUAGE_CODE):
        if (
            actor is None
            or not actor.is_active
            or not access.may(actor, RELEASES_CANARY, cluster=cluster, namespace=release.namespace)
        ):
            who = actor.get_username() if actor else "—"
            pause(
                canary,
                actor=actor,
                note=D(
                    N_("%(user)s may no longer release canaries in %(namespace)s."),
                    user=who,
                    namespace=release.namespace,
                ),
            )
            return None
        # A freeze (apps/compliance, through apps/core/gates.py) pauses the steps: the canary keeps its share.
        frozen = gates.closed(cluster, release.namespace, "releases.canary")
        if frozen is not None:
            pause(canary, actor=actor, note=frozen)
            return None
        check = _run_query(canary)
        _act_on(canary, check, actor)
    if canary.state == Canary.State.ACTIVE and canary.analysis == Canary.Analysis.RUNNING:
        canary.next_check_at = now + timedelta(seconds=canary.analysis_interval)
        canary.save(update_fields=["next_check_at", "failures"])
    return check


def _run_query(canary: Canary) -> CanaryCheck:
    release = canary.release
    value, detail = None, ""
    try:
        value = prometheus.worst_value(
            endpoints.prometheus(release.project.cluster), expand(canary.analysis_query, release)
        )
    except prometheus.NoData:
        outcome = CanaryCheck.Outcome.NO_DATA  # the outcome's own label says it all
    except prometheus.PrometheusError as exc:
        outcome, detail = CanaryCheck.Outcome.ERROR, sentence_of(exc)
    else:
        limit = canary.analysis_max if canary.analysis_max is not None else 0
        outcome = CanaryCheck.Outcome.PASSED if value <= limit else CanaryCheck.Outcome.ABOVE
    return CanaryCheck.objects.create(
        canary=canary, weight=canary.weight, value=value, outcome=outcome, detail=fit(detail, 500)
    )


def _act_on(canary: Canary, check: CanaryCheck, actor) -> None:
    auto = canaries.AutoStep(check=check)
    try:
        if not check.passed:
            canary.failures += 1
            if canary.failures >= canary.analysis_failure_limit:
                canaries.abort_canary(actor=actor, canary=canary, automatic=auto)
            return
        canary.failures = 0
        if canary.weight < 100:
            canaries.step_canary(actor=actor, canary=canary, weight=next_weight(canary.weight), automatic=auto)
        elif canary.auto_promote:
            canaries.promote_canary(actor=actor, canary=canary, automatic=auto)
        else:
            with transaction.atomic():
                canary.analysis = Canary.Analysis.WAITING
                canary.next_check_at = None
                canary.save(update_fields=["analysis", "next_check_at", "failures"])
                canaries.audit(actor, "analysis", canary, detail={"state": canary.analysis, "automatic": True})
    except (services.ReleaseError, gates.ApprovalRequired) as exc:
        # The cluster refused, someone edited by hand, or the promotion waits for a second person's approval (its
        # approval promotes it): a person decides from here.
        canary.refresh_from_db()
        pause(canary, actor=actor, note=sentence_of(exc), check=check)


# --- pause and resume ------------------------------------------------------------------------------------------


def pause(canary: Canary, *, actor, note: str = "", check: CanaryCheck | None = None, request=None) -> Canary:
    """Stop the automatic steps; the canary keeps its share until a person steps, promotes or aborts it."""
    with transaction.atomic():
        canary.analysis = Canary.Analysis.PAUSED
        canary.next_check_at = None
        canary.save(update_fields=["analysis", "next_check_at"])
        CanaryStep.objects.create(
            canary=canary,
            action=CanaryStep.Action.PAUSE,
            weight=canary.weight,
            actor=actor if request else None,
            automatic=request is None,
            analysis_check=check,
            note=fit(note, 300),
        )
        detail = {"state": canary.analysis, "note": note, "automatic": request is None}
        canaries.audit(actor, "analysis", canary, request=request, detail=detail)
    return canary


def pause_by_person(canary: Canary, *, actor, request=None) -> Canary:
    if canary.state != Canary.State.ACTIVE or canary.analysis != Canary.Analysis.RUNNING:
        raise canaries.CanaryError(_("The automatic steps of this canary are not running."))
    return pause(canary, actor=actor, request=request)


def resume(canary: Canary, *, actor, request=None) -> Canary:
    """Start the automatic steps again, acting as ``actor`` from now on; the first check comes after one interval."""
    if canary.state != Canary.State.ACTIVE or not canary.automatic or canary.analysis == Canary.Analysis.RUNNING:
        raise canaries.CanaryError(_("This canary has no automatic steps to resume."))
    with transaction.atomic():
        canary.analysis = Canary.Analysis.RUNNING
        canary.analysis_by = actor
        canary.failures = 0
        canary.next_check_at = timezone.now() + timedelta(seconds=canary.analysis_interval)
        canary.save(update_fields=["analysis", "analysis_by", "failures", "next_check_at"])
        CanaryStep.objects.create(canary=canary, action=CanaryStep.Action.RESUME, weight=canary.weight, actor=actor)
        canaries.audit(actor, "analysis", canary, request=request, detail={"state": canary.analysis})
    return canary
