"""The backups pages: every cluster's plans and how fresh their newest good backup is (home), one cluster's plans,
etcd snapshots and Velero backups and restores (cluster, its Velero part loaded with htmx), the plan forms, a
Velero restore with its preview, the etcd restore runbook, and the platform's storage targets, etcd access,
Velero namespaces and Kubemate's own database plans.

Views authorize (access.py: 404 for what a person may not see or do, as for what is missing), validate a form,
call a service (services.py, velero/services.py), render. Refusals, and what the cluster or the storage said, come
back as a sentence, never as a server error. Velero's objects are read live from the cluster as the person and
filtered to the namespaces they hold. Actions with a dangerous capability (backups.restore, backups.admin) need a
recent password proof, which the confirmation dialog sends with the form (``require_recent_auth``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from ipaddress import ip_address
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

from cron_descriptor import ExpressionDescriptor, FormatException, MissingFieldException, Options
from cron_descriptor import WrongArgumentException as CronArgumentException
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from apps.accounts import access as grants
from apps.accounts.capabilities import BACKUPS_RESTORE, BACKUPS_RUN, BACKUPS_SCHEDULE, BACKUPS_VIEW
from apps.backups import access, freshness, services
from apps.backups.forms import (
    BackupNowForm,
    EtcdAccessForm,
    PlanForm,
    TargetForm,
    VeleroNamespaceForm,
    split_names,
)
from apps.backups.models import Backup, EtcdAccess, Kind, Plan, Restore, Target
from apps.backups.velero import k8s
from apps.backups.velero import services as velero
from apps.clusters import kube
from apps.clusters.models import Cluster, Resource
from apps.core.deferred import Failure
from apps.core.htmx import render
from apps.core.models import Job
from apps.core.reauth import require_recent_auth

SNAPSHOTS_SHOWN = 50
DATABASE_BACKUPS_SHOWN = 30
VELERO_SHOWN = 100
RESTORES_SHOWN = 30
NAMESPACE_CHOICES = 500
LOG_LINES = 2000
SPARK_WIDTH, SPARK_HEIGHT = 120, 28
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


# Who may see what --------------------------------------------------------------------------------------------------


def _holds(user, code: str) -> bool:
    """``code`` held somewhere: on the platform, a cluster or some namespace."""
    held = grants.scope(user, code)
    return held.everywhere or bool(held.clusters) or any(held.namespaces.values())


def _viewer(user) -> None:
    if not (_holds(user, BACKUPS_VIEW) or access.is_admin(user)):
        raise Http404


def _admin(user) -> None:
    if not access.is_admin(user):
        raise Http404


def _not_post(request):
    """405 for anything but POST, answered after the lookups: a person who may not see the object gets 404 for
    any method, as for a missing one."""
    return None if request.method == "POST" else HttpResponseNotAllowed(["POST"])


def _clusters(user) -> list[Cluster]:
    return [c for c in grants.clusters(user).order_by("name") if access.sees_cluster(user, c)]


def _cluster(user, cluster_id: int) -> Cluster:
    found = grants.clusters(user).filter(pk=cluster_id).first()
    if found is None or not access.sees_cluster(user, found):
        raise Http404
    return found


def _velero_cluster(user, cluster_id: int) -> Cluster:
    cluster = _cluster(user, cluster_id)
    if not cluster.velero_namespace:
        raise Http404
    return cluster


def _plan(user, pk: int, code: str) -> Plan:
    """The plan, when ``user`` holds ``code`` for it (database plans: backups.admin); 404 otherwise."""
    plan = Plan.objects.select_related("cluster", "target", "created_by").filter(pk=pk).first()
    if plan is None or not access.may_plan(user, code, plan):
        raise Http404
    return plan


def _visible_plans(user, plans) -> list[Plan]:
    return [p for p in plans if access.may_plan(user, BACKUPS_VIEW, p)]


def _anywhere_in(user, code: str, cluster: Cluster) -> bool:
    """``code`` held on ``cluster`` or in one of its namespaces."""
    seen = grants.visible_namespaces(user, code, cluster=cluster)
    return seen is None or bool(seen)


def _namespace_choices(user, cluster: Cluster, code: str) -> tuple[list[str], bool]:
    """The namespaces offered for ``code``: a project's people their own; whole-cluster holders the cluster's
    namespaces (from the inventory) and may type others."""
    held = grants.visible_namespaces(user, code, cluster=cluster)
    if held is not None:
        return sorted(held), False
    names = Resource.objects.filter(cluster=cluster, kind="Namespace").order_by("name").values_list("name", flat=True)
    return list(names[:NAMESPACE_CHOICES]), True


# How fresh each plan is --------------------------------------------------------------------------------------------


@dataclass
class PlanRow:
    plan: Plan
    fresh: freshness.Freshness
    schedule: str
    spark: dict | None
    may_run: bool
    may_edit: bool

    @property
    def state(self) -> str:
        """fresh, stale (older than the RPO), none (no good backup yet) or unknown (Velero could not be read)."""
        if self.fresh.unknown:
            return "unknown"
        if self.fresh.last_good is None:
            return "none"
        return "stale" if self.fresh.stale else "fresh"


def _freshness(user, plans: list[Plan]) -> dict[int, freshness.Freshness]:
    """Each plan's freshness: etcd and database plans from their rows in one query (the last backups of every plan
    at once), Velero plans from the cluster, read once per cluster as ``user``."""
    found: dict[int, freshness.Freshness] = {}
    kept = [p for p in plans if p.kind != Kind.VELERO]
    if kept:
        rows: dict[int, list[Backup]] = {}
        recent = (
            Backup.objects.filter(plan__in=kept)
            .exclude(status=Backup.Status.RUNNING)
            .annotate(
                row=Window(RowNumber(), partition_by=[F("plan_id")], order_by=[F("started_at").desc(), F("pk").desc()])
            )
            .filter(row__lte=freshness.TREND * 2)
            .only("plan_id", "status", "size_bytes", "started_at", "finished_at")
            .order_by("plan_id", "-started_at", "-pk")
        )
        for backup in recent:
            rows.setdefault(backup.plan_id, []).append(backup)
        for plan in kept:
            taken = rows.get(plan.pk, [])
            good = [b for b in taken if b.status == Backup.Status.SUCCEEDED]
            failed = 0
            for backup in taken:
                if backup.status == Backup.Status.SUCCEEDED:
                    break
                failed += 1
            last = good[0].finished_at if good else None
            trend = [b.size_bytes or 0 for b in reversed(good[: freshness.TREND])]
            found[plan.pk] = freshness.Freshness(plan, last, trend, failed)
    asked = []
    for plan in plans:
        if plan.kind != Kind.VELERO:
            continue
        if plan.cluster.velero_namespace:
            asked.append(plan)
        else:
            found[plan.pk] = freshness.Freshness(plan, None, unknown=_("Velero is not set up for this cluster."))
    for fresh in freshness.of_plans(asked, as_user=user):
        found[fresh.plan.pk] = fresh
    return found


def schedule_words(cron: str) -> str:
    """``0 2 * * *`` as "At 02:00", in the reader's language ("" when it cannot be said)."""
    if not cron:
        return ""
    options = Options()
    options.locale_code = "zh_CN" if (translation.get_language() or "").startswith("zh") else "en_US"
    options.use_24hour_time_format = True
    try:
        return ExpressionDescriptor(cron, options).get_description()
    except (FormatException, MissingFieldException, CronArgumentException, ValueError, KeyError, IndexError):
        return ""


