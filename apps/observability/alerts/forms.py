"""The alerts page's filters, the silences page's filters, and the silence form (matchers, how long, why)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.observability.alertmanager import Matcher
from apps.observability.alerts.reading import AlertFilter

STATE_CHOICES = [
    ("", _("Any state")),
    ("active", pgettext_lazy("alert state", "Firing")),
    ("suppressed", pgettext_lazy("alert state", "Silenced or inhibited")),
    ("unprocessed", pgettext_lazy("alert state", "Not yet processed")),
]
SEVERITY_CHOICES = [
    ("", _("Any severity")),
    ("critical", pgettext_lazy("severity", "Critical")),
    ("warning", pgettext_lazy("severity", "Warning")),
    ("info", pgettext_lazy("severity", "Information")),
    ("other", pgettext_lazy("severity", "Other")),
]
SILENCE_STATE_CHOICES = [
    ("active", pgettext_lazy("silence state", "Active")),
    ("pending", pgettext_lazy("silence state", "Pending")),
    ("expired", pgettext_lazy("silence state", "Expired")),
]
DURATIONS = [
    ("1h", _("1 hour")),
    ("2h", _("2 hours")),
    ("4h", _("4 hours")),
    ("8h", _("8 hours")),
    ("24h", _("24 hours")),
    ("72h", _("3 days")),
    ("168h", _("7 days")),
    ("custom", _("Until a time I choose")),
]
OPERATOR_CHOICES = [
    ("=", _("= equals")),
    ("!=", _("!= does not equal")),
    ("=~", _("=~ matches the regular expression")),
    ("!~", _("!~ does not match the regular expression")),
]


def _style(form: forms.Form, selects=(), inputs=()) -> None:
    for name in selects:
        form.fields[name].widget.attrs.update({"class": "form-select", "data-testid": f"filter-{name}"})
    for name in inputs:
        form.fields[name].widget.attrs.update({"class": "form-control", "data-testid": f"filter-{name}"})


class AlertFilterForm(forms.Form):
    cluster = forms.TypedChoiceField(label=_("Cluster"), required=False, coerce=int, empty_value=None)
    namespace = forms.ChoiceField(label=_("Namespace"), required=False)
    severity = forms.ChoiceField(label=_("Severity"), required=False, choices=SEVERITY_CHOICES)
    state = forms.ChoiceField(label=_("State"), required=False, choices=STATE_CHOICES)
    text = forms.CharField(label=_("Search"), required=False, max_length=200)

    def __init__(self, *args, clusters, namespaces, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cluster"].choices = [("", _("Every cluster")), *((c.pk, c.name) for c in clusters)]
        self.fields["namespace"].choices = [("", _("Every namespace")), *((n, n) for n in namespaces)]
        self.fields["text"].widget.attrs["placeholder"] = _("Alert name, summary or label value")
        _style(self, ("cluster", "namespace", "severity", "state"), ("text",))

    def chosen(self) -> AlertFilter:
        if not self.is_valid():
            return AlertFilter()
        d = self.cleaned_data
        return AlertFilter(d["cluster"], d["namespace"], d["severity"], d["state"], d["text"].strip())


class SilenceFilterForm(forms.Form):
    cluster = forms.TypedChoiceField(label=_("Cluster"), required=False, coerce=int, empty_value=None)
    state = forms.ChoiceField(required=False, choices=SILENCE_STATE_CHOICES)

    def __init__(self, *args, clusters, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cluster"].choices = [("", _("Every cluster")), *((c.pk, c.name) for c in clusters)]
        _style(self, ("cluster",))

    def chosen(self) -> tuple[int | None, str]:
        if not self.is_valid():
            return None, "active"
        return self.cleaned_data["cluster"], self.cleaned_data["state"] or "active"


class MatcherForm(forms.Form):
    name = forms.CharField(label=_("Label"), required=False, max_length=128)
    operator = forms.ChoiceField(label=pgettext_lazy("matcher", "Operator"), required=False, choices=OPERATOR_CHOICES)
    value = forms.CharField(label=_("Value"), required=False, max_length=1000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        index = self.prefix.rsplit("-", 1)[-1] if self.prefix else "0"
        self.fields["name"].widget.attrs.update(
            {"class": "form-control font-monospace", "data-testid": f"matcher-name-{index}", "spellcheck": "false"}
        )
        self.fields["operator"].widget.attrs.update({"class": "form-select", "data-testid": f"matcher-op-{index}"})
        self.fields["value"].widget.attrs.update(
            {"class": "form-control font-monospace", "data-testid": f"matcher-value-{index}", "spellcheck": "false"}
        )

    def matcher(self) -> Matcher | None:
        d = self.cleaned_data
        if not d.get("name", "").strip() and not d.get("value", ""):
            return None
        return Matcher.of(d["name"].strip(), d.get("operator") or "=", d.get("value", ""))


MatcherFormSet = forms.formset_factory(MatcherForm, extra=0, max_num=40, absolute_max=40)


def matcher_formset(data=None, matchers: list[Matcher] | None = None, empty_rows: int = 3):
    """The matcher rows: ``matchers`` filled in, and ``empty_rows`` more to add others."""
    initial = [{"name": m.name, "operator": m.operator, "value": m.value} for m in matchers or []]
    initial += [{"operator": "="}] * empty_rows
    return MatcherFormSet(data, initial=initial, prefix="m")


def matchers_of(formset) -> list[Matcher]:
    return [m for m in (form.matcher() for form in formset.forms) if m is not None]


class SilenceForm(forms.Form):
    duration = forms.ChoiceField(label=_("Silence for"), choices=DURATIONS, initial="2h")
    ends_at = forms.DateTimeField(
        label=_("Ends at"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("In your time zone."),
    )
    comment = forms.CharField(
        label=_("Comment"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Why, and until what: a change ticket, an incident, who is working on it."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["duration"].widget.attrs.update({"class": "form-select", "data-testid": "silence-duration"})
        self.fields["ends_at"].widget.attrs.update({"class": "form-control", "data-testid": "silence-ends-at"})
        self.fields["comment"].widget.attrs.update({"class": "form-control", "data-testid": "silence-comment"})
        self.fields["comment"].widget.attrs["placeholder"] = _("For example CHG-20261203-042: database failover")

    def clean(self):
        data = super().clean()
        if data.get("duration") == "custom" and not data.get("ends_at"):
            self.add_error("ends_at", _("Choose when the silence ends."))
        return data

    def ends(self):
        """When the silence ends, from the chosen duration or the time typed (in the reader's time zone)."""
        d = self.cleaned_data
        if d["duration"] == "custom":
            return d["ends_at"]
        return timezone.now() + timedelta(hours=int(d["duration"].rstrip("h")))
