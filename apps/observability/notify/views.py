"""Notification pages: a project's receivers, the form, delete, a test notification; the alertmanager.yml for a
plain Alertmanager (whole-cluster holders); and the relay Alertmanager posts robot receivers' alerts to."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.models import Project
from apps.core.htmx import render
from apps.observability.models import Receiver
from apps.observability.notify import relay, robots, services
from apps.observability.notify.forms import ReceiverForm


def _project(user, project_id: int) -> Project:
    project = Project.objects.select_related("cluster").filter(pk=project_id).first()
    if project is None or not services.may_manage(user, project):
        raise Http404
    return project


def _receiver(user, project_id: int, pk: int) -> tuple[Project, Receiver]:
    project = _project(user, project_id)
    return project, get_object_or_404(Receiver.objects.select_related("project__cluster"), project=project, pk=pk)


@login_required
def notify_home(request):
    found = services.projects(request.user)
    if not found:
        raise Http404
    return receiver_list(request, found[0].pk)


@login_required
def receiver_list(request, project_id: int):
    project = _project(request.user, project_id)
    receivers = list(Receiver.objects.filter(project=project).select_related("project"))
    present = services.in_inventory(project, receivers)
    rows = [
        {
            "receiver": r,
            "target": services.shown_target(r),
            "namespaces": r.watched_namespaces,
            "missing": [n for n in r.watched_namespaces if (n, r.object_name) not in present],
        }
        for r in receivers
    ]
    context = {
        "project": project,
        "projects": services.projects(request.user),
        "rows": rows,
        "whole_cluster": services.whole_cluster(request.user, project.cluster),
    }
    return render(request, "observability/notify/receiver_list.html", context)


def _form_page(request, project, form, receiver=None, error: str = ""):
    context = {"project": project, "form": form, "receiver": receiver, "error": error}
    return render(request, "observability/notify/receiver_form.html", context, status=400 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def receiver_create(request, project_id: int):
    return _edit(request, _project(request.user, project_id), None)


@login_required
@require_http_methods(["GET", "POST"])
def receiver_edit(request, project_id: int, pk: int):
    project, receiver = _receiver(request.user, project_id, pk)
    return _edit(request, project, receiver)


def _edit(request, project, receiver):
    form = ReceiverForm(request.POST or None, project=project, receiver=receiver)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.save(
                actor=request.user, project=project, draft=form.draft(), receiver=receiver, request=request
            )
        except services.NotifyError as exc:
            return _form_page(request, project, form, receiver, error=str(exc))
        messages.success(
            request,
            _("Receiver %(name)s was written to %(cluster)s as AlertmanagerConfig %(object)s.")
            % {"name": saved.name, "cluster": project.cluster.name, "object": saved.object_name},
        )
        return redirect("observability:receiver_list", project.pk)
    return _form_page(request, project, form, receiver)


@login_required
@require_POST
def receiver_delete(request, project_id: int, pk: int):
    project, receiver = _receiver(request.user, project_id, pk)
    try:
        services.delete(actor=request.user, receiver=receiver, request=request)
    except services.NotifyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Receiver %(name)s was removed.") % {"name": receiver.name})
    return redirect("observability:receiver_list", project.pk)


@login_required
@require_POST
def receiver_test(request, project_id: int, pk: int):
    project, receiver = _receiver(request.user, project_id, pk)
    try:
        services.send_test(actor=request.user, receiver=receiver, request=request)
    except services.NotifyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("A test alert was handed to Alertmanager; receiver %(name)s should get it within a minute.")
            % {"name": receiver.name},
        )
    return redirect("observability:receiver_list", project.pk)


@login_required
def plain_config(request, project_id: int):
    """The alertmanager.yml of the project's cluster, with amtool's verdict; whole-cluster holders only."""
    project = _project(request.user, project_id)
    if not services.whole_cluster(request.user, project.cluster):
        raise Http404
    cluster = project.cluster
    text = services.plain_config(cluster, request=request)
    if request.GET.get("download"):
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="alertmanager.yml"'
        return response
    # amtool needs the secret files to be there, not what they hold: placeholders keep the secrets off the disk.
    files = dict.fromkeys(services.render.secret_files(services.receivers_of(cluster)), "placeholder")
    problems = services.check(text, files)
    context = {"project": project, "cluster": cluster, "text": text, "problems": problems}
    return render(request, "observability/notify/plain_config.html", context)


@csrf_exempt
@require_POST
def relay_view(request, receiver_id: int):
    """Alertmanager's webhook for a robot receiver: bounded, checked, worded, sent; short JSON sentences."""
    try:
        receiver = relay.authorized(receiver_id, request.headers.get("Authorization", ""))
        try:
            length = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > relay.MAX_BODY:
            raise relay.Refusal(413, "The body is larger than 1 MiB.")
        alerts = relay.parse(request.read(relay.MAX_BODY + 1))
        relay.deliver(receiver, alerts, services.relay_base_url(request))
    except relay.Refusal as refusal:
        return JsonResponse({"status": "refused", "error": refusal.sentence}, status=refusal.status)
    except robots.RobotError as exc:
        return JsonResponse({"status": "failed", "error": str(exc)}, status=502)
    return JsonResponse({"status": "sent", "alerts": len(alerts)})