def sparkline(values: list[int]) -> dict | None:
    """The points of a small line of ``values`` (oldest first) inside SPARK_WIDTH x SPARK_HEIGHT."""
    if len(values) < 2:
        return None
    low, high = min(values), max(values)
    span = (high - low) or 1
    step = (SPARK_WIDTH - 4) / (len(values) - 1)
    points = " ".join(
        f"{2 + i * step:.1f},{SPARK_HEIGHT - 3 - (v - low) * (SPARK_HEIGHT - 6) / span:.1f}"
        for i, v in enumerate(values)
    )
    return {
        "points": points,
        "width": SPARK_WIDTH,
        "height": SPARK_HEIGHT,
        "first": values[0],
        "last": values[-1],
        "low": low,
        "high": high,
        "count": len(values),
    }


def _plan_rows(user, plans: list[Plan]) -> list[PlanRow]:
    fresh = _freshness(user, plans)
    return [
        PlanRow(
            plan=plan,
            fresh=fresh[plan.pk],
            schedule=schedule_words(plan.cron),
            spark=sparkline(fresh[plan.pk].trend),
            may_run=access.may_plan(user, BACKUPS_RUN, plan),
            may_edit=access.may_plan(user, BACKUPS_SCHEDULE, plan),
        )
        for plan in plans
    ]


