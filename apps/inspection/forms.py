"""The inspection forms. They validate shape only; services decide what the person may do."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from apps.accounts.capabilities import INSPECTION_RUN
from apps.clusters.models import Cluster
from apps.inspection import access
from apps.inspection.catalogue import CATALOGUE
from apps.inspection.checks.base import Domain
from apps.inspection.checks.context import THRESHOLDS
from apps.inspection.models import DatabaseTarget, Schedule, Template

MAX_THRESHOLD_LINES = 60
SELECT = {"class": "form-select"}
TICKS = forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"})


def check_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The catalogue for a checkbox list, grouped by domain."""
    groups = []
    for domain, label in Domain.choices:
        items = sorted(((c.id, c.title) for c in CATALOGUE.values() if c.domain == domain), key=lambda i: i[0])
        if items:
            groups.append((label, items))
    return groups


class RunForm(forms.Form):
    template = forms.ModelChoiceField(label=_("Template"), queryset=Template.objects.none(), empty_label=None)
    clusters = forms.ModelMultipleChoiceField(
        label=_("Clusters"),
        queryset=Cluster.objects.none(),
        required=False,
        widget=TICKS,
        help_text=_("None ticked: the template's clusters, or every cluster you may inspect."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = access.templates(user)
        self.fields["clusters"].queryset = access.clusters_for(user, INSPECTION_RUN).order_by("name")


class TemplateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    description = forms.CharField(label=_("Description"), max_length=500, required=False)
    checks = forms.MultipleChoiceField(label=_("Checks"), widget=forms.CheckboxSelectMultiple)
    clusters = forms.ModelMultipleChoiceField(
        label=_("Clusters"),
        queryset=Cluster.objects.none(),
        required=False,
        widget=TICKS,
        help_text=_("None ticked: every cluster the person running it may inspect."),
    )
    thresholds = forms.CharField(
        label=_("Thresholds"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One per line: name = number. Empty: the defaults, listed below."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["checks"].choices = check_choices()
        self.fields["clusters"].queryset = access.clusters_for(user, INSPECTION_RUN).order_by("name")

    def clean_thresholds(self) -> dict[str, float]:
        text = self.cleaned_data.get("thresholds") or ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) > MAX_THRESHOLD_LINES:
            raise ValidationError(_("At most %(count)s thresholds.") % {"count": MAX_THRESHOLD_LINES})
        found: dict[str, float] = {}
        for line in lines:
            name, sep, value = line.partition("=")
            name = name.strip()
            if not sep or name not in THRESHOLDS:
                raise ValidationError(_("%(line)s: not a known threshold name = number.") % {"line": line[:80]})
            try:
                number = float(value.strip())
            except ValueError:
                raise ValidationError(_("%(line)s: the value is not a number.") % {"line": line[:80]}) from None
            if not (0 <= number <= 1e12):
                raise ValidationError(_("%(line)s: the value is out of range.") % {"line": line[:80]})
            found[name] = number
        return found

    @staticmethod
    def thresholds_text(thresholds: dict) -> str:
        return "\n".join(f"{k} = {v:g}" for k, v in sorted(thresholds.items()))


def _recipients(text: str) -> list[str]:
    items = [item.strip() for item in text.replace(",", "\n").replace(";", "\n").splitlines() if item.strip()]
    for item in items:
        try:
            validate_email(item)
        except ValidationError:
            raise ValidationError(_("%(address)s is not an email address.") % {"address": item[:80]}) from None
    return items


class ScheduleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    kind = forms.ChoiceField(label=_("Kind"), choices=Schedule.Kind.choices, widget=forms.Select(attrs=SELECT))
    template = forms.ModelChoiceField(
        label=_("Template"),
        queryset=Template.objects.all(),
        required=False,
        empty_label="—",
        widget=forms.Select(attrs=SELECT),
    )
    clusters = forms.ModelMultipleChoiceField(
        label=_("Clusters"), queryset=Cluster.objects.none(), required=False, widget=TICKS
    )
    cron = forms.CharField(
        label=_("Schedule (cron)"),
        max_length=100,
        initial="0 7 * * *",
        help_text=_("Minute hour day-of-month month day-of-week: 0 7 * * * is every day at 07:00."),
    )
    timezone = forms.CharField(label=_("Time zone"), max_length=63, initial="Asia/Shanghai")
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)
    recipients = forms.CharField(
        label=_("Email the report to"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One address per line. Kubemate users read it in their own language."),
    )
    language = forms.ChoiceField(
        label=_("Language for other recipients"), choices=settings.LANGUAGES, widget=forms.Select(attrs=SELECT)
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clusters"].queryset = access.clusters_for(user, INSPECTION_RUN).order_by("name")

    def clean_recipients(self) -> list[str]:
        return _recipients(self.cleaned_data.get("recipients") or "")

    def clean(self):
        data = super().clean()
        if data.get("kind") == Schedule.Kind.INSPECTION and not data.get("template"):
            self.add_error("template", _("Pick the template the schedule runs."))
        return data


class AgentForm(forms.Form):
    name = forms.SlugField(label=_("Name"), max_length=63)
    url = forms.URLField(
        label=_("Address"),
        max_length=255,
        assume_scheme="https",
        help_text=_("The agent's HTTPS address, e.g. https://10.0.0.12:9479."),
    )
    token = forms.CharField(
        label=_("Token"), max_length=512, widget=forms.PasswordInput(render_value=False), strip=True
    )
    fingerprint = forms.CharField(
        label=_("Certificate fingerprint (SHA-256)"),
        max_length=120,
        required=False,
        help_text=_("As the agent's log prints it. Empty: the certificate presented now is trusted and pinned."),
    )
    cluster = forms.ModelChoiceField(
        label=_("Cluster"), queryset=Cluster.objects.all(), required=False, widget=forms.Select(attrs=SELECT)
    )
    node_name = forms.CharField(label=_("Node"), max_length=253, required=False)


class DatabaseForm(forms.Form):
    name = forms.SlugField(label=_("Name"), max_length=63)
    engine = forms.ChoiceField(
        label=_("Engine"), choices=DatabaseTarget.Engine.choices, widget=forms.Select(attrs=SELECT)
    )
    host = forms.CharField(label=_("Host"), max_length=253)
    port = forms.IntegerField(label=_("Port"), min_value=1, max_value=65535)
    database = forms.CharField(label=_("Database"), max_length=63)
    username = forms.CharField(label=_("User (read-only)"), max_length=63)
    password = forms.CharField(label=_("Password"), max_length=512, widget=forms.PasswordInput(render_value=False))
    use_tls = forms.BooleanField(label=_("Use TLS"), required=False)
    cluster = forms.ModelChoiceField(
        label=_("Cluster"), queryset=Cluster.objects.all(), required=False, widget=forms.Select(attrs=SELECT)
    )
    namespace = forms.CharField(label=_("Namespace"), max_length=63, required=False)
