"""The access review pages: the reports a person may review, one report line by line with confirm and revoke, and a
project's review settings. Revoking removes a grant: it asks for the password again."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts import access
from apps.accounts.capabilities import ACCESS_REVIEW
from apps.accounts.models import Project
from apps.compliance.models import AccessReview, AccessReviewItem, ReviewSettings
from apps.compliance.reviews import services
from apps.core import audit
from apps.core.htmx import render
from apps.core.reauth import require_recent_auth


def _reviews_for(user):
    rows = AccessReview.objects.select_related("project__cluster")
    if access.may(user, ACCESS_REVIEW):
        return rows
    return rows.filter(project__review_settings__reviewer=user)


@login_required
def review_list(request):
    pending = Count("items", filter=Q(items__decision=AccessReviewItem.Decision.PENDING))
    reviews = list(_reviews_for(request.user).annotate(pending=pending)[:200])
    context = {
        "reviews": reviews,
        "projects": Project.objects.select_related("cluster").order_by("name")
        if access.may(request.user, ACCESS_REVIEW)
        else [],
    }
    return render(request, "compliance/reviews.html", context)


@login_required
def review_detail(request, pk: int):
    review = get_object_or_404(_reviews_for(request.user), pk=pk)
    return render(
        request,
        "compliance/review_detail.html",
        {"review": review, "items": review.items.select_related("decided_by"), "open": review.closed_at is None},
    )


@login_required
@require_POST
def review_start(request, project_id: int):
    access.require(request.user, ACCESS_REVIEW)
    project = get_object_or_404(Project, pk=project_id)
    review = services.start_review(project, actor=request.user)
    return redirect("compliance:review_detail", review.pk)


def _decide(request, item_id: int):
    item = get_object_or_404(AccessReviewItem.objects.select_related("review"), pk=item_id)
    try:
        services.decide(
            actor=request.user,
            item_id=item.pk,
            decision=request.POST.get("decision", ""),
            comment=audit.reason_of(request),
            request=request,
        )
    except services.ReviewRefused as exc:
        messages.error(request, str(exc))
    return redirect("compliance:review_detail", item.review_id)


@login_required
@require_POST
def review_decide(request, item_id: int):
    item = AccessReviewItem.objects.select_related("review__project").filter(pk=item_id).first()
    if item is None or not services.may_review(request.user, item.review.project):
        raise Http404
    if request.POST.get("decision") == AccessReviewItem.Decision.REVOKED:
        return require_recent_auth(_decide)(request, item_id)
    return _decide(request, item_id)


class SettingsForm(forms.ModelForm):
    class Meta:
        model = ReviewSettings
        fields = ["reviewer", "grace_days", "expire_unreviewed"]


@login_required
@require_http_methods(["GET", "POST"])
def review_settings(request, project_id: int):
    access.require(request.user, ACCESS_REVIEW)
    project = get_object_or_404(Project, pk=project_id)
    # Opening the page does not enrol the project in quarterly reports: saving the form does.
    instance = ReviewSettings.objects.filter(project=project).first() or ReviewSettings(project=project)
    form = SettingsForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        audit.record(
            actor=request.user,
            action="access_review.settings",
            kind="Project",
            name=project.slug,
            detail={
                "reviewer": saved.reviewer.get_username() if saved.reviewer else "",
                "grace_days": saved.grace_days,
                "expire_unreviewed": saved.expire_unreviewed,
            },
            request=request,
        )
        messages.success(request, _("Access review settings of %(project)s saved.") % {"project": project.name})
        return redirect("compliance:review_list")
    return render(
        request,
        "compliance/review_settings.html",
        {"form": form, "project": project},
        status=400 if form.errors else 200,
    )