def _started_job(request) -> Job | None:
    """The Job named by ``?job=`` when it is the person's own: what they just started, shown with its link."""
    try:
        pk = uuid.UUID(request.GET.get("job", ""))
    except ValueError:
        return None
    found = Job.objects.filter(pk=pk).first()
    if found is None or (found.actor_id != request.user.pk and not request.user.is_superuser):
        return None
    return found


def _to_cluster(cluster_id: int, job_id=None):
    url = reverse("backups:cluster", args=[cluster_id])
    return redirect(f"{url}?{urlencode({'job': job_id})}" if job_id else url)


def _to_platform(job_id=None):
    url = reverse("backups:platform")
    return redirect(f"{url}?{urlencode({'job': job_id})}" if job_id else url)


# Home --------------------------------------------------------------------------------------------------------------


@login_required
def home(request):
    user = request.user
    _viewer(user)
    clusters = _clusters(user)
    plans = _visible_plans(
        user,
        Plan.objects.filter(cluster__in=clusters)
        .exclude(kind=Kind.DATABASE)
        .select_related("cluster", "target")
        .order_by("kind", "name"),
    )
    is_admin = access.is_admin(user)
    database_plans = (
        list(Plan.objects.filter(kind=Kind.DATABASE).select_related("target").order_by("name")) if is_admin else []
    )
    rows = _plan_rows(user, plans + database_plans)
    by_cluster: dict[int, list[PlanRow]] = {}
    for row in rows:
        if row.plan.cluster_id is not None:
            by_cluster.setdefault(row.plan.cluster_id, []).append(row)
    sections = [
        {
            "cluster": cluster,
            "rows": by_cluster.get(cluster.pk, []),
            "stale": sum(1 for r in by_cluster.get(cluster.pk, []) if r.state in {"stale", "none"}),
        }
        for cluster in clusters
    ]
    context = {
        "sections": sections,
        "is_admin": is_admin,
        "targets": list(Target.objects.order_by("name")) if is_admin else [],
        "database_rows": [r for r in rows if r.plan.kind == Kind.DATABASE],
    }
    return render(request, "backups/home.html", context)


# A cluster ---------------------------------------------------------------------------------------------------------


@login_required
def cluster(request, cluster_id: int):
    user = request.user
    found = _cluster(user, cluster_id)
    plans = _visible_plans(
        user, Plan.objects.filter(cluster=found).select_related("cluster", "target").order_by("kind", "name")
    )
    whole = access.on_cluster(user, BACKUPS_VIEW, found)
    snapshots = []
    if whole:
        snapshots = list(
            Backup.objects.filter(cluster=found, kind=Kind.ETCD)
            .select_related("plan", "target", "actor")
            .order_by("-started_at", "-pk")[:SNAPSHOTS_SHOWN]
        )
    context = {
        "cluster": found,
        "rows": _plan_rows(user, plans),
        "whole": whole,
        "snapshots": snapshots,
        "has_good_snapshot": any(s.is_good for s in snapshots),
        "etcd_access": EtcdAccess.objects.filter(cluster=found).first() if whole else None,
        "may_etcd_plan": access.on_cluster(user, BACKUPS_SCHEDULE, found),
        "may_velero_plan": bool(found.velero_namespace) and _anywhere_in(user, BACKUPS_SCHEDULE, found),
        "has_targets": Target.objects.exists(),
        "is_admin": access.is_admin(user),
        "started": _started_job(request),
    }
    return render(request, "backups/cluster.html", context)


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
    namespace = found.velero_namespace
    context: dict = {"cluster": found, "error": "", "missing": False, "polling": False}
    try:
        with kube.client(found, as_user=user) as k:
            if not k8s.serves_velero(k):
                context["missing"] = True
                return context
            locations = k8s.locations(k, namespace)
            backups = k8s.backups(k, namespace)
            restores = k8s.restores(k, namespace)
    except (kube.KubeError, Failure) as exc:
        context["error"] = str(exc) or _("The cluster could not be read.")
        return context
    backups = [b for b in backups if velero.visible(user, found, b.namespaces)][:VELERO_SHOWN]
    restores = [r for r in restores if velero.visible(user, found, [*r.namespaces, *r.mapping.values()])]
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
    may_run = _anywhere_in(user, BACKUPS_RUN, found)
    form = None
    if may_run:
        choices, other = _namespace_choices(user, found, BACKUPS_RUN)
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
    found = _velero_cluster(request.user, cluster_id)
    context = _velero_context(request, found)
    if request.GET.get("part") != "lists":
        return render(request, "backups/_velero.html", context)
    if context["error"] or context["missing"]:
        context["polling"] = True  # a moment the cluster did not answer: keep following what runs
    return render(request, "backups/_velero.html#lists", context)


