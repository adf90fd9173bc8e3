"""Release pages: authorize, validate a form, call a service, render.

A release is read with ``workloads.view`` in its namespace, deployed and edited
with ``releases.deploy``, rolled back with ``releases.rollback``, and its canary
started, stepped, promoted and aborted with ``releases.canary``. Missing and
forbidden releases both answer 404.
"""

from __future__ import annotations

import difflib
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.capabilities import PODS_LOGS, RELEASES_CANARY, RELEASES_DEPLOY, RELEASES_ROLLBACK, WORKLOADS_VIEW
from apps.core import gates
from apps.core.htmx import render
from apps.core.reauth import needs_password, require_recent_auth
from apps.releases import access, analysis, canaries, services
from apps.releases.canary_forms import CanaryForm, CanaryStepForm
from apps.releases.changes import spec_changes
from apps.releases.forms import DiffForm, ReleaseForm, RollbackForm, deployable_projects
from apps.releases.models import Canary, Release

FORM = "releases/release_form.html"


@login_required
@require_GET
def release_list(request):
    running = Prefetch("canaries", queryset=Canary.objects.filter(state=Canary.State.ACTIVE), to_attr="running")
    rows = access.releases(request.user, WORKLOADS_VIEW)
    rows = rows.select_related("project__cluster").prefetch_related("revisions", running)
    context = {"releases": list(rows), "can_create": deployable_projects(request.user).exists()}
    return render(request, "releases/release_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def release_create(request):
    if not deployable_projects(request.user).exists():
        raise Http404
    form = ReleaseForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            release = services.create_release(
                actor=request.user,
                project=data["project"],
                namespace=data["namespace"],
                name=data["name"],
                spec=form.spec(),
                request=request,
            )
        except services.ReleaseError as exc:
            form.add_error(None, str(exc))  # nothing was saved: the form stays as typed, with the reason
        else:
            _deploy(request, release)
            return redirect("releases:release_detail", release.pk)
    return render(request, FORM, {"form": form, "preview": _preview(form)})


def _told(request, outcome: services.DeployOutcome) -> None:
    """The outcome's sentence: applied, nothing to change, or waiting for a second person's approval."""
    (messages.warning if outcome.waiting else messages.success)(request, outcome.message)


def _deploy(request, release: Release, **kwargs) -> services.DeployOutcome | None:
    try:
        outcome = services.deploy_release(actor=request.user, release=release, request=request, **kwargs)
    except services.ReleaseError as exc:
        messages.error(request, str(exc))
        return None
    _told(request, outcome)
    return outcome


@login_required
@require_http_methods(["GET", "POST"])
def release_edit(request, pk: int):
    release = access.release(request.user, pk, RELEASES_DEPLOY)
    drift = services.replica_drift(release)
    live = drift["live"] if drift else None
    form = ReleaseForm(request.POST or None, user=request.user, release=release, live_replicas=live)
    context = {"form": form, "release": release}
    if request.method == "POST" and form.is_valid():
        force = request.POST.get("force") == "1"
        try:
            outcome = services.deploy_release(
                actor=request.user,
                release=release,
                spec=form.spec(),
                force=force,
                request=request,
                replicas_seen=form.cleaned_data.get("replicas_seen"),
                break_glass=gates.break_glass_of(request),
            )
        except services.HandEditConflict as exc:
            context.update(error=str(exc), offer_force=True)
        except services.ReleaseError as exc:
            context["error"] = str(exc)
        else:
            _told(request, outcome)
            return redirect("releases:release_detail", release.pk)
    context["preview"] = _preview(form, release)
    return render(request, FORM, context)


def _preview(form: ReleaseForm, release: Release | None = None) -> str:
    """The manifests the form would deploy; empty while the form has errors."""
    if not form.is_bound or not form.is_valid():
        spec = release.spec if release else None
        if spec is None or form.is_bound:
            return ""
        return services.preview_yaml(release.name, release.namespace, spec)
    name = release.name if release else form.cleaned_data["name"]
    namespace = release.namespace if release else form.cleaned_data["namespace"]
    return services.preview_yaml(name, namespace, form.spec())


@login_required
@require_POST
def release_preview(request, pk: int | None = None):
    release = access.release(request.user, pk, RELEASES_DEPLOY) if pk else None
    if release is None and not deployable_projects(request.user).exists():
        raise Http404
    form = ReleaseForm(request.POST, user=request.user, release=release)
    context = {"form": form, "release": release, "preview": _preview(form, release)}
    return render(request, FORM, context, partial="preview")


@login_required
@require_GET
def release_detail(request, pk: int):
    release = access.release(request.user, pk, WORKLOADS_VIEW)
    # htmx asks for the canary card (it polls while a canary runs) or for the history.
    partial = "canary" if request.GET.get("part") == "canary" else "history"
    return render(request, "releases/release_detail.html", _detail_context(request, release), partial=partial)


def _detail_context(request, release: Release, canary_form: CanaryForm | None = None) -> dict:
    revisions = list(release.revisions.select_related("actor", "job"))
    for rev in revisions:  # what rolling back to it would change, for the confirmation dialog
        rev.changes = spec_changes(release.spec, rev.spec, keep_replicas=True)
    canary = canaries.active_canary(release)
    can_canary = access.may(request.user, RELEASES_CANARY, release)
    return {
        "canary": canary,
        "canary_live": canaries.live_view(release, canary),
        "canary_changes": spec_changes(release.spec, canary.spec, keep_replicas=True) if canary else [],
        "canary_steps": canaries.STEPS,
        "can_canary": can_canary,
        "canary_form": canary_form
        or (CanaryForm(release=release, user=request.user) if can_canary and canary is None else None),
        "canary_checks": list(canary.checks.all()[:10]) if canary and canary.automatic else [],
        "analysis_late": analysis.is_late(canary) if canary else False,
        "canary_history": list(canary.steps.select_related("actor", "analysis_check")) if canary else [],
        "conflict": _conflict(request, release, canary),
        "past_canaries": release.canaries.exclude(state=Canary.State.ACTIVE).select_related("started_by")[:5],
        "release": release,
        "cluster": release.project.cluster,
        "revisions": revisions,
        "latest": revisions[0] if revisions else None,
        "autoscaler": services.autoscaler_row(release),
        "deployment": services.deployment_row(release),
        "pods": services.pod_rows(release),
        "can_read_logs": access.may(request.user, PODS_LOGS, release),
        "replica_drift": services.replica_drift(release),
        "route": services.route_row(release),
        "route_status": services.route_status(release),
        "can_deploy": access.may(request.user, RELEASES_DEPLOY, release),
        "can_rollback": access.may(request.user, RELEASES_ROLLBACK, release),
        "can_remove": access.may(request.user, RELEASES_DEPLOY, release)
        and access.may(request.user, RELEASES_CANARY, release),
        "secret_names": sorted(release.spec.get("secret_env") or {}),
        "owned_kinds": sorted(services.kinds_of(release.spec)),
        "needs_password": needs_password(request),
    }


def _conflict(request, release: Release, canary: Canary | None) -> dict | None:
    """After a refusal over a hand edit, the action to offer again with force (?conflict=deploy|rollback|promote)."""
    action = request.GET.get("conflict")
    if action == "deploy" and access.may(request.user, RELEASES_DEPLOY, release):
        return {"action": action, "url": reverse("releases:release_deploy", args=[release.pk])}
    if action == "promote" and canary is not None and access.may(request.user, RELEASES_CANARY, release):
        return {"action": action, "url": reverse("releases:canary_promote", args=[release.pk])}
    revision = request.GET.get("revision", "")
    if (
        action == "rollback"
        and revision.isdigit()
        and access.may(request.user, RELEASES_ROLLBACK, release)
        and release.revisions.filter(number=int(revision)).exists()
    ):
        url = reverse("releases:release_rollback", args=[release.pk])
        return {"action": action, "url": url, "revision": int(revision)}
    return None


def _after_conflict(release: Release, action: str, **params) -> HttpResponseRedirect:
    query = urlencode({"conflict": action, **params})
    return HttpResponseRedirect(f"{reverse('releases:release_detail', args=[release.pk])}?{query}#release-conflict")


@login_required
@require_POST
def release_deploy(request, pk: int):
    release = access.release(request.user, pk, RELEASES_DEPLOY)
    try:
        outcome = services.deploy_release(
            actor=request.user,
            release=release,
            force=request.POST.get("force") == "1",
            request=request,
            break_glass=gates.break_glass_of(request),
        )
    except services.HandEditConflict as exc:
        messages.error(request, str(exc))
        return _after_conflict(release, "deploy")
    except services.ReleaseError as exc:
        messages.error(request, str(exc))
    else:
        _told(request, outcome)
    return redirect("releases:release_detail", release.pk)


@login_required
@require_POST
def release_rollback(request, pk: int):
    release = access.release(request.user, pk, RELEASES_ROLLBACK)
    form = RollbackForm(request.POST)
    if not form.is_valid() or not release.revisions.filter(number=form.cleaned_data["revision"]).exists():
        raise Http404
    try:
        outcome = services.rollback_release(
            actor=request.user,
            release=release,
            number=form.cleaned_data["revision"],
            force=request.POST.get("force") == "1",
            request=request,
            break_glass=gates.break_glass_of(request),
        )
    except services.HandEditConflict as exc:
        messages.error(request, str(exc))
        return _after_conflict(release, "rollback", revision=form.cleaned_data["revision"])
    except services.ReleaseError as exc:
        messages.error(request, str(exc))
    else:
        _told(request, outcome)
    return redirect("releases:release_detail", release.pk)


@login_required
@require_GET
def release_diff(request, pk: int):
    release = access.release(request.user, pk, WORKLOADS_VIEW)
    form = DiffForm(request.GET)
    if not form.is_valid():
        raise Http404
    a = get_object_or_404(release.revisions, number=form.cleaned_data["a"])
    b = get_object_or_404(release.revisions, number=form.cleaned_data["b"])
    lines = list(
        difflib.unified_diff(
            services.revision_yaml(a).splitlines(),
            services.revision_yaml(b).splitlines(),
            fromfile=_("revision %(n)s") % {"n": a.number},
            tofile=_("revision %(n)s") % {"n": b.number},
            lineterm="",
        )
    )
    context = {"release": release, "a": a, "b": b, "lines": lines, "cluster": release.project.cluster}
    return render(request, "releases/release_diff.html", context)


@login_required
@require_POST
def release_delete(request, pk: int):
    # Removing an app deletes its Deployment and Service: the canary capability is the one that grants that.
    release = access.release(request.user, pk, RELEASES_DEPLOY)
    access.require(request.user, RELEASES_CANARY, release)
    return require_recent_auth(_release_delete)(request, release)


def _release_delete(request, release: Release):
    name = release.name
    canary = canaries.active_canary(release)
    try:
        if canary is None:
            services.delete_release(actor=request.user, release=release, request=request)
        else:
            # An automatic check must not step the route of a release being removed.
            with analysis.exclusive(canary):
                services.delete_release(actor=request.user, release=release, request=request)
    except gates.ApprovalRequired as exc:  # four-eyes approval: recorded, not removed
        messages.warning(request, str(exc))
        return redirect("releases:release_detail", release.pk)
    except services.ReleaseError as exc:
        messages.error(request, str(exc))
        return redirect("releases:release_detail", release.pk)
    messages.success(request, _("Release %(name)s and its objects are removed.") % {"name": name})
    return redirect("releases:release_list")


# --- grey and canary releases ------------------------------------------------------------------------------


@login_required
@require_POST
def canary_start(request, pk: int):
    release = access.release(request.user, pk, RELEASES_CANARY)
    form = CanaryForm(request.POST, release=release, user=request.user)
    if not form.is_valid():
        context = _detail_context(request, release, canary_form=form)
        return render(request, "releases/release_detail.html", context, partial="history")
    data = form.cleaned_data
    try:
        canary = canaries.start_canary(
            actor=request.user,
            release=release,
            image=data["image"],
            mode=data["mode"],
            weight=data.get("weight") or canaries.DEFAULT_WEIGHT,
            match_name=data.get("match_name") or "",
            match_value=data.get("match_value") or "",
            replicas=data["replicas"],
            analysis=data.get("analysis"),
            request=request,
        )
    except services.ReleaseError as exc:
        messages.error(request, str(exc))
    else:
        if canary.mode == Canary.Mode.WEIGHT:
            message = _("%(image)s runs as a canary and receives %(weight)s%% of the traffic.")
        else:
            message = _("%(image)s runs as a canary and receives the requests that carry %(match)s.")
        values = {"image": data["image"], "weight": canary.weight, "match": f"{canary.match_name}={canary.match_value}"}
        if canary.automatic:
            message += " " + _("It moves to the next share every %(seconds)s seconds while the check passes.")
            values["seconds"] = canary.analysis_interval
        messages.success(request, message % values)
    return redirect("releases:release_detail", release.pk)


def _active_canary(request, pk: int) -> Canary:
    release = access.release(request.user, pk, RELEASES_CANARY)
    canary = canaries.active_canary(release)
    if canary is None:
        raise Http404
    return canary


def _on_canary(request, pk: int, act, *, conflict_action: str = ""):
    """Run ``act(canary)`` on the release's running canary while holding its check lock (analysis.exclusive).

    ``act`` returns the sentence to show on success; a ReleaseError becomes the error shown. With
    ``conflict_action``, a refusal over a hand edit comes back with the offer to force it.
    """
    canary = _active_canary(request, pk)
    try:
        with analysis.exclusive(canary):
            message = act(canary)
    except services.HandEditConflict as exc:
        messages.error(request, str(exc))
        if conflict_action:
            return _after_conflict(canary.release, conflict_action)
    except gates.ApprovalRequired as exc:  # four-eyes approval of the promotion: recorded, not applied
        messages.warning(request, str(exc))
    except services.ReleaseError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, message)
    return redirect("releases:release_detail", pk)


