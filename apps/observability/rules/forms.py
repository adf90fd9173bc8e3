"""The alert rule form: what the rule watches (a ready-made template, or PromQL for those who may write it),
where, how long the condition must hold, and how serious it is."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.observability.models import AlertRule
from apps.observability.rules import catalogue
from apps.observability.rules.services import Draft

FOR_CHOICES = [
    (0, _("at once")),
    (60, _("1 minute")),
    (300, _("5 minutes")),
    (600, _("10 minutes")),
    (900, _("15 minutes")),
    (1800, _("30 minutes")),
    (3600, _("1 hour")),
]
CUSTOM = "custom"


class RuleForm(forms.Form):
    template = forms.ChoiceField(label=_("What the rule watches"))
    namespace = forms.ChoiceField(label=_("Namespace"))
    workload = forms.CharField(
        label=_("Workload or app"),
        required=False,
        max_length=63,
        help_text=_("The Deployment, StatefulSet or Service name, e.g. payments."),
    )
    threshold = forms.FloatField(label=_("Threshold"), required=False)
    expr = forms.CharField(
        label=_("Expression (PromQL)"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("The alert fires for every series the expression returns; it only sees this namespace."),
    )
    for_seconds = forms.TypedChoiceField(label=_("For"), choices=FOR_CHOICES, coerce=int, initial=300)
    severity = forms.ChoiceField(label=_("Severity"), choices=AlertRule.Severity.choices, initial="warning")
    name = forms.CharField(label=_("Rule name"), max_length=50, help_text=_("Lower-case letters, digits and '-'."))
    alert = forms.CharField(
        label=_("Alert name"), max_length=100, help_text=_("As Alertmanager shows it, e.g. PaymentsMemoryHigh.")
    )
    summary = forms.CharField(
        label=_("Summary"),
        required=False,
        max_length=300,
        help_text=_("What the alert says; left empty, Kubemate writes one."),
    )

    def __init__(self, *args, namespaces: list[str], may_write_promql: bool, rule: AlertRule | None = None, **kw):
        if rule is not None:
            kw.setdefault(
                "initial",
                {
                    "template": rule.template or CUSTOM,
                    "namespace": rule.namespace,
                    "workload": (rule.params or {}).get("workload", ""),
                    "threshold": (rule.params or {}).get("threshold"),
                    "expr": "" if rule.template else rule.expr,
                    "for_seconds": rule.for_seconds,
                    "severity": rule.severity,
                    "name": rule.name,
                    "alert": rule.alert,
                    "summary": rule.summary,
                },
            )
        super().__init__(*args, **kw)
        self.rule = rule
        choices = [(t.code, t.label) for t in catalogue.TEMPLATES]
        if may_write_promql or (rule is not None and not rule.template):
            choices.append((CUSTOM, _("An expression written in PromQL")))
        self.fields["template"].choices = choices
        self.fields["namespace"].choices = [(n, n) for n in namespaces]
        self.may_write_promql = may_write_promql
        if rule is not None:
            for locked in ("namespace", "name"):
                self.fields[locked].disabled = True
        self.units = {t.code: str(t.unit) for t in catalogue.TEMPLATES}
        for name, field in self.fields.items():
            if isinstance(field.widget, forms.Select):
                field.widget.attrs.update({"class": "form-select", "data-testid": f"field-{name}"})

    def clean(self):
        data = super().clean()
        if data.get("template") == CUSTOM and not self.may_write_promql:
            self.add_error("expr", _("You may not write PromQL; choose a ready-made rule."))
        return data

    def draft(self) -> Draft:
        data = self.cleaned_data
        custom = data["template"] == CUSTOM
        return Draft(
            namespace=data["namespace"],
            name=data["name"].strip(),
            alert=data["alert"].strip(),
            severity=data["severity"],
            for_seconds=data["for_seconds"],
            summary=data.get("summary") or "",
            template="" if custom else data["template"],
            workload=(data.get("workload") or "").strip(),
            threshold=data.get("threshold"),
            expr=data.get("expr") or "" if custom else "",
        )
