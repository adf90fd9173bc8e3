"""Grey and canary releases: start a second version, step its share of traffic, promote it or abort it.

The stable version keeps the release's names (Deployment and Service ``<name>``);
the canary runs as Deployment and Service ``<name>-canary`` (render.py). The
release's HTTPRoute carries the split: backendRefs weights for a grey release,
or a first rule matching a header (or a cookie, as a regular expression on the
Cookie header) that goes to the canary. Every write acts as the user, is audited
(``releases.canary.start/step/promote/abort``) in the same transaction as the
Canary row, and callers check ``releases.canary`` first.

Promote applies the canary's spec to the stable Deployment as a new revision
(with its rollout wait), sends the route back to the single stable backend and
deletes the canary's Deployment and Service; abort does the last two only. The
Deployment is deleted with background propagation, so the controller's garbage
collector removes its ReplicaSets and pods.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.clusters import kube
from apps.core import gates
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.releases import k8s, render, services
from apps.releases.models import Canary, CanaryCheck, CanaryStep, Release

STEPS = (10, 25, 50, 100)
DEFAULT_WEIGHT = 10
DEFAULT_HEADER = ("X-Canary", "true")
DEFAULT_COOKIE = ("canary", "true")


class CanaryError(services.ReleaseError):
    """The canary action cannot be done; the message is the sentence to show."""


@dataclass(frozen=True)
class AutoStep:
    """Why an automatic step happened: the Prometheus check that decided it, or a note."""

    check: CanaryCheck | None = None
    note: str = ""


def active_canary(release: Release) -> Canary | None:
    return release.canaries.filter(state=Canary.State.ACTIVE).first()


def audit(actor, action: str, canary_or_release, *, request=None, detail=None, error: str = "") -> None:
    release = canary_or_release.release if isinstance(canary_or_release, Canary) else canary_or_release
    services._audit(actor, f"releases.canary.{action}", release, request=request, detail=detail, error=error)


def _route(release: Release, canary: Canary | None) -> dict:
    """The release's HTTPRoute: split for an active canary, the single stable backend otherwise."""
    if canary is None:
        return render.http_route(release.name, release.namespace, release.spec)
    return render.split_route(
        release.name,
        release.namespace,
        release.spec,
        mode=canary.mode,
        weight=canary.weight,
        match=(canary.match_name, canary.match_value),
    )


def _remove_canary_objects(k: kube.Client, release: Release) -> None:
    for kind in ("Service", "Deployment"):
        k8s.delete(k, kind, release.namespace, render.canary_name(release.name))


def _refused(exc: kube.KubeError, release: Release) -> str:
    return services.refused_sentence(exc, release)


def start_canary(
    *,
    actor,
    release: Release,
    image: str,
    mode: str = Canary.Mode.WEIGHT,
    weight: int = DEFAULT_WEIGHT,
    match_name: str = "",
    match_value: str = "",
    replicas: int = 1,
    analysis: dict | None = None,
    request=None,
) -> Canary:
    """Run ``image`` as the canary of ``release`` and route ``weight`` percent (or matching requests) to it.

    ``analysis`` (query, max, interval, failure_limit, auto_promote) turns on automatic steps (analysis.py):
    grey releases only, on a cluster with a Prometheus URL; the steps then act as ``actor``.
    """
    values = {"name": release.name}
    if active_canary(release):
        raise CanaryError(_("A canary of %(name)s is already running: promote or abort it first.") % values)
    if not (release.spec.get("route") or {}).get("enabled") or not (release.spec.get("service") or {}).get("enabled"):
        raise CanaryError(
            _("A canary needs a route to split traffic: publish %(name)s through a Gateway first.") % values
        )
    if len(render.canary_name(release.name)) > 63:
        raise CanaryError(_("The name %(name)s is too long to add “-canary” to it (63 characters at most).") % values)
    if not services.last_applied(release):
        raise CanaryError(_("Deploy %(name)s first: a canary runs next to a stable version.") % values)
    if mode == Canary.Mode.WEIGHT:
        match_name, match_value = "", ""
    if analysis and mode != Canary.Mode.WEIGHT:
        raise CanaryError(_("Automatic steps change a share of traffic: choose a grey release to use them."))
    if analysis and not release.project.cluster.prometheus_url:
        raise CanaryError(
            _("Automatic steps need a Prometheus URL for cluster %(cluster)s.")
            % {"cluster": release.project.cluster.name}
        )
    canary = Canary(
        release=release,
        spec={**copy.deepcopy(release.spec), "image": image},
        replicas=replicas,
        mode=mode,
        weight=weight if mode == Canary.Mode.WEIGHT else 0,
        match_name=match_name,
        match_value=match_value,
        started_by=actor,
    )
    detail = {"image": image, "mode": mode, "weight": canary.weight, "match": [match_name, match_value]}
    if analysis:
        canary.analysis = Canary.Analysis.RUNNING
        canary.analysis_query = analysis["query"]
        canary.analysis_max = analysis["max"]
        canary.analysis_interval = analysis["interval"]
        canary.analysis_failure_limit = analysis["failure_limit"]
        canary.auto_promote = analysis["auto_promote"]
        canary.analysis_by = actor
        canary.next_check_at = timezone.now() + timedelta(seconds=canary.analysis_interval)
        detail["analysis"] = {k: analysis[k] for k in ("query", "max", "interval", "failure_limit", "auto_promote")}
    cluster = release.project.cluster
    checksum = services.secret_checksum(services.secret_values(release.spec))
    try:
        with kube.client(cluster, as_user=actor) as k:
            try:
                k8s.apply(
                    k,
                    render.canary_deployment(
                        release.name,
                        release.namespace,
                        canary.spec,
                        replicas,
                        checksum=checksum,
                        **services.decrypt_args(release, canary.spec),
                    ),
                )
                k8s.apply(k, render.canary_service(release.name, release.namespace, canary.spec))
                k8s.apply(k, _route(release, canary))
            except kube.KubeError:
                # Leave nothing half-started: without the route change the canary objects serve nobody.
                _remove_canary_objects(k, release)
                raise
    except kube.KubeError as exc:
        sentence = _refused(exc, release)
        audit(actor, "start", release, request=request, detail=detail, error=sentence)
        raise CanaryError(sentence) from None
    with transaction.atomic():
        canary.save()
        _step_row(canary, CanaryStep.Action.START, canary.weight, actor, None)
        audit(actor, "start", canary, request=request, detail=detail)
    return canary


