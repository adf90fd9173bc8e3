"""The approval policy form."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Project
from apps.compliance.approvals.services import ACTIONS
from apps.compliance.models import ApprovalPolicy

LABEL = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_./]{0,62})=([-A-Za-z0-9_.]{0,63})$")


class PolicyForm(forms.ModelForm):
    actions = forms.MultipleChoiceField(
        label=_("Actions that need approval"), choices=(), widget=forms.CheckboxSelectMultiple
    )
    labels = forms.CharField(
        label=_("Cluster labels"),
        required=False,
        help_text=_(
            "key=value, comma-separated; the policy covers clusters with all of them (env=prod). Empty: every cluster."
        ),
    )

    class Meta:
        model = ApprovalPolicy
        fields = ["name", "project", "expiry_hours", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actions"].choices = [(code, gettext(words)) for code, words in ACTIONS.items()]
        self.fields["project"].queryset = Project.objects.select_related("cluster").order_by("name")
        self.fields["project"].required = False
        if self.instance.pk:
            self.initial["actions"] = self.instance.actions
            self.initial["labels"] = ", ".join(f"{k}={v}" for k, v in (self.instance.cluster_labels or {}).items())

    def clean_labels(self) -> dict:
        found = {}
        for part in (self.cleaned_data.get("labels") or "").split(","):
            part = part.strip()
            if not part:
                continue
            match = LABEL.match(part)
            if not match:
                raise forms.ValidationError(gettext("%(label)s is not key=value.") % {"label": part[:80]})
            found[match.group(1)] = match.group(2)
        if len(found) > 20:
            raise forms.ValidationError(gettext("At most 20 labels."))
        return found

    def save(self, commit=True):
        policy = super().save(commit=False)
        policy.actions = list(self.cleaned_data["actions"])
        policy.cluster_labels = self.cleaned_data["labels"]
        if commit:
            policy.save()
        return policy