@login_required
@require_POST
def canary_step(request, pk: int):
    form = CanaryStepForm(request.POST)
    if not form.is_valid():
        _active_canary(request, pk)  # 404 before saying anything about the form
        messages.error(request, _("Give the share of traffic as a whole number from 0 to 100."))
        return redirect("releases:release_detail", pk)

    def step(canary):
        canaries.step_canary(actor=request.user, canary=canary, weight=form.cleaned_data["weight"], request=request)
        return _("The canary now receives %(weight)s%% of the traffic.") % {"weight": canary.weight}

    return _on_canary(request, pk, step)


@login_required
@require_POST
def canary_promote(request, pk: int):
    def promote(canary):
        force = request.POST.get("force") == "1"
        return canaries.promote_canary(actor=request.user, canary=canary, force=force, request=request).message

    return _on_canary(request, pk, promote, conflict_action="promote")


@login_required
@require_POST
def canary_abort(request, pk: int):
    def abort(canary):
        canaries.abort_canary(actor=request.user, canary=canary, request=request)
        return _("All traffic goes to the stable version again; the canary is removed.")

    return _on_canary(request, pk, abort)


@login_required
@require_POST
def canary_pause(request, pk: int):
    def pause(canary):
        analysis.pause_by_person(canary, actor=request.user, request=request)
        return _("Automatic steps are paused; the canary keeps %(weight)s%% of the traffic.") % {
            "weight": canary.weight
        }

    return _on_canary(request, pk, pause)


@login_required
@require_POST
def canary_resume(request, pk: int):
    def resume(canary):
        analysis.resume(canary, actor=request.user, request=request)
        return _("Automatic steps run again as you; the next check is in %(seconds)s seconds.") % {
            "seconds": canary.analysis_interval
        }

    return _on_canary(request, pk, resume)
