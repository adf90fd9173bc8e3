"""The approval policy and change window forms."""

from __future__ import annotations

import re
import zoneinfo

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Project
from apps.compliance.approvals.services import ACTIONS
from apps.compliance.models import WEEKDAY_NAMES, ApprovalPolicy, ChangeWindow

LABEL = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_./]{0,62})=([-A-Za-z0-9_.]{0,63})$")


class ScopedRuleForm(forms.ModelForm):
    """What a policy and a window share: the project (or every project) and the cluster labels they cover."""

    labels = forms.CharField(
        label=_("Cluster labels"),
        required=False,
        help_text=_(
            "key=value, comma-separated; the policy covers clusters with all of them (env=prod). Empty: every cluster."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = Project.objects.select_related("cluster").order_by("name")
        self.fields["project"].required = False
        if self.instance.pk:
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
        rule = super().save(commit=False)
        rule.cluster_labels = self.cleaned_data["labels"]
        self.fill(rule)
        if commit:
            rule.save()
        return rule

    def fill(self, rule) -> None:
        """Set what the form holds outside the model's fields."""


class PolicyForm(ScopedRuleForm):
    actions = forms.MultipleChoiceField(
        label=_("Actions that need approval"), choices=(), widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApprovalPolicy
        fields = ["name", "project", "expiry_hours", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actions"].choices = [(code, gettext(words)) for code, words in ACTIONS.items()]
        if self.instance.pk:
            self.initial["actions"] = self.instance.actions

    def fill(self, rule) -> None:
        rule.actions = list(self.cleaned_data["actions"])


WEEKDAYS = list(enumerate(WEEKDAY_NAMES))


class WindowForm(ScopedRuleForm):
    """A weekly change window or a dated freeze, scoped like a policy (project, cluster labels)."""

    weekdays = forms.TypedMultipleChoiceField(
        label=_("Days"), choices=WEEKDAYS, coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ChangeWindow
        fields = [
            "name",
            "kind",
            "project",
            "start_time",
            "end_time",
            "time_zone",
            "starts_at",
            "ends_at",
            "reason",
            "enabled",
        ]
        widgets = {
            "start_time": forms.TimeInput(attrs={"type": "time"}),
            "end_time": forms.TimeInput(attrs={"type": "time"}),
            "starts_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "ends_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["weekdays"] = self.instance.weekdays

    def clean_time_zone(self) -> str:
        name = (self.cleaned_data.get("time_zone") or "").strip()
        if name not in zoneinfo.available_timezones():
            raise forms.ValidationError(
                gettext("%(zone)s is not a time zone, such as Asia/Shanghai.") % {"zone": name[:64]}
            )
        return name

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        window_incomplete = not data.get("weekdays") or not data.get("start_time") or not data.get("end_time")
        if kind == ChangeWindow.Kind.WINDOW and window_incomplete:
            raise forms.ValidationError(gettext("A change window needs its days and its hours."))
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if kind == ChangeWindow.Kind.FREEZE and (not starts or not ends or ends <= starts):
            raise forms.ValidationError(gettext("A freeze needs a start and a later end."))
        return data

    def fill(self, rule) -> None:
        rule.weekdays = sorted(set(self.cleaned_data.get("weekdays") or []))
