"""The Velero pages of a cluster: its Velero part (storage locations, backups and restores read live from the cluster
as the person and filtered to the namespaces they hold; loaded with htmx and polled while something runs), back up
now, a restore with its preview (the password asked again), and the logs of a backup or a restore."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_http_methods

from apps.accounts.capabilities import BACKUPS_RESTORE, BACKUPS_RUN
from apps.backups import access, pages
from apps.backups.forms import BackupNowForm, split_names
from apps.backups.models import Backup, Kind, Restore
from apps.backups.velero import k8s
from apps.backups.velero import services as velero
from apps.clusters import kube
from apps.clusters.models import Cluster
from apps.core import gates
from apps.core.deferred import Failure
from apps.core.htmx import render
from apps.core.reauth import require_recent_auth

VELERO_SHOWN = 100
RESTORES_SHOWN = 30
LOG_LINES = 2000
PHASES = {
    "New": ("bg-secondary-lt", pgettext_lazy("velero phase", "New")),
    "InProgress": ("bg-blue-lt", pgettext_lazy("velero phase", "In progress")),
    "WaitingForPluginOperations": ("bg-blue-lt", pgettext_lazy("velero phase", "Waiting for plugins")),
    "Finalizing": ("bg-blue-lt", pgettext_lazy("velero phase", "Finalizing")),
    "Completed": ("bg-green-lt", pgettext_lazy("velero phase", "Completed")),
    "PartiallyFailed": ("bg-orange-lt", pgettext_lazy("velero phase", "Partly failed")),
    "Failed": ("bg-red-lt", pgettext_lazy("velero phase", "Failed")),
    "FailedValidation": ("bg-red-lt", pgettext_lazy("velero phase", "Failed validation")),
    "Deleting": ("bg-secondary-lt", pgettext_lazy("velero phase", "Deleting")),
}


# A cluster's Velero part, back up now -------------------------------------------------------------------------------


def _phase(phase: str) -> dict:
    css, label = PHASES.get(phase, ("bg-secondary-lt", phase))
    return {"word": phase, "label": label, "css": css}


def _requesters(labels: list[str]) -> dict[str, str]:
    """User names behind Velero's requested-by labels (kubemate-u<pk>), in one query."""
    prefix = kube.user_service_account(SimpleNamespace(pk=""))
    pks = {}
    for label in labels:
        if label.startswith(prefix) and label[len(prefix) :].isdigit():
            pks[label] = int(label[len(prefix) :])
    names = dict(get_user_model().objects.filter(pk__in=set(pks.values())).values_list("pk", "username"))
    return {label: names.get(pk, label) for label, pk in pks.items()}


def _velero_context(request, found: Cluster) -> dict:
    """Velero's objects in ``found``, read as the person and filtered to what they may see."""
    user = request.user
    context: dict = {"cluster": found, "error": "", "missing": False, "polling": False}
    try:
        seen = velero.state(actor=user, cluster=found)
    except (kube.KubeError, Failure) as exc:
        context["error"] = str(exc) or _("The cluster could not be read.")
        return context
    if seen.missing:
        context["missing"] = True
        return context
    locations, backups, restores = seen.locations, seen.backups[:VELERO_SHOWN], seen.restores
    started = {
        b.name: b
        for b in Backup.objects.filter(
            cluster=found, kind=Kind.VELERO, name__in=[b.name for b in backups]
        ).select_related("actor", "plan")
    }
    rows = {
        r.name: r
        for r in Restore.objects.filter(cluster=found, kind=Kind.VELERO)
        .select_related("actor")
        .order_by("-started_at")[: RESTORES_SHOWN * 3]
    }
    people = _requesters([b.requested_by for b in backups] + [r.requested_by for r in restores])
    backup_rows = [
        {
            "view": b,
            "phase": _phase(b.phase),
            "row": started.get(b.name),
            "by": people.get(b.requested_by, b.requested_by),
            "may_restore": b.phase in {"Completed", "PartiallyFailed"} and _may_restore_any(user, found, b),
        }
        for b in backups
    ]
    restore_rows = []
    for live in restores:
        restore_rows.append(
            {
                "name": live.name,
                "backup": live.backup,
                "phase": _phase(live.phase),
                "live": live,
                "row": rows.pop(live.name, None),
                "by": people.get(live.requested_by, live.requested_by),
                "started": live.started,
                "done": live.done,
            }
        )
    for row in rows.values():  # started from the console, gone from the cluster since
        preview = row.preview or {}
        if not velero.visible(user, found, [*preview.get("namespaces", []), *row.namespace_mapping.values()]):
            continue
        restore_rows.append(
            {
                "name": row.name,
                "backup": row.backup_name,
                "phase": None,
                "live": None,
                "row": row,
                "by": row.actor.get_username() if row.actor else "",
                "started": row.started_at,
                "done": row.status != Restore.Status.RUNNING,
            }
        )
    restore_rows.sort(key=lambda r: r["started"] or k8s.EPOCH, reverse=True)
    restore_rows = restore_rows[:RESTORES_SHOWN]
    may_run = access.anywhere_in(user, BACKUPS_RUN, found)
    form = None
    if may_run:
        choices, other = access.namespace_choices(user, found, BACKUPS_RUN)
        form = BackupNowForm(namespaces=choices, allow_other=other, auto_id="id_now_%s")
    context.update(
        {
            "locations": locations,
            "backups": backup_rows,
            "restores": restore_rows,
            "form": form,
            "polling": any(not r["view"].done for r in backup_rows) or any(not r["done"] for r in restore_rows),
        }
    )
    return context


