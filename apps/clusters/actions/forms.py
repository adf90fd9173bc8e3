"""Forms of the day-2 actions."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.clusters import values
from apps.clusters.actions.services import LOG_TAIL_CHOICES

MAX_REPLICAS = 1000


class ScaleForm(forms.Form):
    replicas = forms.IntegerField(
        label=_("Replicas"),
        min_value=0,
        max_value=MAX_REPLICAS,
        error_messages={
            "required": _("Enter the number of replicas."),
            "invalid": _("Enter a whole number of replicas between 0 and 1000."),
            "min_value": _("Enter a whole number of replicas between 0 and 1000."),
            "max_value": _("Enter a whole number of replicas between 0 and 1000."),
        },
    )


class YamlEditForm(forms.Form):
    text = forms.CharField(label=_("YAML"), widget=forms.Textarea, strip=False)
    resource_version = forms.CharField(widget=forms.HiddenInput)


class ContainerField(forms.CharField):
    """A container name as Kubernetes allows it (a DNS-1123 label): it goes into the log request and the file name."""

    def validate(self, value):
        super().validate(value)
        if value and not values.is_dns_label(value):
            raise forms.ValidationError(_("No container has that name."), code="invalid")


class LogForm(forms.Form):
    container = ContainerField(required=False)
    tail = forms.TypedChoiceField(
        label=_("Lines"), choices=[(n, n) for n in LOG_TAIL_CHOICES], coerce=int, required=False, empty_value=100
    )
    previous = forms.BooleanField(label=_("Previous container"), required=False)
    follow = forms.BooleanField(required=False)

    def clean_tail(self):
        return self.cleaned_data.get("tail") or LOG_TAIL_CHOICES[0]


class LogFollowForm(forms.Form):
    container = ContainerField()
    previous = forms.BooleanField(required=False)
    after = forms.CharField(required=False, max_length=40)
    skip = forms.IntegerField(required=False, min_value=0, max_value=100000)


FIELD_NAME = r"^[-._a-zA-Z0-9]{1,253}$"
SERVICE_ACCOUNT = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class EncryptFieldForm(forms.Form):
    """Which field of a ConfigMap or Secret to encrypt, and optionally the app's ServiceAccount that decrypts it."""

    field = forms.RegexField(
        label=_("Field"),
        regex=FIELD_NAME,
        max_length=253,
        error_messages={
            "required": _("Enter the name of the field to encrypt."),
            "invalid": _("A field name holds letters, digits, '-', '_' and '.' only, at most 253 of them."),
        },
    )
    service_account = forms.RegexField(
        label=_("ServiceAccount of the app that decrypts it"),
        regex=SERVICE_ACCOUNT,
        max_length=63,
        required=False,
        error_messages={"invalid": _("A ServiceAccount name is a DNS label: lower-case letters, digits and '-'.")},
    )
