"""The audit log (search, CSV export) and "what can this user do"."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404
from django.utils import timezone

from apps.accounts import access, capabilities
from apps.accounts.capabilities import AUDIT_VIEW, USERS_MANAGE, WORKLOADS_VIEW
from apps.accounts.decorators import capability_required
from apps.accounts.forms import AuditFilterForm
from apps.accounts.models import Project
from apps.clusters.models import Cluster
from apps.core import exports
from apps.core.htmx import render
from apps.core.models import AuditEvent

User = get_user_model()
PAGE_SIZE = 50


def _filtered_events(request):
    form = AuditFilterForm(request.GET or None)
    events = AuditEvent.objects.all()
    if form.is_valid():
        events = form.filter(events)
    return form, events


@capability_required(AUDIT_VIEW)
def audit_list(request):
    form, events = _filtered_events(request)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    return render(request, "accounts/audit_list.html", context, partial="results")


@capability_required(AUDIT_VIEW)
def audit_export(request):
    """CSV of the filtered events, streamed so a year of history does not sit in memory."""
    _form, events = _filtered_events(request)
    header = [
        "seq",
        "time",
        "actor",
        "action",
        "result",
        "cluster",
        "namespace",
        "kind",
        "object",
        "address",
        "reason",
        "hash",
    ]
    rows = (
        [
            e.seq,
            e.created_at.isoformat(),
            e.actor_name,
            e.action,
            e.result,
            e.cluster,
            e.namespace,
            e.object_kind,
            e.object_name,
            e.ip or "",
            e.reason,
            e.hash,
        ]
        for e in events.order_by("seq").iterator(chunk_size=2000)
    )
    return exports.csv_response(f"kubemate-audit-{timezone.now():%Y%m%d-%H%M%S}.csv", header, rows)


def _access_page(request, subject, *, administrator: bool):
    """The console's answer for each capability next to the cluster's own (an access review as ``subject``).

    An administrator asking about someone picks among every cluster and project; a person asking about
    themselves only among the clusters they hold something in and the projects whose namespaces they see.
    """
    from apps.accounts.k8s import review_access
    from apps.clusters.kube import KubeError

    clusters = list(Cluster.objects.all() if administrator else access.clusters(subject))
    cluster = next((c for c in clusters if str(c.pk) == request.GET.get("cluster")), clusters[0] if clusters else None)
    namespace = request.GET.get("namespace", "").strip()
    projects = Project.objects.filter(cluster=cluster) if cluster else Project.objects.none()
    if not administrator:
        projects = projects.filter(access.q(subject, WORKLOADS_VIEW, namespace="namespaces__overlap"))
    rows, error = [], ""
    if cluster is not None:
        codes = list(capabilities.PROBES)
        checks = [
            (*capabilities.PROBES[code], "" if capabilities.get(code).cluster_wide else namespace) for code in codes
        ]
        try:
            answers = review_access(cluster, subject, checks)
        except KubeError as exc:
            answers, error = [None] * len(codes), str(exc)
        for code, answer in zip(codes, answers, strict=True):
            rows.append(
                {
                    "cap": capabilities.get(code),
                    "probe": capabilities.PROBES[code],
                    "console": access.may(subject, code, cluster=cluster, namespace=namespace or None),
                    "cluster": answer,
                }
            )
    platform = [
        {"cap": cap, "console": access.may(subject, cap.code)} for cap in capabilities.CAPABILITIES if cap.platform
    ]
    context = {
        "subject": subject,
        "clusters": clusters,
        "cluster": cluster,
        "namespace": namespace,
        "projects": projects,
        "rows": rows,
        "platform": platform,
        "error": error,
    }
    return render(request, "accounts/user_access.html", context, partial="matrix")


@capability_required(USERS_MANAGE)
def user_access(request, user_id: int):
    """What may this user do in a cluster/namespace (for administrators)."""
    return _access_page(request, get_object_or_404(User, pk=user_id), administrator=True)


@login_required
def my_access(request):
    """What may I do here: every signed-in user may ask about themselves."""
    return _access_page(request, request.user, administrator=False)
