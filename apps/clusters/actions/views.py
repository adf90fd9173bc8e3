"""Day-2 action views: authorize, validate, call services_actions, render a partial.

Objects are addressed as ``<cluster_id>/actions/<kind>/<namespace>/<name>/`` with
the kind in lower case and ``-`` as the namespace of cluster-scoped objects.
A missing object and a forbidden one both answer 404. Successful actions answer
with a message partial and ``HX-Trigger: resource-changed`` so the detail page
refreshes its own partials.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.shortcuts import render as django_render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts import access
from apps.accounts.reauth import require_recent_auth
from apps.clusters import kube
from apps.clusters.actions import services as services_actions
from apps.clusters.actions.forms import LogFollowForm, LogForm, ScaleForm, YamlEditForm
from apps.clusters.actions.services import ActionError, Target
from apps.clusters.kinds import BY_KIND, KINDS
from apps.clusters.models import Cluster
from apps.core.htmx import STOP_POLLING, render

KIND_SLUGS = {k.kind.lower(): k.kind for k in KINDS}
CLUSTER_SCOPED = "-"
RESULT = "clusters/actions/_result.html"
CHANGED = "resource-changed"


def view_capability(kind: str) -> str:
    """The capability that lets a person read an object of ``kind`` as YAML."""
    if kind == "Secret":
        return "secrets.view_metadata"
    if not BY_KIND[kind].namespaced:
        return "nodes.view"
    return "workloads.view"


def resolve(request, cluster_id: int, kind_slug: str, namespace: str, name: str, code: str, kinds=None) -> Target:
    """The target of an action, or 404 when the kind does not fit or the user may not do ``code`` there."""
    kind = KIND_SLUGS.get(kind_slug)
    if kind is None or (kinds is not None and kind not in kinds):
        raise Http404
    namespaced = BY_KIND[kind].namespaced
    if namespaced == (namespace == CLUSTER_SCOPED):
        raise Http404
    namespace = namespace if namespaced else ""
    cluster = get_object_or_404(Cluster, pk=cluster_id)
    access.require(request.user, code or view_capability(kind), cluster=cluster, namespace=namespace or None)
    return Target(cluster, kind, namespace, name)


def done(request, message: str, **extra) -> HttpResponse:
    response = django_render(request, RESULT, {"ok": True, "message": message, **extra})
    response["HX-Trigger"] = CHANGED
    return response


def failed(request, message: str) -> HttpResponse:
    # 200 so that htmx swaps the sentence into the page like any other answer.
    return django_render(request, RESULT, {"ok": False, "message": message})


@login_required
@require_POST
def workload_scale(request, cluster_id: int, kind: str, namespace: str, name: str):
    target = resolve(request, cluster_id, kind, namespace, name, "workloads.scale", services_actions.SCALABLE_KINDS)
    form = ScaleForm(request.POST)
    if not form.is_valid():
        return failed(request, " ".join(form.errors.get("replicas", [])))
    try:
        replicas = services_actions.scale_workload(
            actor=request.user, target=target, replicas=form.cleaned_data["replicas"], request=request
        )
    except ActionError as exc:
        return failed(request, str(exc))
    return done(request, _("%(name)s is scaled to %(count)d replicas.") % {"name": target.name, "count": replicas})


@login_required
@require_POST
def workload_restart(request, cluster_id: int, kind: str, namespace: str, name: str):
    target = resolve(
        request, cluster_id, kind, namespace, name, "workloads.restart", services_actions.RESTARTABLE_KINDS
    )
    try:
        services_actions.restart_workload(actor=request.user, target=target, request=request)
    except ActionError as exc:
        return failed(request, str(exc))
    return done(request, _("%(name)s is restarting: its pods are replaced one by one.") % {"name": target.name})


@login_required
@require_POST
def pod_delete(request, cluster_id: int, namespace: str, name: str):
    target = resolve(request, cluster_id, "pod", namespace, name, "pods.delete")
    return require_recent_auth(_pod_delete)(request, target)


def _pod_delete(request, target: Target):
    try:
        services_actions.delete_pod(actor=request.user, target=target, request=request)
    except ActionError as exc:
        return failed(request, str(exc))
    return done(
        request, _("Pod %(name)s is being deleted; its controller, if any, starts a new one.") % {"name": target.name}
    )


def _set_unschedulable(request, cluster_id: int, name: str, unschedulable: bool):
    target = resolve(request, cluster_id, "node", CLUSTER_SCOPED, name, "nodes.cordon")
    try:
        services_actions.set_node_unschedulable(
            actor=request.user, target=target, unschedulable=unschedulable, request=request
        )
    except ActionError as exc:
        return failed(request, str(exc))
    if unschedulable:
        return done(request, _("Node %(name)s is cordoned: no new pods will be scheduled on it.") % {"name": name})
    return done(request, _("Node %(name)s accepts new pods again.") % {"name": name})


@login_required
@require_POST
def node_cordon(request, cluster_id: int, name: str):
    return _set_unschedulable(request, cluster_id, name, True)


@login_required
@require_POST
def node_uncordon(request, cluster_id: int, name: str):
    return _set_unschedulable(request, cluster_id, name, False)


@login_required
@require_POST
def node_drain(request, cluster_id: int, name: str):
    target = resolve(request, cluster_id, "node", CLUSTER_SCOPED, name, "nodes.drain")
    return require_recent_auth(_node_drain)(request, target)


def _node_drain(request, target: Target):
    job = services_actions.start_drain(actor=request.user, target=target, request=request)
    return done(
        request,
        _("Draining node %(name)s: it is cordoned first, then its pods are evicted.") % {"name": target.name},
        job=job,
    )


@login_required
@require_GET
def resource_yaml(request, cluster_id: int, kind: str, namespace: str, name: str):
    target = resolve(request, cluster_id, kind, namespace, name, "")
    context = {"target": target, "cluster": target.cluster, "error": "", "document": None}
    try:
        context["document"] = services_actions.read_yaml(user=request.user, target=target)
    except kube.NotFound:
        raise Http404 from None
    except ActionError as exc:
        context["error"] = str(exc)
    context["can_edit"] = target.kind in services_actions.EDITABLE_KINDS and access.may(
        request.user, "yaml.edit", cluster=target.cluster, namespace=target.namespace or None
    )
    context.update(url_context(target))
    return render(request, "clusters/actions/yaml_view.html", context)


def url_context(target: Target) -> dict:
    return {"kind_slug": target.kind.lower(), "ns_arg": target.namespace or CLUSTER_SCOPED}


@login_required
@require_http_methods(["GET", "POST"])
def resource_yaml_edit(request, cluster_id: int, kind: str, namespace: str, name: str):
    target = resolve(request, cluster_id, kind, namespace, name, "yaml.edit", services_actions.EDITABLE_KINDS)
    template = "clusters/actions/yaml_edit.html"
    context = {"target": target, "cluster": target.cluster, **url_context(target)}
    if request.method == "GET":
        try:
            document = services_actions.read_yaml(user=request.user, target=target)
        except kube.NotFound:
            raise Http404 from None
        except ActionError as exc:
            return render(request, template, {**context, "error": str(exc), "form": None})
        form = YamlEditForm(initial={"text": document.text, "resource_version": document.resource_version})
        return render(request, template, {**context, "form": form})
    form = YamlEditForm(request.POST)
    if not form.is_valid():
        return render(request, template, {**context, "form": form, "error": _("Enter the YAML.")}, partial="outcome")
    values = {
        "target": target,
        "text": form.cleaned_data["text"],
        "resource_version": form.cleaned_data["resource_version"],
    }
    try:
        if request.POST.get("confirm") == "1":
            version = services_actions.apply_yaml_edit(actor=request.user, request=request, **values)
            response = render(request, template, {**context, "form": form, "applied": version}, partial="outcome")
            response["HX-Trigger"] = CHANGED
            return response
        preview = services_actions.preview_yaml_edit(actor=request.user, **values)
    except ActionError as exc:
        return render(request, template, {**context, "form": form, "error": str(exc)}, partial="outcome")
    return render(request, template, {**context, "form": form, "preview": preview}, partial="outcome")


@login_required
@require_GET
def pod_logs(request, cluster_id: int, namespace: str, name: str):
    target = resolve(request, cluster_id, "pod", namespace, name, "pods.logs")
    context = {"target": target, "cluster": target.cluster, "tail_choices": services_actions.LOG_TAIL_CHOICES}
    try:
        containers = services_actions.pod_containers(user=request.user, target=target)
    except kube.NotFound:
        raise Http404 from None
    except ActionError as exc:
        return render(request, "clusters/actions/pod_logs.html", {**context, "error": str(exc), "containers": []})
    form = LogForm(request.GET)
    form.is_valid()
    container = form.cleaned_data.get("container") or (containers[0] if containers else "")
    if container not in containers:
        raise Http404
    data = form.cleaned_data
    options = {
        "container": container,
        "tail": data.get("tail") or services_actions.LOG_TAIL_CHOICES[0],
        "previous": bool(data.get("previous")),
    }
    context.update(containers=containers, follow=bool(data.get("follow")), **options)
    context["download_query"] = urlencode({"container": container, "previous": "1" if options["previous"] else ""})
    try:
        page = services_actions.read_log(user=request.user, target=target, **options)
    except ActionError as exc:
        context["error"] = str(exc)
    else:
        context.update(page=page, follow_query=follow_query(container, options["previous"], page))
    return render(request, "clusters/actions/pod_logs.html", context, partial="output")


@login_required
@require_GET
def pod_logs_follow(request, cluster_id: int, namespace: str, name: str):
    target = resolve(request, cluster_id, "pod", namespace, name, "pods.logs")
    form = LogFollowForm(request.GET)
    if not form.is_valid():
        raise Http404
    data = form.cleaned_data
    try:
        page = services_actions.follow_log(
            user=request.user,
            target=target,
            container=data["container"],
            after=data["after"] or "",
            skip=data["skip"] or 0,
            previous=data["previous"],
        )
    except kube.NotFound:
        raise Http404 from None
    except ActionError as exc:
        # 286 stops the polling: the sentence stays under the last lines.
        return django_render(
            request, "clusters/actions/pod_logs.html#follow_error", {"error": str(exc)}, status=STOP_POLLING
        )
    if not page.lines:
        return HttpResponse(status=204)
    context = {"target": target, "page": page, "oob": True}
    context["follow_query"] = follow_query(data["container"], data["previous"], page)
    return django_render(request, "clusters/actions/pod_logs.html#follow", context)


def follow_query(container: str, previous: bool, page) -> str:
    values = {"container": container, "previous": "1" if previous else "", "after": page.after, "skip": page.skip}
    return urlencode(values)


@login_required
@require_GET
def pod_logs_download(request, cluster_id: int, namespace: str, name: str):
    target = resolve(request, cluster_id, "pod", namespace, name, "pods.logs")
    container = request.GET.get("container", "")
    previous = request.GET.get("previous") in ("1", "on", "true")
    if not container:
        raise Http404
    try:
        chunks = services_actions.stream_log(user=request.user, target=target, container=container, previous=previous)
    except kube.NotFound:
        raise Http404 from None
    except ActionError as exc:
        return failed(request, str(exc))
    response = StreamingHttpResponse(chunks, content_type="text/plain; charset=utf-8")
    filename = services_actions.log_filename(target, container)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