@login_required
def velero_backup(request, cluster_id: int):
    """Back up now (``velero backup create``) with the namespaces, labels and TTL chosen."""
    found = _velero_cluster(request.user, cluster_id)
    if not _anywhere_in(request.user, BACKUPS_RUN, found):
        raise Http404
    refused = _not_post(request)
    if refused:
        return refused
    choices, other = _namespace_choices(request.user, found, BACKUPS_RUN)
    form = BackupNowForm(request.POST, namespaces=choices, allow_other=other, auto_id="id_now_%s")
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return _to_cluster(found.pk)
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
        return _to_cluster(found.pk)
    messages.success(request, _("Velero backup %(name)s started.") % {"name": backup.name})
    return _to_cluster(found.pk, backup.job_id)


# Velero: restore, logs --------------------------------------------------------------------------------------------


def _read_backup(user, found: Cluster, name: str) -> k8s.BackupView:
    """Velero's backup ``name`` as the person; 404 when missing or not theirs to see. KubeError: the cluster."""
    with kube.client(found, as_user=user) as k:
        obj = k.read("Backup", found.velero_namespace, name)
    if obj is None:
        raise Http404
    view = k8s.backup_view(obj)
    if not velero.visible(user, found, view.namespaces):
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
    found = _velero_cluster(request.user, cluster_id)
    if not _anywhere_in(request.user, BACKUPS_RESTORE, found):
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
            actor=user, cluster=found, backup_name=name, namespaces=namespaces, mapping=mapping, request=request
        )
    except (kube.KubeError, Failure) as exc:
        messages.error(request, str(exc))
        return redirect(f"{back}?{urlencode(query)}")
    messages.success(
        request, _("Restore %(name)s started from backup %(backup)s.") % {"name": row.name, "backup": name}
    )
    return _to_cluster(found.pk, row.job_id)


def _log_page(request, found: Cluster, kind: str, name: str, title: str):
    lines, error = [], ""
    try:
        with kube.client(found, as_user=request.user) as k:
            lines = k8s.log_text(k, found.velero_namespace, kind, name, max_lines=LOG_LINES)
    except (kube.KubeError, Failure) as exc:
        error = str(exc)
    context = {"cluster": found, "name": name, "kind": kind, "title": title, "lines": lines, "error": error}
    return render(request, "backups/velero_log.html", context)


@login_required
def velero_backup_log(request, cluster_id: int, name: str):
    found = _velero_cluster(request.user, cluster_id)
    try:
        _read_backup(request.user, found, name)
    except (kube.KubeError, Failure) as exc:
        context = {"cluster": found, "name": name, "kind": "BackupLog", "lines": [], "error": str(exc)}
        return render(request, "backups/velero_log.html", context)
    return _log_page(request, found, "BackupLog", name, _("Log of backup %(name)s") % {"name": name})


@login_required
def velero_restore_log(request, cluster_id: int, name: str):
    found = _velero_cluster(request.user, cluster_id)
    try:
        with kube.client(found, as_user=request.user) as k:
            obj = k.read("Restore", found.velero_namespace, name)
    except (kube.KubeError, Failure) as exc:
        context = {"cluster": found, "name": name, "kind": "RestoreLog", "lines": [], "error": str(exc)}
        return render(request, "backups/velero_log.html", context)
    if obj is None:
        raise Http404
    view = k8s.restore_view(obj)
    if not velero.visible(request.user, found, [*view.namespaces, *view.mapping.values()]):
        raise Http404
    return _log_page(request, found, "RestoreLog", name, _("Log of restore %(name)s") % {"name": name})


