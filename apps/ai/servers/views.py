"""Model server pages: authorize, validate a form, call a service, render.

Servers and endpoints are seen with ``ai.view`` on their project (platform endpoints by everyone holding it
anywhere). Deploying and removing an in-cluster server takes ``ai.serve`` and ``releases.deploy`` in its
namespace; registering, changing and removing an external endpoint takes ``ai.serve`` on its project, or
``ai.admin`` for the whole platform. Missing and forbidden objects both answer 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.shortcuts import render as django_render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.capabilities import AI_SERVE, AI_VIEW
from apps.ai import access
from apps.ai.models import Endpoint
from apps.ai.servers import reading, services
from apps.ai.servers.forms import EndpointForm, ServerForm, may_serve_in, serving_projects
from apps.core.htmx import render
from apps.core.reauth import needs_password, require_recent_auth
from apps.releases.changes import extra_lines

FORM = "ai/servers/server_form.html"
DETAIL = "ai/servers/server_detail.html"


def _may_register(user) -> bool:
    return access.is_admin(user) or access.projects(user, AI_SERVE).exists()


def _may_change(user, endpoint: Endpoint) -> bool:
    """Remove (a server) or change and remove (an external endpoint)."""
    if endpoint.release_id:
        release = endpoint.release
        return may_serve_in(user, release.project, release.namespace)
    return access.on_project(user, AI_SERVE, endpoint.project)


@login_required
@require_GET
def server_list(request):
    if not access.anywhere(request.user, AI_VIEW):
        raise Http404
    rows = list(
        access.endpoints(request.user, AI_VIEW).select_related("release__project__cluster").order_by("name", "pk")
    )
    states = reading.states(rows)
    for row in rows:
        row.state = states.get(row.pk)
    context = {
        "endpoints": rows,
        "can_deploy": serving_projects(request.user).exists(),
        "can_register": _may_register(request.user),
    }
    return render(request, "ai/servers/server_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def server_new(request):
    if not serving_projects(request.user).exists():
        raise Http404
    form = ServerForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, outcome = services.deploy_server(
                actor=request.user,
                project=form.cleaned_data["project"],
                namespace=form.cleaned_data["namespace"],
                settings=form.settings(),
                request=request,
            )
        except services.ServerError as exc:
            form.add_error(None, str(exc))  # nothing stays behind: the form as typed, with the reason
        else:
            (messages.warning if outcome.waiting else messages.success)(request, outcome.message)
            return redirect("ai:server_detail", endpoint.pk)
    return render(request, FORM, {"form": form, "preview": _preview(form)})


def _preview(form: ServerForm) -> str:
    if not form.is_bound or not form.is_valid():
        return ""
    return services.preview_yaml(form.settings(), form.cleaned_data["namespace"])


@login_required
@require_POST
def server_preview(request):
    if not serving_projects(request.user).exists():
        raise Http404
    form = ServerForm(request.POST, user=request.user)
    return render(request, FORM, {"form": form, "preview": _preview(form)}, partial="preview")


@login_required
@require_GET
def server_detail(request, pk: int):
    endpoint = access.endpoint(request.user, pk, AI_VIEW)
    context = {
        "endpoint": endpoint,
        "release": endpoint.release,
        "state": reading.states([endpoint]).get(endpoint.pk),
        "pods": reading.pods(endpoint),
        "extras": extra_lines(endpoint.release.spec) if endpoint.release_id else [],
        "can_change": _may_change(request.user, endpoint),
        "needs_password": needs_password(request),
    }
    return render(request, DETAIL, context)


@login_required
@require_GET
def server_live(request, pk: int):
    """The models a server lists now (``part=models``) or its traffic from Prometheus (``part=metrics``)."""
    endpoint = access.endpoint(request.user, pk, AI_VIEW)
    if request.GET.get("part") == "metrics":
        return django_render(request, f"{DETAIL}#metrics", {"metrics": reading.metrics(endpoint)})
    return django_render(request, f"{DETAIL}#models", {"listed": reading.models(endpoint)})


@login_required
@require_POST
def server_check(request, pk: int):
    """Check now: list the server's models again and keep the answer on its row."""
    endpoint = access.endpoint(request.user, pk, AI_VIEW)
    sentence = services.check_endpoint(endpoint)
    if sentence:
        messages.warning(request, sentence)
    else:
        count = len(endpoint.served_models)
        sentence = ngettext("%(name)s lists %(count)s model.", "%(name)s lists %(count)s models.", count)
        messages.success(request, sentence % {"name": endpoint.name, "count": count})
    return redirect("ai:server_detail", endpoint.pk)


@login_required
@require_POST
def server_delete(request, pk: int):
    endpoint = access.endpoint(request.user, pk, AI_VIEW)
    if not endpoint.release_id or not _may_change(request.user, endpoint):
        raise Http404
    return require_recent_auth(_server_delete)(request, endpoint)


def _server_delete(request, endpoint: Endpoint):
    name = endpoint.name
    try:
        services.delete_server(actor=request.user, endpoint=endpoint, request=request)
    except services.ServerError as exc:
        messages.error(request, str(exc))
        return redirect("ai:server_detail", endpoint.pk)
    messages.success(request, _("Model server %(name)s and its release are removed.") % {"name": name})
    return redirect("ai:server_list")


# --- external endpoints ------------------------------------------------------------------------------------------


def _external(user, pk: int) -> Endpoint:
    """An external endpoint ``user`` may change: ai.serve on its project, ai.admin for a platform one; 404 else."""
    endpoint = access.endpoint(user, pk, AI_VIEW)
    if endpoint.release_id or not _may_change(user, endpoint):
        raise Http404
    return endpoint


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_new(request):
    if not _may_register(request.user):
        raise Http404
    form = EndpointForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            endpoint = services.register_endpoint(
                actor=request.user,
                name=data["name"],
                project=data["project"],
                kind=data["kind"],
                base_url=data["base_url"],
                api_key_encrypted=form.encrypted_key(),
                ca_pem=data["ca_pem"],
                default_model=data["default_model"],
                save_unchecked=data["save_unchecked"],
                request=request,
            )
        except services.ServerError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Endpoint %(name)s is registered.") % {"name": endpoint.name})
            return redirect("ai:server_detail", endpoint.pk)
    return render(request, "ai/servers/endpoint_form.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_edit(request, pk: int):
    endpoint = _external(request.user, pk)
    form = EndpointForm(request.POST or None, user=request.user, endpoint=endpoint)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.change_endpoint(
                actor=request.user,
                endpoint=endpoint,
                values={field: data[field] for field in services.CHANGED_FIELDS},
                api_key_encrypted=form.encrypted_key(),
                save_unchecked=data["save_unchecked"],
                request=request,
            )
        except services.ServerError as exc:
            endpoint.refresh_from_db()
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Endpoint %(name)s is saved.") % {"name": endpoint.name})
            return redirect("ai:server_detail", endpoint.pk)
    return render(request, "ai/servers/endpoint_form.html", {"form": form, "endpoint": endpoint})


@login_required
@require_POST
def endpoint_delete(request, pk: int):
    endpoint = _external(request.user, pk)
    name = endpoint.name
    services.delete_endpoint(actor=request.user, endpoint=endpoint, request=request)
    messages.success(request, _("Endpoint %(name)s is removed.") % {"name": name})
    return redirect("ai:server_list")