def _may_restore_any(user, found: Cluster, view: k8s.BackupView) -> bool:
    names = [n for n in view.namespaces if n != "*"]
    if not names or "*" in view.namespaces:
        return access.on_cluster(user, BACKUPS_RESTORE, found)
    return any(access.on_namespaces(user, BACKUPS_RESTORE, found, [n]) for n in names)


@login_required
def cluster_velero(request, cluster_id: int):
    """The Velero part of a cluster's page (loaded by htmx, then polled while a backup or restore runs):
    ``?part=lists`` answers the backups and restores alone."""
    found = access.velero_cluster(request.user, cluster_id)
    context = _velero_context(request, found)
    if request.GET.get("part") != "lists":
        return render(request, "backups/_velero.html", context)
    if context["error"] or context["missing"]:
        context["polling"] = True  # a moment the cluster did not answer: keep following what runs
    return render(request, "backups/_velero.html#lists", context)


@login_required
def velero_backup(request, cluster_id: int):
    """Back up now (``velero backup create``) with the namespaces, labels and TTL chosen."""
    found = access.velero_cluster(request.user, cluster_id)
    if not access.anywhere_in(request.user, BACKUPS_RUN, found):
        raise Http404
    refused = pages.not_post(request)
    if refused:
        return refused
    choices, other = access.namespace_choices(request.user, found, BACKUPS_RUN)
    form = BackupNowForm(request.POST, namespaces=choices, allow_other=other, auto_id="id_now_%s")
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return pages.to_cluster(found.pk)
    data = form.cleaned_data
    try:
        backup = velero.run_backup(
            actor=request.user,
            cluster=found,
            namespaces=form.chosen_namespaces(),
            label_selector=data["label_selector"],
            ttl_hours=data["ttl_hours"],
            snapshot_volumes=data["snapshot_volumes"],
            request=request,
        )
    except (Failure, kube.KubeError) as exc:
        messages.error(request, str(exc))
        return pages.to_cluster(found.pk)
    messages.success(request, _("Velero backup %(name)s started.") % {"name": backup.name})
    return pages.to_cluster(found.pk, backup.job_id)


# Velero: restore, logs --------------------------------------------------------------------------------------------


def _read_backup(user, found: Cluster, name: str) -> k8s.BackupView:
    """Velero's backup ``name`` as the person; 404 when missing or not theirs to see. KubeError: the cluster."""
    view = velero.backup_of(actor=user, cluster=found, name=name)
    if view is None:
        raise Http404
    return view


def _selection(data, view: k8s.BackupView) -> tuple[list[str], dict[str, str]]:
    """The namespaces chosen to restore and where each goes, from the restore form."""
    if "*" in view.namespaces:
        namespaces = split_names(data.get("namespaces", ""))
        mapping = {}
        for line in (data.get("mapping") or "").splitlines():
            source, _eq, dest = line.partition("=")
            if source.strip() and dest.strip():
                mapping[source.strip()] = dest.strip()
        return namespaces, mapping
    namespaces = [n for n in data.getlist("namespace") if n in view.namespaces]
    mapping = {n: (data.get(f"to_{n}") or "").strip() for n in namespaces}
    return namespaces, {k: v for k, v in mapping.items() if v and v != k}