# Plans -------------------------------------------------------------------------------------------------------------


def _plan_form(request, *, kind: str, cluster: Cluster | None, plan: Plan | None):
    user = request.user
    choices, other = ([], False)
    if kind == Kind.VELERO:
        choices, other = _namespace_choices(user, cluster, BACKUPS_SCHEDULE)
        if plan is not None and not other:
            choices = sorted(set(choices) | set(plan.namespaces) - {"*"})
    form = PlanForm(request.POST or None, kind=kind, plan=plan, namespaces=choices, allow_other=other)
    error = ""
    if request.method == "POST" and form.is_valid():
        clash = Plan.objects.filter(cluster=cluster, name=form.cleaned_data["name"])
        if cluster is None:
            clash = clash.filter(kind=Kind.DATABASE)
        if plan is not None:
            clash = clash.exclude(pk=plan.pk)
        if clash.exists():
            form.add_error("name", _("A plan called %(name)s exists already.") % {"name": form.cleaned_data["name"]})
        else:
            target = form.apply(plan if plan is not None else Plan(kind=kind, cluster=cluster))
            try:
                if kind == Kind.VELERO:
                    saved = velero.save_plan(actor=user, plan=target, request=request)
                else:
                    saved = services.save_plan(actor=user, plan=target, request=request)
            except (Failure, kube.KubeError) as exc:
                error = str(exc)
            else:
                messages.success(request, _("Plan %(name)s saved.") % {"name": saved.name})
                return _to_platform() if cluster is None else _to_cluster(cluster.pk)
    context = {
        "form": form,
        "kind": kind,
        "kind_label": Kind(kind).label,
        "cluster": cluster,
        "plan": plan,
        "error": error,
        "has_targets": Target.objects.exists(),
    }
    return render(request, "backups/plan_form.html", context, status=400 if error or form.errors else 200)


_save_database_plan = require_recent_auth(_plan_form)


@login_required
@require_http_methods(["GET", "POST"])
def plan_create(request, cluster_id: int):
    """A new etcd (``?kind=etcd``) or Velero (``?kind=velero``) plan of a cluster."""
    user = request.user
    found = _cluster(user, cluster_id)
    kind = request.GET.get("kind") or request.POST.get("kind") or Kind.ETCD
    if kind == Kind.ETCD:
        allowed = access.on_cluster(user, BACKUPS_SCHEDULE, found)
    elif kind == Kind.VELERO:
        allowed = bool(found.velero_namespace) and _anywhere_in(user, BACKUPS_SCHEDULE, found)
    else:
        allowed = False
    if not allowed:
        raise Http404
    return _plan_form(request, kind=kind, cluster=found, plan=None)


@login_required
@require_http_methods(["GET", "POST"])
def database_plan_create(request):
    _admin(request.user)
    form = _save_database_plan if request.method == "POST" else _plan_form
    return form(request, kind=Kind.DATABASE, cluster=None, plan=None)


@login_required
@require_http_methods(["GET", "POST"])
def plan_edit(request, pk: int):
    plan = _plan(request.user, pk, BACKUPS_SCHEDULE)
    form = _save_database_plan if plan.kind == Kind.DATABASE and request.method == "POST" else _plan_form
    return form(request, kind=plan.kind, cluster=plan.cluster, plan=plan)


@login_required
def plan_delete(request, pk: int):
    plan = _plan(request.user, pk, BACKUPS_SCHEDULE)
    refused = _not_post(request)
    if refused:
        return refused
    if plan.kind == Kind.DATABASE:
        return _delete_database_plan(request, plan)
    return _delete_plan(request, plan)


