"""The jobs list's filters (kind, state, who started it, target) and paging, done in the database."""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from apps.core.models import Job

PAGE_SIZE = 50
# A job's kind is its task's name; these are the words a person reads for each (others show the name itself).
KIND_LABELS = {
    "releases.wait_rollout": _("Roll out a release"),
    "clusters.drain_node": _("Drain a node"),
}


def kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))


class JobFilterForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), required=False)
    status = forms.ChoiceField(label=_("State"), required=False, choices=[("", _("Any state")), *Job.Status.choices])
    user = forms.CharField(label=_("Started by"), required=False, max_length=150)
    target = forms.CharField(label=_("Target"), required=False, max_length=255)
    page = forms.IntegerField(required=False, min_value=1, max_value=100000)

    def __init__(self, *args, kinds: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", _("Any kind")), *((k, kind_label(k)) for k in kinds)]
        for name in ("kind", "status"):
            self.fields[name].widget.attrs.update({"class": "form-select", "data-testid": f"filter-{name}"})
        for name in ("user", "target"):
            self.fields[name].widget.attrs.update({"class": "form-control", "data-testid": f"filter-{name}"})


def filtered(jobs: QuerySet[Job], data) -> tuple[JobFilterForm, object]:
    """The form (bound to ``data``) and the page of ``jobs`` it selects; an invalid filter shows every job."""
    kinds = sorted(set(jobs.order_by().values_list("kind", flat=True).distinct()))
    form = JobFilterForm(data or None, kinds=kinds)
    if form.is_valid():
        d = form.cleaned_data
        if d["kind"]:
            jobs = jobs.filter(kind=d["kind"])
        if d["status"]:
            jobs = jobs.filter(status=d["status"])
        if d["user"].strip():
            jobs = jobs.filter(actor__username__icontains=d["user"].strip())
        if d["target"].strip():
            jobs = jobs.filter(target__icontains=d["target"].strip())
        number = d["page"] or 1
    else:
        number = 1
    page = Paginator(jobs, PAGE_SIZE).get_page(number)
    return form, page
