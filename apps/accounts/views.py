"""Users and groups."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, Prefetch
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts import services
from apps.accounts.capabilities import USERS_MANAGE
from apps.accounts.decorators import capability_required
from apps.accounts.forms import GroupForm, UserCreateForm
from apps.accounts.models import Binding
from apps.accounts.views_roles import granted as _granted
from apps.core.htmx import render
from apps.core.reauth import require_recent_auth

User = get_user_model()


@capability_required(USERS_MANAGE)
def user_list(request):
    query = request.GET.get("q", "").strip()
    users = User.objects.order_by("username").annotate(binding_count=Count("kubemate_bindings"))
    if query:
        users = users.filter(username__icontains=query)
    return render(request, "accounts/user_list.html", {"users": users[:500], "q": query}, partial="table")


@capability_required(USERS_MANAGE)
@require_recent_auth
@require_http_methods(["GET", "POST"])
def user_create(request):
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.create_user(
            actor=request.user,
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            full_name=form.cleaned_data["full_name"],
            password=form.cleaned_data["password1"],
            request=request,
        )
        messages.success(request, _("User %(name)s was created.") % {"name": user.username})
        return redirect("accounts:user_detail", user.pk)
    return render(request, "accounts/user_form.html", {"form": form})


@capability_required(USERS_MANAGE)
def user_detail(request, user_id: int):
    subject = get_object_or_404(User.objects.prefetch_related("groups"), pk=user_id)
    bindings = Binding.objects.filter(user=subject).select_related("role", "cluster", "project__cluster")
    group_bindings = Binding.objects.filter(group__in=subject.groups.all()).select_related(
        "role", "group", "cluster", "project__cluster"
    )
    context = {
        "subject": subject,
        "bindings": bindings,
        "group_bindings": group_bindings,
        "sessions": len(services.user_sessions(subject)),
    }
    return render(request, "accounts/user_detail.html", context)


@capability_required(USERS_MANAGE)
@require_recent_auth
@require_POST
def user_set_active(request, user_id: int):
    subject = get_object_or_404(User, pk=user_id)
    active = request.POST.get("active") == "1"
    try:
        services.set_user_active(actor=request.user, user=subject, active=active, request=request)
    except services.Refused as refusal:
        messages.error(request, str(refusal))
    else:
        text = (
            _("%(name)s can sign in again.")
            if active
            else _("%(name)s is deactivated: their sessions ended and the clusters no longer accept their account.")
        )
        messages.success(request, text % {"name": subject.username})
    return redirect("accounts:user_detail", subject.pk)


@capability_required(USERS_MANAGE)
@require_recent_auth
@require_http_methods(["GET", "POST"])
def user_delete(request, user_id: int):
    """Deactivate (keeps the history) or delete a user; deleting asks for the user name to be typed."""
    subject = get_object_or_404(User, pk=user_id)
    refusal = services.removal_refusal(request.user, subject)
    error = ""
    if request.method == "POST" and not refusal:
        if request.POST.get("confirm_name", "").strip() != subject.username:
            error = _("Type the user name, %(name)s, to confirm the deletion.") % {"name": subject.username}
        else:
            services.delete_user(actor=request.user, user=subject, request=request)
            messages.success(
                request,
                _("User %(name)s was deleted: their sessions ended and the clusters no longer know their account.")
                % {"name": subject.username},
            )
            return redirect("accounts:user_list")
    context = {
        "subject": subject,
        "refusal": refusal,
        "error": error,
        "bindings": Binding.objects.filter(user=subject).count(),
        "groups": list(subject.groups.order_by("name").values_list("name", flat=True)),
        "sessions": len(services.user_sessions(subject)),
    }
    status = 400 if error else 403 if refusal and request.method == "POST" else 200
    return render(request, "accounts/user_delete.html", context, status=status)


@capability_required(USERS_MANAGE)
@require_recent_auth
@require_POST
def user_reset_password(request, user_id: int):
    subject = get_object_or_404(User, pk=user_id)
    password = services.reset_password(actor=request.user, user=subject, request=request)
    return render(request, "accounts/password_reset_done.html", {"subject": subject, "password": password})


@capability_required(USERS_MANAGE)
@require_recent_auth
@require_POST
def user_end_sessions(request, user_id: int):
    subject = get_object_or_404(User, pk=user_id)
    count = services.end_user_sessions(actor=request.user, user=subject, request=request)
    messages.success(
        request, _("%(count)d sessions of %(name)s were ended.") % {"count": count, "name": subject.username}
    )
    return redirect("accounts:user_detail", subject.pk)


@capability_required(USERS_MANAGE)
def group_list(request):
    groups = Group.objects.order_by("name").prefetch_related(
        Prefetch("user_set", queryset=User.objects.order_by("username"))
    )
    return render(request, "accounts/group_list.html", {"groups": groups})


@capability_required(USERS_MANAGE)
@require_recent_auth
@require_http_methods(["GET", "POST"])
def group_edit(request, group_id: int | None = None):
    group = get_object_or_404(Group, pk=group_id) if group_id else Group()
    form = GroupForm(request.POST or None, instance=group)
    if request.method == "POST" and form.is_valid():
        answer = _granted(
            request,
            form,
            lambda glass: services.save_group(
                actor=request.user,
                group=form.save(commit=False),
                members=form.cleaned_data["members"],
                request=request,
                break_glass=glass,
            ),
            _("Group %(name)s was saved.") % {"name": group.name},
            lambda: redirect("accounts:group_list"),
        )
        if answer is not None:
            return answer
    return render(request, "accounts/group_form.html", {"form": form, "group": group})


@capability_required(USERS_MANAGE)
@require_recent_auth
@require_POST
def group_delete(request, group_id: int):
    group = get_object_or_404(Group, pk=group_id)
    services.delete_group(actor=request.user, group=group, request=request)
    messages.success(request, _("Group %(name)s was deleted.") % {"name": group.name})
    return redirect("accounts:group_list")