def _delete_plan(request, plan: Plan):
    try:
        if plan.kind == Kind.VELERO:
            velero.delete_plan(actor=request.user, plan=plan, request=request)
        else:
            services.delete_plan(actor=request.user, plan=plan, request=request)
    except (Failure, kube.KubeError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Plan %(name)s deleted.") % {"name": plan.name})
    return _to_platform() if plan.cluster_id is None else _to_cluster(plan.cluster_id)


_delete_database_plan = require_recent_auth(_delete_plan)


@login_required
def plan_run(request, pk: int):
    plan = _plan(request.user, pk, BACKUPS_RUN)
    refused = _not_post(request)
    if refused:
        return refused
    if plan.kind == Kind.DATABASE:
        return _run_database_plan(request, plan)
    return _run_plan(request, plan)


def _run_plan(request, plan: Plan):
    try:
        if plan.kind == Kind.VELERO:
            backup = velero.run_backup(actor=request.user, cluster=plan.cluster, plan=plan, request=request)
        else:
            backup = services.start_backup(actor=request.user, plan=plan, request=request)
    except (Failure, kube.KubeError) as exc:
        messages.error(request, str(exc))
        return _to_platform() if plan.cluster_id is None else _to_cluster(plan.cluster_id)
    messages.success(request, _("Backup %(name)s started.") % {"name": backup.name})
    if plan.cluster_id is None:
        return _to_platform(backup.job_id)
    return _to_cluster(plan.cluster_id, backup.job_id)


_run_database_plan = require_recent_auth(_run_plan)


# The etcd restore runbook -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    name: str
    client_url: str
    peer_url: str
    host: str


def members_of(endpoints: list[str]) -> list[Member]:
    """etcd's members as the runbook names them: from each client URL, the member's host, its peer URL on port
    2380 and a name (the host's first label; members reached by address are called etcd-1, etcd-2...)."""
    found = []
    for n, endpoint in enumerate(endpoints, start=1):
        parts = urlsplit(endpoint)
        host = parts.hostname or endpoint
        try:
            ip_address(host)
            name = f"etcd-{n}"
        except ValueError:
            name = host.split(".")[0]
        shown = f"[{host}]" if ":" in host else host
        found.append(Member(name, endpoint, f"{parts.scheme or 'https'}://{shown}:2380", host))
    return found


@login_required
def runbook(request, cluster_id: int):
    user = request.user
    found = _cluster(user, cluster_id)
    if not access.on_cluster(user, BACKUPS_VIEW, found):
        raise Http404
    snapshot = (
        Backup.objects.filter(cluster=found, kind=Kind.ETCD, status=Backup.Status.SUCCEEDED, removed_at__isnull=True)
        .select_related("target", "plan")
        .order_by("-started_at", "-pk")
        .first()
    )
    etcd_access = EtcdAccess.objects.filter(cluster=found).first()
    members = members_of(list(etcd_access.endpoints) if etcd_access else [])
    context = {
        "cluster": found,
        "snapshot": snapshot,
        "target": snapshot.target if snapshot else None,
        "etcd_access": etcd_access,
        "members": members,
        "initial_cluster": ",".join(f"{m.name}={m.peer_url}" for m in members),
        "endpoints": ",".join(m.client_url for m in members),
        "token": f"{found.name}-restore-{timezone.now():%Y%m%d}",
        "sealed": f"{snapshot.name}.db.gz.sealed" if snapshot else "snapshot.db.gz.sealed",
        "username": user.get_username(),
    }
    return render(request, "backups/runbook.html", context)


# The platform: storage targets, etcd access, Velero namespaces, Kubemate's database -------------------------------


@login_required
def platform(request):
    user = request.user
    _admin(user)
    database_plans = list(Plan.objects.filter(kind=Kind.DATABASE).select_related("target", "created_by"))
    clusters = list(Cluster.objects.select_related("etcd_access").order_by("name"))
    context = {
        "targets": list(Target.objects.select_related("created_by").order_by("name")),
        "clusters": [
            {
                "cluster": c,
                "etcd": getattr(c, "etcd_access", None),
                "form": VeleroNamespaceForm(initial={"namespace": c.velero_namespace}, auto_id=f"id_c{c.pk}_%s"),
            }
            for c in clusters
        ],
        "rows": _plan_rows(user, database_plans),
        "database_backups": list(
            Backup.objects.filter(kind=Kind.DATABASE)
            .select_related("plan", "target", "actor")
            .order_by("-started_at", "-pk")[:DATABASE_BACKUPS_SHOWN]
        ),
        "started": _started_job(request),
    }
    return render(request, "backups/platform.html", context)


def _target_form(request, target: Target | None):
    _admin(request.user)
    form = TargetForm(request.POST or None, target=target)
    error = ""
    if request.method == "POST" and form.is_valid():
        changed, access_key, secret_key = form.apply(target if target is not None else Target())
        try:
            saved = services.save_target(
                actor=request.user, target=changed, access_key=access_key, secret_key=secret_key, request=request
            )
        except Failure as exc:
            error = str(exc)
            if target is not None:
                target.refresh_from_db()
        else:
            messages.success(request, _("Storage target %(name)s answered and was saved.") % {"name": saved.name})
            return _to_platform()
    context = {"form": form, "target": target, "error": error}
    return render(request, "backups/target_form.html", context, status=400 if error or form.errors else 200)


_save_target = require_recent_auth(_target_form)


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("access_key", "secret_key")
def target_create(request):
    _admin(request.user)
    return (_save_target if request.method == "POST" else _target_form)(request, None)


def _target(pk: int) -> Target:
    found = Target.objects.filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("access_key", "secret_key")
def target_edit(request, pk: int):
    _admin(request.user)
    target = _target(pk)
    return (_save_target if request.method == "POST" else _target_form)(request, target)


@login_required
def target_delete(request, pk: int):
    _admin(request.user)
    target = _target(pk)
    return _not_post(request) or _delete_target(request, target)


@require_recent_auth
def _delete_target(request, target: Target):
    try:
        services.delete_target(actor=request.user, target=target, request=request)
    except Failure as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Storage target %(name)s was removed.") % {"name": target.name})
    return _to_platform()


@login_required
def target_check(request, pk: int):
    """Probe the target again (write, read and delete an object) and count what it holds."""
    _admin(request.user)
    target = _target(pk)
    refused = _not_post(request)
    if refused:
        return refused
    error = services.check_target(target)
    if error:
        messages.error(request, _("Storage target %(name)s: %(error)s") % {"name": target.name, "error": error})
    else:
        messages.success(request, _("Storage target %(name)s answered.") % {"name": target.name})
    return _to_platform()


def _etcd_form(request, found: Cluster):
    _admin(request.user)
    current = EtcdAccess.objects.filter(cluster=found).first()
    form = EtcdAccessForm(request.POST or None, access=current)
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.save_etcd_access(
                actor=request.user,
                cluster=found,
                endpoints=data["endpoints"],
                ca_pem=data["ca_pem"].strip(),
                cert_pem=data["cert_pem"].strip(),
                key_pem=data["key_pem"].strip(),
                request=request,
            )
        except Failure as exc:
            error = str(exc)
        else:
            messages.success(request, _("etcd of %(cluster)s answered; access saved.") % {"cluster": found.name})
            return _to_platform()
    context = {"form": form, "cluster": found, "etcd_access": current, "error": error}
    return render(request, "backups/etcd_access.html", context, status=400 if error or form.errors else 200)


_save_etcd = require_recent_auth(_etcd_form)


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("key_pem")
def etcd_access(request, cluster_id: int):
    _admin(request.user)
    found = Cluster.objects.filter(pk=cluster_id).first()
    if found is None:
        raise Http404
    return (_save_etcd if request.method == "POST" else _etcd_form)(request, found)


@login_required
def velero_namespace(request, cluster_id: int):
    _admin(request.user)
    found = Cluster.objects.filter(pk=cluster_id).first()
    if found is None:
        raise Http404
    return _not_post(request) or _set_velero_namespace(request, found)


@require_recent_auth
def _set_velero_namespace(request, found: Cluster):
    form = VeleroNamespaceForm(request.POST, auto_id=f"id_c{found.pk}_%s")
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return _to_platform()
    try:
        services.set_velero_namespace(
            actor=request.user, cluster=found, namespace=form.cleaned_data["namespace"], request=request
        )
    except Failure as exc:
        messages.error(request, str(exc))
    else:
        if found.velero_namespace:
            messages.success(
                request,
                _("Velero of %(cluster)s runs in namespace %(namespace)s.")
                % {"cluster": found.name, "namespace": found.velero_namespace},
            )
        else:
            messages.success(request, _("Velero is not used in %(cluster)s any more.") % {"cluster": found.name})
    return _to_platform()
