"""The syslog destination form: where the audit log goes, checked before it is saved."""

from __future__ import annotations

import ipaddress

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.clusters.registry.services import RegistryError, address_problem, check_pem
from apps.clusters.values import is_dns_label
from apps.compliance.models import SyslogDestination

MAX_PEM = 64 * 1024


class DestinationForm(forms.ModelForm):
    from_start = forms.BooleanField(
        label=gettext_lazy("Also send the events written before today"),
        required=False,
        help_text=gettext_lazy(
            "Off: the receiver gets the events written from now on. On: the whole audit log, oldest first."
        ),
    )

    class Meta:
        model = SyslogDestination
        fields = ["name", "host", "port", "transport", "format", "ca_pem", "server_name", "enabled"]
        widgets = {
            "ca_pem": forms.Textarea(attrs={"rows": 4}),
            "transport": forms.Select(attrs={"class": "form-select", "data-testid": "field-transport"}),
            "format": forms.Select(attrs={"class": "form-select", "data-testid": "field-format"}),
        }
        help_texts = {
            "ca_pem": gettext_lazy("The authority that signed the receiver's certificate; empty: the system's own."),
            "server_name": gettext_lazy("When the certificate names the receiver otherwise than the host above."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            del self.fields["from_start"]
        else:
            self.initial.setdefault("port", 6514)  # syslog over TLS (RFC 5425)
        self.fields["ca_pem"].max_length = MAX_PEM

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not is_dns_label(name):
            raise ValidationError(_("A name is lower-case letters, digits and dashes."))
        return name

    def clean_host(self):
        host = self.cleaned_data["host"].strip().strip("[]")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is None and not all(part and is_dns_label(part.lower()) for part in host.rstrip(".").split(".")):
            raise ValidationError(_("Write a host name or an IP address, without a scheme or port."))
        spelled = f"[{host}]" if isinstance(literal, ipaddress.IPv6Address) else host
        problem = address_problem(f"tcp://{spelled}:514", allow_link_local=False)
        if problem:
            raise ValidationError(problem)
        return host

    def clean_ca_pem(self):
        value = self.cleaned_data["ca_pem"].strip()
        if not value:
            return ""
        try:
            check_pem(value)
        except RegistryError as exc:
            raise ValidationError(str(exc)) from None
        return value + "\n"

    def clean_server_name(self):
        value = self.cleaned_data["server_name"].strip().rstrip(".")
        if value and not all(part and is_dns_label(part.lower()) for part in value.split(".")):
            raise ValidationError(_("Write the name as the certificate spells it, for example siem.bank.example."))
        return value

    def clean(self):
        data = super().clean()
        if data.get("transport") != SyslogDestination.Transport.TLS and (data.get("ca_pem") or data.get("server_name")):
            self.add_error("ca_pem", _("A certificate authority and a certificate name apply to TLS only."))
        return data
