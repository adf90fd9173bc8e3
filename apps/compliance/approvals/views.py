"""The change request pages: the list (waiting for me, mine, recent), one request with exactly what it applies (the
objects and the diff) and its decision, and the approval policies. Approving applies a production change: it asks
for the password again (``require_recent_auth``), as dangerous actions do."""

from __future__ import annotations

import yaml
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts import access
from apps.accounts.capabilities import AUDIT_VIEW, CHANGES_APPROVE, CHANGES_POLICIES
from apps.compliance.approvals import services
from apps.compliance.approvals.forms import PolicyForm, WindowForm
from apps.compliance.models import ApprovalPolicy, ChangeRequest, ChangeWindow
from apps.core.htmx import render
from apps.core.reauth import require_recent_auth

LIST_LIMIT = 200


def _sees_all(user) -> bool:
    return access.may(user, CHANGES_APPROVE) or access.may(user, AUDIT_VIEW)


def _visible(user):
    rows = ChangeRequest.objects.select_related("maker", "decided_by", "cluster")
    return rows if _sees_all(user) else rows.filter(maker=user)


@login_required
def change_list(request):
    user = request.user
    waiting = list(services.pending_for(user).select_related("maker", "cluster")[:LIST_LIMIT])
    mine = list(_visible(user).filter(maker=user)[:50])
    recent = list(_visible(user).exclude(Q(pk__in=[c.pk for c in waiting]) | Q(maker=user))[:100])
    context = {
        "waiting": waiting,
        "mine": mine,
        "recent": recent,
        "may_approve": access.may(user, CHANGES_APPROVE),
        "may_manage": access.may(user, CHANGES_POLICIES),
    }
    return render(request, "compliance/changes.html", context)


@login_required
def change_detail(request, pk: int):
    cr = get_object_or_404(_visible(request.user), pk=pk)
    shown = yaml.safe_dump_all(cr.manifests, sort_keys=False, default_flow_style=False, allow_unicode=True)
    context = {
        "cr": cr,
        "manifests_yaml": shown if cr.manifests else "",
        "may_decide": services.may_decide(request.user, cr),
        "is_maker": cr.maker_id == request.user.pk,
    }
    return render(request, "compliance/change_detail.html", context)


def _decide(request, pk: int, act, done: str, *, commented: bool = True):
    """Take a decision on request ``pk`` (``act``: services.approve, reject or cancel, as the person), then back to
    it with what happened, or why not."""
    comment = {"comment": request.POST.get("comment", "")} if commented else {}
    try:
        act(actor=request.user, pk=pk, request=request, **comment)
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done % {"number": pk})
    return redirect("compliance:change_detail", pk)


def _approve(request, pk: int):
    return _decide(request, pk, services.approve, _("Change request #%(number)s approved and applied."))


@login_required
@require_POST
def change_approve(request, pk: int):
    get_object_or_404(_visible(request.user), pk=pk)
    return require_recent_auth(_approve)(request, pk)


@login_required
@require_POST
def change_reject(request, pk: int):
    get_object_or_404(_visible(request.user), pk=pk)
    return _decide(request, pk, services.reject, _("Change request #%(number)s rejected."))


@login_required
@require_POST
def change_cancel(request, pk: int):
    get_object_or_404(_visible(request.user), pk=pk)
    return _decide(request, pk, services.cancel, _("Change request #%(number)s withdrawn."), commented=False)


# Policies --------------------------------------------------------------------------------------------------


@login_required
def policy_list(request):
    access.require(request.user, CHANGES_POLICIES)
    policies = list(ApprovalPolicy.objects.select_related("project"))
    for policy in policies:  # the actions in words, in the reader's language
        policy.action_words = [gettext(services.ACTIONS[code]) for code in policy.actions if code in services.ACTIONS]
    context = {"policies": policies, "windows": ChangeWindow.objects.select_related("project")}
    return render(request, "compliance/policies.html", context)


def _rules_views(model, form_class, key: str, save, delete):
    """The create/edit view and the delete view of one kind of rule (approval policies, change windows): platform
    capability ``changes.policies``, saving and removing ask for the password again, both audited by ``save`` and
    ``delete`` (services.py)."""

    def form_view(request, instance):
        form = form_class(request.POST or None, instance=instance)
        if request.method == "POST" and form.is_valid():
            save(actor=request.user, request=request, created=instance is None, **{key: form.save(commit=False)})
            messages.success(request, _("%(name)s saved.") % {"name": form.instance.name})
            return redirect("compliance:policy_list")
        template = f"compliance/{key}_form.html"
        return render(request, template, {"form": form, key: instance}, status=400 if form.errors else 200)

    def delete_view(request, pk: int):
        instance = get_object_or_404(model, pk=pk)
        delete(actor=request.user, request=request, **{key: instance})
        messages.success(request, _("%(name)s removed.") % {"name": instance.name})
        return redirect("compliance:policy_list")

    @login_required
    @require_http_methods(["GET", "POST"])
    def edit(request, pk: int | None = None):
        access.require(request.user, CHANGES_POLICIES)
        instance = get_object_or_404(model, pk=pk) if pk is not None else None
        return (require_recent_auth(form_view) if request.method == "POST" else form_view)(request, instance)

    @login_required
    @require_POST
    def remove(request, pk: int):
        access.require(request.user, CHANGES_POLICIES)
        if not model.objects.filter(pk=pk).exists():
            raise Http404
        return require_recent_auth(delete_view)(request, pk)

    return edit, remove


policy_edit, policy_delete = _rules_views(
    ApprovalPolicy, PolicyForm, "policy", services.save_policy, services.delete_policy
)
window_edit, window_delete = _rules_views(
    ChangeWindow, WindowForm, "window", services.save_window, services.delete_window
)
