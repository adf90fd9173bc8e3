"""Day-2 action views: authorize, validate, call services_actions, render a partial.

Objects are addressed as ``<cluster_id>/actions/<kind>/<namespace>/<name>/`` with
the kind in lower case and ``-`` as the namespace of cluster-scoped objects.
A missing object and a forbidden one both answer 404. Successful actions answer
with a message partial and ``HX-Trigger: resource-changed`` so the detail page
refreshes its own partials.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render as django_render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from apps.clusters import kube, values
from apps.clusters.actions import drain, registry, yaml_lines
from apps.clusters.actions import services as services_actions
from apps.clusters.actions.forms import EncryptFieldForm, LogFollowForm, LogForm, ScaleForm, YamlEditForm
from apps.clusters.actions.registry import ACTIONS, CLUSTER_SCOPED
from apps.clusters.actions.targets import ActionError, Target
from apps.core import gates
from apps.core.htmx import render, stop_polling
from apps.core.reauth import require_recent_auth

RESULT = "clusters/actions/_result.html"
CHANGED = "resource-changed"


def resolve(request, action: str, cluster_id: int, kind_slug: str, namespace: str, name: str) -> Target:
    """The target of ``action`` (a name in ``registry.ACTIONS``), or 404 when the action does not apply to
    the kind or the user may not take it there; the buttons ask the same ``Action``."""
    return registry.target(request.user, action, cluster_id, kind_slug, namespace, name)


def done(request, message: str, **extra) -> HttpResponse:
    return trigger_client_event(django_render(request, RESULT, {"ok": True, "message": message, **extra}), CHANGED)


def failed(request, message: str) -> HttpResponse:
    # 200 so that htmx swaps the sentence into the page like any other answer.
    return django_render(request, RESULT, {"ok": False, "message": message})


@login_required
@require_POST
def workload_scale(request, cluster_id: int, kind: str, namespace: str, name: str):
    target = resolve(request, "scale", cluster_id, kind, namespace, name)
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
def encrypt_field(request, cluster_id: int, kind: str, namespace: str, name: str):
    target = resolve(request, "encrypt-field", cluster_id, kind, namespace, name)
    return require_recent_auth(_encrypt_field)(request, target)


def _encrypt_field(request, target: Target):
    form = EncryptFieldForm(request.POST)
    if not form.is_valid():
        return failed(request, " ".join(error for errors in form.errors.values() for error in errors))
    field, account = form.cleaned_data["field"], form.cleaned_data["service_account"]
    try:
        services_actions.encrypt_field(
            actor=request.user, target=target, field=field, service_account=account, request=request
        )
    except ActionError as exc:
        return failed(request, str(exc))
    sentence = _("Field %(field)s of %(name)s now holds ciphertext; the cluster never sees its value again.") % {
        "field": field,
        "name": target.name,
    }
    if account:
        sentence += " " + _("Pods running as %(account)s decrypt it with kubemate-decrypt.") % {"account": account}
    return done(request, sentence)


@login_required
@require_POST
def secret_reveal(request, cluster_id: int, kind: str, namespace: str, name: str):
    target = resolve(request, "secret-reveal", cluster_id, kind, namespace, name)
    return require_recent_auth(_secret_reveal)(request, target)


SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


def _secret_reveal(request, target: Target):
    key = request.POST.get("key", "")
    if not SECRET_KEY.match(key):
        return failed(request, _("No key has that name."))
    try:
        value = services_actions.reveal_secret(actor=request.user, target=target, key=key, request=request)
    except ActionError as exc:
        return failed(request, str(exc))
    response = django_render(request, "clusters/actions/_secret_value.html", {"key": key, "value": value})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def workload_restart(request, cluster_id: int, kind: str, namespace: str, name: str):
    target = resolve(request, "restart", cluster_id, kind, namespace, name)
    try:
        services_actions.restart_workload(actor=request.user, target=target, request=request)
    except ActionError as exc:
        return failed(request, str(exc))
    return done(request, _("%(name)s is restarting: its pods are replaced one by one.") % {"name": target.name})


@login_required
@require_POST
def pod_delete(request, cluster_id: int, namespace: str, name: str):
    target = resolve(request, "delete", cluster_id, "pod", namespace, name)
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
    target = resolve(request, "cordon" if unschedulable else "uncordon", cluster_id, "node", CLUSTER_SCOPED, name)
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
    target = resolve(request, "drain", cluster_id, "node", CLUSTER_SCOPED, name)
    return require_recent_auth(_node_drain)(request, target)


def _node_drain(request, target: Target):
    try:
        job = services_actions.start_drain(actor=request.user, target=target, request=request)
    except gates.ApprovalRequired as exc:  # four-eyes approval: recorded, nothing drains yet
        return done(request, str(exc))
    except ActionError as exc:  # a freeze, or a refused break glass
        return failed(request, str(exc))
    return done(
        request,
        _("Draining node %(name)s: it is cordoned first, then its pods are evicted.") % {"name": target.name},
        job=job,
    )


@login_required
@require_POST
def node_drain_resume(request, cluster_id: int, name: str):
    target = resolve(request, "drain-resume", cluster_id, "node", CLUSTER_SCOPED, name)
    return require_recent_auth(_node_drain_resume)(request, target)


def _node_drain_resume(request, target: Target):
    stopped = drain.stopped_drain(target.cluster, target.name)
    job = services_actions.start_drain(actor=request.user, target=target, request=request, resumes=stopped)
    return done(
        request,
        _("Resuming the drain of node %(name)s: the pods still on it are evicted.") % {"name": target.name},
        job=job,
    )


@login_required
@require_POST
def node_drain_undo(request, cluster_id: int, name: str):
    target = resolve(request, "drain-undo", cluster_id, "node", CLUSTER_SCOPED, name)
    stopped = drain.stopped_drain(target.cluster, target.name)
    try:
        services_actions.undo_drain(actor=request.user, target=target, stopped=stopped, request=request)
    except ActionError as exc:
        return failed(request, str(exc))
    return done(
        request,
        _("Node %(name)s accepts new pods again; the pods already evicted keep running where they are.")
        % {"name": target.name},
    )


@login_required
@require_GET
def resource_yaml(request, cluster_id: int, kind: str, namespace: str, name: str):
    target = resolve(request, "yaml", cluster_id, kind, namespace, name)
    context = {"target": target, "cluster": target.cluster, "error": "", "document": None}
    try:
        context["document"] = services_actions.read_yaml(user=request.user, target=target)
    except kube.NotFound:
        raise Http404 from None
    except ActionError as exc:
        context["error"] = str(exc)
    context["can_edit"] = ACTIONS["yaml-edit"].permits(
        request.user, target.cluster, target.kind, target.namespace, target.name
    )
    context.update(url_context(target))
    return render(request, "clusters/actions/yaml_view.html", context)


def url_context(target: Target) -> dict:
    return {"kind_slug": target.kind.lower(), "ns_arg": target.namespace or CLUSTER_SCOPED}


@login_required
@require_http_methods(["GET", "POST"])
def resource_yaml_edit(request, cluster_id: int, kind: str, namespace: str, name: str):
    target = resolve(request, "yaml-edit", cluster_id, kind, namespace, name)
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
        # A text the form refuses (a NUL byte) says why; an empty one asks for the YAML.
        error = form.errors["text"][0] if request.POST.get("text") and "text" in form.errors else _("Enter the YAML.")
        return render(request, template, {**context, "form": form, "error": error}, partial="outcome")
    values = {
        "target": target,
        "text": form.cleaned_data["text"],
        "resource_version": form.cleaned_data["resource_version"],
    }
    try:
        if request.POST.get("confirm") == "1":
            try:
                version = services_actions.apply_yaml_edit(
                    actor=request.user, request=request, break_glass=gates.break_glass_of(request), **values
                )
            except gates.ApprovalRequired as exc:  # four-eyes approval: recorded, not applied
                waiting = {"waiting": str(exc), "waiting_id": exc.request_id}
                return render(request, template, {**context, "form": form, **waiting}, partial="outcome")
            response = render(request, template, {**context, "form": form, "applied": version}, partial="outcome")
            return trigger_client_event(response, CHANGED)
        preview = services_actions.preview_yaml_edit(actor=request.user, **values)
    except ActionError as exc:
        line = yaml_lines.error_line(values["text"], str(exc), exc.line)
        return render(
            request, template, {**context, "form": form, "error": str(exc), "error_line": line}, partial="outcome"
        )
    return render(request, template, {**context, "form": form, "preview": preview}, partial="outcome")


@login_required
@require_GET
def pod_logs(request, cluster_id: int, namespace: str, name: str):
    target = resolve(request, "logs", cluster_id, "pod", namespace, name)
    context = {"target": target, "cluster": target.cluster, "tail_choices": services_actions.LOG_TAIL_CHOICES}
    form = LogForm(request.GET)
    if not form.is_valid() and "container" in form.errors:
        raise Http404  # no container can have that name: answered before the cluster is asked
    try:
        containers = services_actions.pod_containers(user=request.user, target=target)
    except kube.NotFound:
        raise Http404 from None
    except ActionError as exc:
        return render(request, "clusters/actions/pod_logs.html", {**context, "error": str(exc), "containers": []})
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
    target = resolve(request, "logs", cluster_id, "pod", namespace, name)
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
        # Polling stops here: the sentence stays under the last lines.
        return stop_polling(request, "clusters/actions/pod_logs.html#follow_error", {"error": str(exc)})
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
    target = resolve(request, "logs", cluster_id, "pod", namespace, name)
    container = request.GET.get("container", "")
    previous = request.GET.get("previous") in ("1", "on", "true")
    if not values.is_dns_label(container):
        raise Http404  # the name goes into the request and the file name: only a name a container can have
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