def _step_row(canary: Canary, action: str, weight: int | None, actor, automatic: AutoStep | None) -> None:
    CanaryStep.objects.create(
        canary=canary,
        action=action,
        weight=weight,
        actor=actor,
        automatic=automatic is not None,
        analysis_check=automatic.check if automatic else None,
        note=automatic.note if automatic else "",
    )


def _auto_detail(detail: dict, automatic: AutoStep | None) -> dict:
    if automatic is None:
        return detail
    check = automatic.check
    return {**detail, "automatic": True, "check": {"value": check.value, "outcome": check.outcome} if check else None}


def _finish(canary: Canary, state: str, actor, automatic: AutoStep | None) -> None:
    """Record a promoted or aborted canary (inside the caller's transaction): no more checks, one step row."""
    canary.state = state
    canary.finished_at = timezone.now()
    canary.next_check_at = None
    canary.save(update_fields=["state", "finished_at", "revision", "next_check_at"])
    promoted = state == Canary.State.PROMOTED
    action = CanaryStep.Action.PROMOTE if promoted else CanaryStep.Action.ABORT
    _step_row(canary, action, 100 if promoted else 0, actor, automatic)


def step_canary(*, actor, canary: Canary, weight: int, automatic: AutoStep | None = None, request=None) -> Canary:
    """Send ``weight`` percent of the traffic to the canary (grey releases only)."""
    release = canary.release
    if canary.state != Canary.State.ACTIVE or canary.mode != Canary.Mode.WEIGHT:
        raise CanaryError(_("Only a running grey release has a share of traffic to change."))
    previous = canary.weight
    canary.weight = weight
    detail = _auto_detail({"image": canary.spec.get("image", ""), "weight": weight, "previous": previous}, automatic)
    try:
        with kube.client(release.project.cluster, as_user=actor) as k:
            k8s.apply(k, _route(release, canary))
    except kube.KubeError as exc:
        canary.weight = previous
        sentence = _refused(exc, release)
        audit(actor, "step", canary, request=request, detail=detail, error=sentence)
        raise CanaryError(sentence) from None
    with transaction.atomic():
        canary.save(update_fields=["weight"])
        _step_row(canary, CanaryStep.Action.STEP, weight, actor, automatic)
        audit(actor, "step", canary, request=request, detail=detail)
    return canary


