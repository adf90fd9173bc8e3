"""The receiver form: where the notifications go (email, a webhook, a DingTalk or WeCom robot), which alerts (the
route: severities and namespaces), and the secrets, which are write-only: left empty, the stored ones are kept."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.observability.models import AlertRule, Receiver
from apps.observability.notify.services import Draft

SECRET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class ReceiverForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=40, help_text=_("Lower-case letters, digits and '-'."))
    kind = forms.ChoiceField(label=_("Send to"), choices=Receiver.Kind.choices)
    severities = forms.MultipleChoiceField(
        label=_("Severities"),
        choices=AlertRule.Severity.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None chosen: every severity."),
    )
    namespaces = forms.MultipleChoiceField(
        label=_("Namespaces"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None chosen: every namespace of the project."),
    )
    send_resolved = forms.BooleanField(label=_("Also when resolved"), required=False, initial=True)
    to = forms.CharField(label=_("Email addresses"), required=False, max_length=1000, help_text=_("Comma-separated."))
    sender = forms.CharField(label=_("From"), required=False, max_length=200)
    smarthost = forms.CharField(label=_("Mail relay (host:port)"), required=False, max_length=200)
    username = forms.CharField(label=_("SMTP user"), required=False, max_length=200)
    password = forms.CharField(label=_("SMTP password"), required=False, max_length=500, widget=SECRET)
    require_tls = forms.BooleanField(label=_("Require TLS"), required=False, initial=True)
    url = forms.CharField(label=_("Webhook address"), required=False, max_length=500)
    token = forms.CharField(label=_("Bearer token"), required=False, max_length=500, widget=SECRET)
    robot_url = forms.CharField(
        label=_("Robot webhook address"),
        required=False,
        max_length=500,
        widget=SECRET,
        help_text=_("As the group's robot settings show it; it holds the robot's token."),
    )
    sign_secret = forms.CharField(label=_("Signing secret (DingTalk)"), required=False, max_length=500, widget=SECRET)

    def __init__(self, *args, project, receiver: Receiver | None = None, **kw):
        if receiver is not None:
            options = receiver.options or {}
            kw.setdefault(
                "initial",
                {
                    "name": receiver.name,
                    "kind": receiver.kind,
                    "severities": receiver.severities,
                    "namespaces": receiver.namespaces,
                    "send_resolved": receiver.send_resolved,
                    "to": ", ".join(options.get("to", [])),
                    "sender": options.get("from", ""),
                    "smarthost": options.get("smarthost", ""),
                    "username": options.get("username", ""),
                    "require_tls": options.get("require_tls", True),
                    "url": options.get("url", ""),
                },
            )
        super().__init__(*args, **kw)
        self.receiver = receiver
        self.fields["namespaces"].choices = [(n, n) for n in project.namespaces]
        if receiver is not None:
            for locked in ("name", "kind"):
                self.fields[locked].disabled = True
        for name, field in self.fields.items():
            if isinstance(field.widget, forms.Select):
                field.widget.attrs.update({"class": "form-select", "data-testid": f"field-{name}"})

    def draft(self) -> Draft:
        data = self.cleaned_data
        return Draft(
            name=data["name"].strip(),
            kind=data["kind"],
            severities=list(data.get("severities") or []),
            namespaces=list(data.get("namespaces") or []),
            send_resolved=bool(data.get("send_resolved")),
            options={
                "to": data.get("to") or "",
                "from": data.get("sender") or "",
                "smarthost": data.get("smarthost") or "",
                "username": data.get("username") or "",
                "require_tls": bool(data.get("require_tls")),
                "url": data.get("url") or "",
            },
            secrets={
                "password": data.get("password") or "",
                "token": data.get("token") or "",
                "url": (data.get("robot_url") or "").strip(),
                "sign_secret": data.get("sign_secret") or "",
            },
        )
