"""Forms of the cluster registry: credentials (kubeconfig, or address + token + CA) and the cluster's settings.

Credential fields are never filled back into a page: the token input does not
render its value and text areas of a bound form are emptied by the templates.
"""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.clusters import values
from apps.clusters.models import Cluster
from apps.clusters.registry.k8s import Purpose
from apps.clusters.registry.services import (
    ClusterSettings,
    Credentials,
    RegistryError,
    address_problem,
    check_pem,
    check_token,
    check_url,
    kubeconfig_for_context,
    kubeconfig_from_token,
    labels_text,
    parse_labels,
)

MAX_KUBECONFIG_BYTES = 256 * 1024
TENANT_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
ENVIRONMENT_SUGGESTIONS = ("production", "staging", "test", "dev")
SERVICE_URL_FIELDS = ("prometheus_url", "alertmanager_url", "logs_url", "jaeger_url")
TENANT_HELP = {
    "logs": gettext_lazy(
        "Only for a multi-tenant store: Loki's X-Scope-OrgID, or VictoriaLogs' AccountID:ProjectID such as 12:0."
    ),
    "jaeger": gettext_lazy("Only when Jaeger runs with multi-tenancy: the value of its tenant header (x-tenant)."),
}


class CredentialsForm(forms.Form):
    """How Kubemate reaches a cluster. ``credentials_required=False`` (settings page) keeps the stored ones
    when every credential field is left empty."""

    SOURCE_KUBECONFIG = "kubeconfig"
    SOURCE_TOKEN = "token"  # noqa: S105 - a choice value, not a secret

    source = forms.ChoiceField(
        label=gettext_lazy("Credentials from"),
        choices=[
            (SOURCE_KUBECONFIG, gettext_lazy("A kubeconfig (upload the file or paste it)")),
            (SOURCE_TOKEN, gettext_lazy("API server address, bearer token and CA certificate")),
        ],
        initial=SOURCE_KUBECONFIG,
        widget=forms.RadioSelect,
    )
    kubeconfig_file = forms.FileField(label=gettext_lazy("Kubeconfig file"), required=False)
    kubeconfig_text = forms.CharField(
        label=gettext_lazy("…or paste the kubeconfig"), required=False, strip=False, widget=forms.Textarea
    )
    context = forms.CharField(
        label=gettext_lazy("Context"),
        required=False,
        max_length=253,
        help_text=gettext_lazy("Leave empty to use the kubeconfig's current context. Other contexts are not stored."),
    )
    api_server = forms.CharField(
        label=gettext_lazy("API server address"),
        required=False,
        max_length=255,
        help_text=gettext_lazy("For example https://10.0.0.10:6443"),
    )
    token = forms.CharField(
        label=gettext_lazy("Bearer token"), required=False, max_length=16384, widget=forms.PasswordInput()
    )
    ca_pem = forms.CharField(
        label=gettext_lazy("CA certificate (PEM)"),
        required=False,
        widget=forms.Textarea,
        help_text=gettext_lazy("The certificate authority that signed the API server's certificate."),
    )
    purpose = forms.ChoiceField(
        label=gettext_lazy("What are these credentials?"),
        choices=[
            (
                Purpose.OWN,
                gettext_lazy("These are Kubemate's own credentials: store them encrypted, as given."),
            ),
            (
                Purpose.ADMIN,
                gettext_lazy(
                    "These are administrator credentials: install Kubemate's own least-privilege identity with "
                    "them, then forget them."
                ),
            ),
        ],
        initial=Purpose.OWN,
        widget=forms.RadioSelect,
    )
    allow_link_local = forms.BooleanField(
        label=gettext_lazy("Allow link-local addresses"),
        required=False,
        help_text=gettext_lazy(
            "Link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, 100.100.100.200, fd00:ec2::254) "
            "are refused unless this is ticked. Only a platform administrator may tick it."
        ),
    )

    def __init__(self, *args, user, credentials_required: bool = True, link_local_allowed: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.credentials_required = credentials_required
        # A cluster where an administrator already allowed link-local addresses keeps that setting.
        self.link_local_allowed = link_local_allowed

    def _given(self, data: dict) -> bool:
        return any(data.get(name) for name in ("kubeconfig_file", "kubeconfig_text", "api_server", "token", "ca_pem"))

    def clean_kubeconfig_file(self):
        upload = self.cleaned_data.get("kubeconfig_file")
        if not upload:
            return ""
        if upload.size > MAX_KUBECONFIG_BYTES:
            raise forms.ValidationError(_("The kubeconfig file is larger than 256 KB; this is not a kubeconfig."))
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError(_("The kubeconfig file is not a text file (UTF-8).")) from None

    def clean(self):
        data = super().clean()
        data["credentials"] = None
        allow = bool(data.get("allow_link_local"))
        if allow and not self.user.is_superuser and not self.link_local_allowed:
            self.add_error(
                "allow_link_local", _("Only a platform administrator (superuser) may allow link-local addresses.")
            )
            allow = False
        data["allow_link_local"] = allow
        if not self._given(data) and not self.has_error("kubeconfig_file"):
            if self.credentials_required:
                self.add_error(None, _("Give the cluster's credentials: a kubeconfig, or an address, token and CA."))
            return data
        if data.get("source") == self.SOURCE_TOKEN:
            kubeconfig, field = self._from_token(data), "api_server"
        else:
            kubeconfig, field = self._from_kubeconfig(data), "kubeconfig_text"
        if kubeconfig is None:
            return data
        credentials = Credentials(kubeconfig, purpose=data.get("purpose") or Purpose.OWN)
        problem = address_problem(credentials.server, allow_link_local=allow)
        if problem:
            self.add_error(field, problem)
            return data
        data["credentials"] = credentials
        return data

    def _from_kubeconfig(self, data: dict) -> str | None:
        if self.has_error("kubeconfig_file"):
            return None
        text, pasted = data.get("kubeconfig_file") or "", data.get("kubeconfig_text") or ""
        if text and pasted.strip():
            self.add_error("kubeconfig_text", _("Give the kubeconfig either as a file or as pasted text, not both."))
            return None
        if not (text or pasted.strip()):
            self.add_error("kubeconfig_text", _("Upload a kubeconfig file or paste one here."))
            return None
        try:
            return kubeconfig_for_context(text or pasted, data.get("context") or "")
        except RegistryError as exc:
            self.add_error("kubeconfig_text", str(exc))
            return None

    def _from_token(self, data: dict) -> str | None:
        valid = True
        for field, check in (("api_server", check_url), ("token", check_token), ("ca_pem", check_pem)):
            try:
                check(data.get(field) or "")
            except RegistryError as exc:
                self.add_error(field, str(exc))
                valid = False
        if not valid:
            return None
        return kubeconfig_from_token(server=data["api_server"], token=data["token"], ca_pem=data["ca_pem"])


class ClusterForm(CredentialsForm):
    """Registration (credentials required) and the settings page (credentials optional: replace them)."""

    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=63,
        help_text=gettext_lazy("Lower-case letters, digits and '-', as in a DNS label, for example prod-bj-1."),
    )
    environment = forms.CharField(
        label=gettext_lazy("Environment"),
        required=False,
        max_length=32,
        help_text=gettext_lazy("For example production, staging or dev."),
    )
    region = forms.CharField(label=gettext_lazy("Region"), required=False, max_length=63)
    labels = forms.CharField(
        label=gettext_lazy("Labels"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("One key=value per line, e.g. team=payments. Keys and values as in Kubernetes labels."),
    )
    prometheus_url = forms.CharField(label=gettext_lazy("Prometheus URL"), required=False, max_length=200)
    alertmanager_url = forms.CharField(label=gettext_lazy("Alertmanager URL"), required=False, max_length=200)
    logs_url = forms.CharField(label=gettext_lazy("Log store URL"), required=False, max_length=200)
    logs_backend = forms.ChoiceField(
        label=gettext_lazy("Log store"),
        choices=[("victorialogs", "VictoriaLogs (LogsQL)"), ("loki", "Loki (LogQL)")],
        initial="victorialogs",
        required=False,
    )
    jaeger_url = forms.CharField(label=gettext_lazy("Jaeger URL"), required=False, max_length=200)
    # Credentials of Prometheus and Alertmanager: written, never shown again (the settings page offers "keep").
    prometheus_auth = forms.ChoiceField(label=gettext_lazy("Prometheus sign-in"), required=False)
    prometheus_username = forms.CharField(label=gettext_lazy("User name"), required=False, max_length=200)
    prometheus_password = forms.CharField(
        label=gettext_lazy("Password"), required=False, max_length=500, widget=forms.PasswordInput
    )
    prometheus_token = forms.CharField(
        label=gettext_lazy("Bearer token"), required=False, max_length=4096, widget=forms.PasswordInput
    )
    alertmanager_auth = forms.ChoiceField(label=gettext_lazy("Alertmanager sign-in"), required=False)
    alertmanager_username = forms.CharField(label=gettext_lazy("User name"), required=False, max_length=200)
    alertmanager_password = forms.CharField(
        label=gettext_lazy("Password"), required=False, max_length=500, widget=forms.PasswordInput
    )
    alertmanager_token = forms.CharField(
        label=gettext_lazy("Bearer token"), required=False, max_length=4096, widget=forms.PasswordInput
    )
    logs_auth = forms.ChoiceField(label=gettext_lazy("Log store sign-in"), required=False)
    logs_username = forms.CharField(label=gettext_lazy("User name"), required=False, max_length=200)
    logs_password = forms.CharField(
        label=gettext_lazy("Password"), required=False, max_length=500, widget=forms.PasswordInput
    )
    logs_token = forms.CharField(
        label=gettext_lazy("Bearer token"), required=False, max_length=4096, widget=forms.PasswordInput
    )
    logs_tenant = forms.CharField(label=gettext_lazy("Tenant"), required=False, max_length=200)
    jaeger_auth = forms.ChoiceField(label=gettext_lazy("Jaeger sign-in"), required=False)
    jaeger_username = forms.CharField(label=gettext_lazy("User name"), required=False, max_length=200)
    jaeger_password = forms.CharField(
        label=gettext_lazy("Password"), required=False, max_length=500, widget=forms.PasswordInput
    )
    jaeger_token = forms.CharField(
        label=gettext_lazy("Bearer token"), required=False, max_length=4096, widget=forms.PasswordInput
    )
    jaeger_tenant = forms.CharField(label=gettext_lazy("Tenant"), required=False, max_length=200)

    def __init__(self, *args, user, instance: Cluster | None = None, **kwargs):
        self.instance = instance
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": instance.name,
                    "environment": instance.environment,
                    "region": instance.region,
                    "labels": labels_text(instance.labels),
                    "allow_link_local": instance.allow_link_local,
                    **{field: getattr(instance, field) for field in SERVICE_URL_FIELDS},
                    "logs_backend": instance.logs_backend,
                    **{
                        f"{endpoint}_tenant": instance.endpoint_auth(endpoint).get("tenant", "")
                        for endpoint in Cluster.TENANT_ENDPOINTS
                    },
                },
            )
        super().__init__(
            *args,
            user=user,
            credentials_required=instance is None,
            link_local_allowed=bool(instance and instance.allow_link_local),
            **kwargs,
        )
        for endpoint in Cluster.ENDPOINTS:
            field = self.fields[f"{endpoint}_auth"]
            field.widget = forms.RadioSelect()
            field.choices = [
                *([("keep", _("Keep the stored credentials"))] if instance and _has_auth(instance, endpoint) else []),
                ("none", _("None")),
                ("basic", _("User name and password (basic auth)")),
                ("bearer", _("Bearer token")),
            ]
            field.initial = field.choices[0][0]
        for endpoint in Cluster.TENANT_ENDPOINTS:
            self.fields[f"{endpoint}_tenant"].help_text = TENANT_HELP[endpoint]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not values.is_dns_label(name):
            raise forms.ValidationError(
                _("Use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit.")
            )
        others = Cluster.objects.filter(name=name)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError(_("A cluster named %(name)s is already registered.") % {"name": name})
        return name

    def clean_environment(self):
        environment = self.cleaned_data["environment"].strip()
        if environment and not values.is_dns_label(environment):
            raise forms.ValidationError(_("Use lower-case letters, digits and '-', for example production."))
        return environment

    def clean_labels(self):
        try:
            return parse_labels(self.cleaned_data["labels"])
        except RegistryError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        for field in SERVICE_URL_FIELDS:
            url = (data.get(field) or "").strip()
            if not url:
                data[field] = ""
                continue
            try:
                data[field] = check_url(url, schemes=("http", "https"))
            except RegistryError as exc:
                self.add_error(field, str(exc))
                continue
            problem = address_problem(url, allow_link_local=data.get("allow_link_local", False))
            if problem:
                self.add_error(field, problem)
        for endpoint in Cluster.ENDPOINTS:
            kind = data.get(f"{endpoint}_auth") or self.fields[f"{endpoint}_auth"].initial
            data[f"{endpoint}_auth"] = kind
            if kind == "basic" and not (data.get(f"{endpoint}_username") and data.get(f"{endpoint}_password")):
                self.add_error(f"{endpoint}_password", _("Type the user name and the password."))
            if kind == "bearer" and not data.get(f"{endpoint}_token"):
                self.add_error(f"{endpoint}_token", _("Paste the token."))
        data["logs_backend"] = data.get("logs_backend") or "victorialogs"
        for endpoint in Cluster.TENANT_ENDPOINTS:
            tenant = (data.get(f"{endpoint}_tenant") or "").strip()
            if tenant and not TENANT_PATTERN.fullmatch(tenant):
                self.add_error(
                    f"{endpoint}_tenant",
                    _("Use letters, digits, '-', '_', '.' and ':' only, at most 200 characters."),
                )
            data[f"{endpoint}_tenant"] = tenant
        return data

    def endpoint_auth(self) -> dict[str, dict | None]:
        """Per endpoint: None to keep what is stored, {} for none, else the credentials to store."""
        data, chosen = self.cleaned_data, {}
        for endpoint in Cluster.ENDPOINTS:
            kind = data[f"{endpoint}_auth"]
            tenant = {"tenant": data[f"{endpoint}_tenant"]} if endpoint in Cluster.TENANT_ENDPOINTS else {}
            if kind == "keep":
                chosen[endpoint] = {"keep": True, **tenant} if endpoint in Cluster.TENANT_ENDPOINTS else None
            elif kind == "basic":
                chosen[endpoint] = {
                    "username": data[f"{endpoint}_username"],
                    "password": data[f"{endpoint}_password"],
                    **tenant,
                }
            elif kind == "bearer":
                chosen[endpoint] = {"token": data[f"{endpoint}_token"].strip(), **tenant}
            else:
                chosen[endpoint] = {k: v for k, v in tenant.items() if v}
        return chosen

    def settings(self) -> ClusterSettings:
        data = self.cleaned_data
        return ClusterSettings(
            name=data["name"],
            environment=data["environment"],
            region=data["region"].strip(),
            labels=data["labels"],
            allow_link_local=data["allow_link_local"],
            endpoint_auth=self.endpoint_auth(),
            logs_backend=data["logs_backend"],
            **{field: data[field] for field in SERVICE_URL_FIELDS},
        )


def _has_auth(cluster: Cluster, endpoint: str) -> bool:
    return bool(getattr(cluster, f"{endpoint}_auth_encrypted"))
