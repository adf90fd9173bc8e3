"""The forms of the registries, base images, policies, exceptions and the vulnerability database. They check the
shape of what was typed; the services decide what the person may do and whether the registry agrees."""

from __future__ import annotations

from django import forms
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Project
from apps.cicd.models import Policy, Registry
from apps.cicd.services import MAX_EXCEPTION_DAYS
from apps.clusters.models import Cluster

SELECT = {"class": "form-select"}


class RegistryForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=63, help_text=_("Lower-case letters, digits, dots and dashes, e.g. harbor-prod.")
    )
    host = forms.CharField(
        label=_("Address"),
        max_length=255,
        help_text=_("Host and port, without https://, e.g. harbor.bank.local or 10.0.0.5:5000."),
    )
    prefix = forms.CharField(
        label=_("Path prefix"),
        max_length=200,
        required=False,
        help_text=_("Where pipelines push, a project or folder in the registry, e.g. payments. Empty: the root."),
    )
    place = forms.ChoiceField(
        label=_("Used by"),
        widget=forms.Select(attrs=SELECT),
        help_text=_("A cluster's registry serves every project of the cluster; a project's serves that project only."),
    )
    username = forms.CharField(label=_("User name"), max_length=200, required=False)
    # Not "password": the confirmation dialog sends the person's own password under that name.
    registry_password = forms.CharField(
        label=_("Password or token"),
        max_length=1000,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
    )
    forget_password = forms.BooleanField(label=_("Remove the stored password"), required=False)
    insecure = forms.BooleanField(
        label=_("Plain HTTP, or a certificate that is not checked"),
        required=False,
        help_text=_("Only for a registry on a trusted network: images and credentials travel unprotected."),
    )
    ca_pem = forms.CharField(
        label=_("Certificate authority (PEM)"),
        required=False,
        max_length=64 * 1024,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("When the registry's certificate is signed by the bank's own authority: paste it here."),
    )

    def __init__(self, *args, registry: Registry | None = None, **kwargs):
        if registry is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": registry.name,
                "host": registry.host,
                "prefix": registry.prefix,
                "place": place_of(registry),
                "username": registry.username,
                "insecure": registry.insecure,
                "ca_pem": registry.ca_pem,
            }
        super().__init__(*args, **kwargs)
        self.registry = registry
        self.fields["place"].choices = place_choices()

    def apply(self, registry: Registry) -> tuple[Registry, str | None]:
        """``registry`` with the typed values, and the password to store (None: keep the stored one)."""
        data = self.cleaned_data
        registry.name, registry.host, registry.prefix = data["name"], data["host"], data["prefix"]
        registry.username, registry.insecure, registry.ca_pem = data["username"], data["insecure"], data["ca_pem"]
        kind, _sep, pk = data["place"].partition(":")
        registry.cluster = Cluster.objects.get(pk=int(pk)) if kind == "cluster" else None
        registry.project = Project.objects.select_related("cluster").get(pk=int(pk)) if kind == "project" else None
        if data["forget_password"]:
            return registry, ""
        typed = data["registry_password"]
        return registry, (typed or None) if registry.pk else typed


def place_of(registry: Registry) -> str:
    return f"project:{registry.project_id}" if registry.project_id else f"cluster:{registry.cluster_id}"


def place_choices() -> list:
    clusters = [
        (f"cluster:{c.pk}", gettext("Every project of cluster %(cluster)s") % {"cluster": c.name})
        for c in Cluster.objects.order_by("name")
    ]
    projects = [
        (
            f"project:{p.pk}",
            gettext("Project %(project)s (%(cluster)s)") % {"project": p.name, "cluster": p.cluster.name},
        )
        for p in Project.objects.select_related("cluster").order_by("cluster__name", "name")
    ]
    return [("", "—"), (gettext("Clusters"), clusters), (gettext("Projects"), projects)]


class BaseImageForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("What pipeline authors pick, e.g. jre17."))
    registry = forms.ModelChoiceField(
        label=_("Registry"), queryset=Registry.objects.none(), empty_label=None, widget=forms.Select(attrs=SELECT)
    )
    reference = forms.CharField(
        label=_("Image"),
        max_length=400,
        help_text=_("The full reference in that registry, e.g. harbor.bank.local/base/jre17:1.4."),
    )
    description = forms.CharField(label=_("Description"), max_length=300, required=False)

    def __init__(self, *args, registries=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["registry"].queryset = Registry.objects.filter(pk__in=[r.pk for r in registries])
        self.registries = list(registries)


class PolicyForm(forms.Form):
    block_on = forms.ChoiceField(
        label=_("Scan policy"), choices=Policy.Block.choices, widget=forms.Select(attrs=SELECT)
    )
    max_concurrent_runs = forms.IntegerField(
        label=_("Runs at once"), min_value=1, max_value=20, help_text=_("More runs of the project wait in a queue.")
    )
    keep_days = forms.IntegerField(
        label=_("Keep runs' files for (days)"),
        min_value=1,
        max_value=3650,
        help_text=_("Image archives, scan reports and SBOMs older than this are removed; the history stays."),
    )
    keep_runs = forms.IntegerField(
        label=_("Always keep the last runs"),
        min_value=1,
        max_value=1000,
        help_text=_("Per pipeline, whatever their age."),
    )

    @staticmethod
    def initial_for(policy: Policy) -> dict:
        return {
            "block_on": policy.block_on,
            "max_concurrent_runs": policy.max_concurrent_runs,
            "keep_days": policy.keep_days,
            "keep_runs": policy.keep_runs,
        }


class ExceptionForm(forms.Form):
    vuln_id = forms.CharField(
        label=_("Vulnerability"), max_length=100, help_text=_("Its id or an alias, e.g. CVE-2021-44228 or GHSA-…")
    )
    package = forms.CharField(
        label=_("Package"),
        max_length=255,
        required=False,
        help_text=_("As the scan report names it, e.g. org.apache.logging.log4j:log4j-core. Empty: any package."),
    )
    justification = forms.CharField(
        label=_("Why it is accepted"),
        max_length=500,
        min_length=10,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("E.g. the vulnerable feature is turned off (JNDI lookups disabled), fix planned in CHG-1234."),
    )
    days = forms.IntegerField(
        label=_("For (days)"),
        min_value=1,
        max_value=MAX_EXCEPTION_DAYS,
        initial=30,
        help_text=lazy(
            lambda: gettext("At most %(days)s days; it ends by itself.") % {"days": MAX_EXCEPTION_DAYS}, str
        )(),
    )


class BundleForm(forms.Form):
    bundle = forms.FileField(label=_("Bundle (.zip)"))