def _restore_page(request, found: Cluster, name: str, *, status: int = 200):
    user = request.user
    context: dict = {"cluster": found, "name": name, "error": "", "preview": None, "view": None}
    try:
        view = _read_backup(user, found, name)
    except (kube.KubeError, Failure) as exc:
        context["error"] = str(exc)
        return render(request, "backups/restore.html", context, status=status)
    if not _may_restore_any(user, found, view):
        raise Http404
    context["view"] = view
    context["phase"] = _phase(view.phase)
    context["whole"] = "*" in view.namespaces
    asked = request.GET.get("preview") == "1"
    namespaces, mapping = _selection(request.GET, view) if asked else ([], {})
    if not asked:
        namespaces = [
            n for n in view.namespaces if n != "*" and access.on_namespaces(user, BACKUPS_RESTORE, found, [n])
        ]
    context["choices"] = [
        {
            "name": n,
            "chosen": n in namespaces,
            "to": mapping.get(n, n),
            "allowed": access.on_namespaces(user, BACKUPS_RESTORE, found, [n]),
        }
        for n in view.namespaces
        if n != "*"
    ]
    context["typed"] = " ".join(namespaces) if context["whole"] else ""
    context["typed_mapping"] = "\n".join(f"{k}={v}" for k, v in mapping.items())
    context["namespaces"], context["mapping"] = namespaces, mapping
    if asked:
        if not namespaces:
            context["error"] = _("Pick at least one namespace to restore.")
        else:
            try:
                context["preview"] = velero.preview(
                    actor=user, cluster=found, backup_name=name, namespaces=namespaces, mapping=mapping
                )
            except (kube.KubeError, Failure) as exc:
                context["error"] = str(exc)
    return render(request, "backups/restore.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def velero_restore(request, cluster_id: int, name: str):
    found = access.velero_cluster(request.user, cluster_id)
    if not access.anywhere_in(request.user, BACKUPS_RESTORE, found):
        raise Http404
    if request.method == "POST":
        return _restore(request, found, name)
    return _restore_page(request, found, name)


@require_recent_auth
def _restore(request, found: Cluster, name: str):
    user = request.user
    try:
        view = _read_backup(user, found, name)
    except (kube.KubeError, Failure) as exc:
        messages.error(request, str(exc))
        return redirect("backups:velero_restore", found.pk, name)
    namespaces, mapping = _selection(request.POST, view)
    back = reverse("backups:velero_restore", args=[found.pk, name])
    query = [("preview", "1")]
    if "*" in view.namespaces:
        query += [("namespaces", " ".join(namespaces)), ("mapping", "\n".join(f"{k}={v}" for k, v in mapping.items()))]
    else:
        query += [("namespace", n) for n in namespaces] + [(f"to_{k}", v) for k, v in mapping.items()]
    if not namespaces:
        messages.error(request, _("Pick at least one namespace to restore."))
        return redirect(back)
    try:
        row = velero.restore(
            actor=user,
            cluster=found,
            backup_name=name,
            namespaces=namespaces,
            mapping=mapping,
            request=request,
            break_glass=gates.break_glass_of(request),
        )
    except gates.ApprovalRequired as exc:  # four-eyes approval: recorded, nothing restored yet
        messages.warning(request, str(exc))
        return redirect("compliance:change_detail", exc.request_id)
    except (kube.KubeError, Failure) as exc:
        messages.error(request, str(exc))
        return redirect(f"{back}?{urlencode(query)}")
    messages.success(
        request, _("Restore %(name)s started from backup %(backup)s.") % {"name": row.name, "backup": name}
    )
    return pages.to_cluster(found.pk, row.job_id)


def _log_page(request, found: Cluster, kind: str, name: str, title: str):
    lines, error = [], ""
    try:
        lines = velero.log_lines(actor=request.user, cluster=found, kind=kind, name=name, max_lines=LOG_LINES)
    except (kube.KubeError, Failure) as exc:
        error = str(exc)
    context = {"cluster": found, "name": name, "kind": kind, "title": title, "lines": lines, "error": error}
    return render(request, "backups/velero_log.html", context)


@login_required
def velero_backup_log(request, cluster_id: int, name: str):
    found = access.velero_cluster(request.user, cluster_id)
    try:
        _read_backup(request.user, found, name)
    except (kube.KubeError, Failure) as exc:
        context = {"cluster": found, "name": name, "kind": "BackupLog", "lines": [], "error": str(exc)}
        return render(request, "backups/velero_log.html", context)
    return _log_page(request, found, "BackupLog", name, _("Log of backup %(name)s") % {"name": name})


@login_required
def velero_restore_log(request, cluster_id: int, name: str):
    found = access.velero_cluster(request.user, cluster_id)
    try:
        view = velero.restore_of(actor=request.user, cluster=found, name=name)
    except (kube.KubeError, Failure) as exc:
        context = {"cluster": found, "name": name, "kind": "RestoreLog", "lines": [], "error": str(exc)}
        return render(request, "backups/velero_log.html", context)
    if view is None:
        raise Http404
    return _log_page(request, found, "RestoreLog", name, _("Log of restore %(name)s") % {"name": name})