def promote_canary(
    *,
    actor,
    canary: Canary,
    force: bool = False,
    automatic: AutoStep | None = None,
    request=None,
    approved: bool = False,
    break_glass: str = "",
) -> services.DeployOutcome:
    """Make the canary's spec the stable release as a new revision; remove the canary; route to one backend.

    Where a policy asks for four-eyes approval of promotions, nothing changes: ``gates.ApprovalRequired`` names the
    change request (the automatic steps pause on it); ``approved``: the approved request is being applied."""
    release = canary.release
    if canary.state != Canary.State.ACTIVE:
        raise CanaryError(_("This canary is not running any more."))
    spec = canary.spec
    detail = _auto_detail({"image": spec.get("image", ""), "weight": canary.weight}, automatic)
    digest = services.spec_hash(release, spec)
    cluster = release.project.cluster
    try:
        with kube.client(cluster, as_user=actor) as k:
            live = k8s.read(k, "Deployment", release.namespace, release.name)
            editors = k8s.hand_edits(live) if live else []
            if editors and not force:
                sentence = services.conflict_sentence(release, live, editors)
                audit(actor, "promote", canary, request=request, detail={**detail, "conflict": editors}, error=sentence)
                raise services.HandEditConflict(sentence)
            # The stable version keeps the replica count it runs with (the canary's spec copied an older one).
            spec = services.carry_live_replicas(spec, live, spec.get("replicas"))
            digest = services.spec_hash(release, spec)
            if not approved and gates.watched("releases.promote", release.project.cluster, release.namespace):
                change = services.change_for(
                    actor,
                    release,
                    spec,
                    live,
                    services.last_applied(release),
                    rollback_of=None,
                    force=force,
                    replicas_seen=spec.get("replicas"),
                    action="releases.promote",
                    summary=D(
                        N_("Promote the canary of %(name)s (image %(image)s)"),
                        name=release.name,
                        image=spec.get("image", ""),
                    ),
                    payload={"canary": canary.pk, "spec": spec, "force": force},
                )
                try:
                    gates.guard(change, request=request, break_glass=break_glass)
                except gates.ChangeRefused as exc:
                    raise CanaryError(exc.stored) from None
            # The stable Deployment rolls to the canary's pods (old pods serve until new ones are ready), the route
            # goes back to its single stable backend, then the canary goes away.
            services.apply_spec(k, release, spec, services.last_applied(release))
            _remove_canary_objects(k, release)
    except kube.KubeError as exc:
        sentence = _refused(exc, release)
        audit(actor, "promote", canary, request=request, detail=detail, error=sentence)
        raise CanaryError(sentence) from None
    with transaction.atomic():
        note = D(N_("canary promoted automatically")) if automatic else D(N_("canary promoted"))
        revision, job = services.start_rollout(release, spec, digest, actor, note=note)
        canary.revision = revision
        _finish(canary, Canary.State.PROMOTED, actor, automatic)
        audit(actor, "promote", canary, request=request, detail={**detail, "revision": revision.number})
    message = _("%(name)s now runs %(image)s as revision %(number)s; the canary is removed.") % {
        "name": release.name,
        "image": spec.get("image", ""),
        "number": revision.number,
    }
    return services.DeployOutcome(revision, job, message)


def abort_canary(*, actor, canary: Canary, automatic: AutoStep | None = None, request=None) -> Canary:
    """Send all traffic back to the stable version and remove the canary's Deployment and Service."""
    release = canary.release
    if canary.state != Canary.State.ACTIVE:
        raise CanaryError(_("This canary is not running any more."))
    detail = _auto_detail({"image": canary.spec.get("image", ""), "weight": canary.weight}, automatic)
    try:
        with kube.client(release.project.cluster, as_user=actor) as k:
            k8s.apply(k, _route(release, None))
            _remove_canary_objects(k, release)
    except kube.KubeError as exc:
        sentence = _refused(exc, release)
        audit(actor, "abort", canary, request=request, detail=detail, error=sentence)
        raise CanaryError(sentence) from None
    with transaction.atomic():
        _finish(canary, Canary.State.ABORTED, actor, automatic)
        audit(actor, "abort", canary, request=request, detail=detail)
    return canary


# --- reads for pages ---------------------------------------------------------------------------------------


def live_view(release: Release, canary: Canary | None) -> dict:
    """The split and ready pods as the inventory last read them from the cluster (HTTPRoute and Deployment rows)."""
    from apps.clusters.models import Resource

    names = [release.name, render.canary_name(release.name)]
    rows = Resource.objects.filter(cluster_id=release.project.cluster_id, namespace=release.namespace, name__in=names)
    rows = {(r.kind, r.name): r for r in rows.filter(kind__in=("Deployment", "HTTPRoute"))}
    route = rows.get(("HTTPRoute", release.name))
    split = render.route_split(route.object if route else None)
    total = sum(weight for _name, weight in split) or 0
    shares = {name: (round(100 * weight / total) if total else 0) for name, weight in split}
    versions = []
    for track, name, image in (
        ("stable", names[0], release.spec.get("image", "")),
        ("canary", names[1], canary.spec.get("image", "") if canary else ""),
    ):
        if track == "canary" and canary is None and ("Deployment", name) not in rows:
            continue
        row = rows.get(("Deployment", name))
        containers = (((row.object or {}).get("spec") or {}).get("template") or {}).get("spec", {}) if row else {}
        image = ((containers.get("containers") or [{}])[0].get("image")) or image
        versions.append(
            {
                "track": track,
                "name": name,
                "image": image,
                "deployment": row,
                "ready": (row.summary or {}).get("ready") if row else None,
                "desired": (row.summary or {}).get("desired") if row else None,
                "share": shares.get(name),
            }
        )
    return {
        "route": route,
        "split": split,
        "matches": render.route_matches(route.object if route else None),
        "versions": versions,
    }
