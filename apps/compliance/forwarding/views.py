"""The SIEM forwarding pages: the syslog destinations with how far each has received the audit log, their form,
a test event, and delete. Platform administrators only (``audit.forward``, dangerous: saving and deleting ask
for the password again)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from apps.accounts import access
from apps.accounts.capabilities import AUDIT_FORWARD
from apps.compliance.forwarding import services
from apps.compliance.forwarding.forms import DestinationForm
from apps.compliance.models import SyslogDestination
from apps.core.htmx import render
from apps.core.reauth import require_recent_auth


def _destination(request, pk: int) -> SyslogDestination:
    access.require(request.user, AUDIT_FORWARD)
    return get_object_or_404(SyslogDestination, pk=pk)


@login_required
def destination_list(request):
    access.require(request.user, AUDIT_FORWARD)
    head = services.head_seq()
    rows = [(destination, services.lag(destination, head)) for destination in SyslogDestination.objects.all()]
    return render(request, "compliance/destinations.html", {"rows": rows, "head": head}, partial="table")


def _form(request, destination: SyslogDestination | None):
    form = DestinationForm(request.POST or None, instance=destination)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        if destination is None:
            services.create(request.user, saved, from_start=form.cleaned_data.get("from_start", False), request=request)
            messages.success(request, _("Syslog destination %(name)s added.") % {"name": saved.name})
        else:
            services.update(request.user, saved, form.changed_data, request=request)
            messages.success(request, _("Syslog destination %(name)s saved.") % {"name": saved.name})
        return redirect("compliance:destination_list")
    status = 400 if form.errors else 200
    return render(
        request, "compliance/destination_form.html", {"form": form, "destination": destination}, status=status
    )


_save = require_recent_auth(_form)


@login_required
@require_http_methods(["GET", "POST"])
def destination_create(request):
    access.require(request.user, AUDIT_FORWARD)
    return (_save if request.method == "POST" else _form)(request, None)


@login_required
@require_http_methods(["GET", "POST"])
def destination_edit(request, pk: int):
    destination = _destination(request, pk)
    return (_save if request.method == "POST" else _form)(request, destination)


@require_recent_auth
def _delete(request, destination: SyslogDestination):
    services.delete(request.user, destination, request=request)
    messages.success(request, _("Syslog destination %(name)s deleted.") % {"name": destination.name})
    return redirect("compliance:destination_list")


@login_required
def destination_delete(request, pk: int):
    destination = _destination(request, pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return _delete(request, destination)


@login_required
def destination_test(request, pk: int):
    """Write a test event to the audit log and send it now (beat would within 5 s)."""
    destination = _destination(request, pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    event = services.send_test(request.user, destination, request=request)
    services.forward(destination, budget_seconds=10)
    destination.refresh_from_db()
    if destination.cursor >= event.seq:
        messages.success(request, _("Event %(seq)s reached %(name)s.") % {"seq": event.seq, "name": destination.name})
    else:
        messages.error(
            request,
            _("Event %(seq)s did not reach %(name)s yet: %(error)s")
            % {"seq": event.seq, "name": destination.name, "error": destination.last_error_text},
        )
    return redirect("compliance:destination_list")
