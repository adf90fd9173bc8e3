"""The forms of the backups pages: plans (etcd, Velero, Kubemate's database), a Velero backup now, storage targets,
etcd access and Velero's namespace. They check the shape of what was typed; the services (services.py,
velero/services.py) decide what the person may do, and the storage, etcd or the cluster whether it works.

Keys, certificates' private keys and secret keys are write-only: never given back to a form (an empty field on a
change keeps the stored one)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.backups.models import Kind, Plan, Target
from apps.clusters.values import is_dns_label
from apps.core import cron as cron_fields
from apps.core.deferred import Failure

SELECT = {"class": "form-select"}
SPLIT = re.compile(r"[\s,]+")


def split_names(text: str) -> list[str]:
    return [n for n in SPLIT.split(text or "") if n]


def _cron(value: str) -> str:
    value = " ".join((value or "").split())
    if value:
        try:
            cron_fields.parse(value)
        except Failure as exc:
            raise ValidationError(str(exc)) from None
    return value


class VeleroSelectionForm(forms.Form):
    """What a Velero backup takes, for a plan and for a backup now: namespaces picked from those the person holds (a
    checkbox each) and, for people who hold the capability on the whole cluster, typed ones too (or "*": every
    namespace); a label selector; volume snapshots or not."""

    namespaces = forms.MultipleChoiceField(label=_("Namespaces"), required=False, widget=forms.CheckboxSelectMultiple)
    other_namespaces = forms.CharField(
        label=_("Other namespaces"),
        max_length=1000,
        required=False,
        help_text=_('Separated by spaces or commas; "*" backs up every namespace.'),
    )
    label_selector = forms.CharField(
        label=_("Label selector"),
        max_length=300,
        required=False,
        help_text=_("Only objects with these labels, e.g. app=payments,tier!=cache. Empty: every object."),
    )
    snapshot_volumes = forms.BooleanField(
        label=_("Snapshot volumes"),
        required=False,
        help_text=_("Needs a volume snapshot provider in the cluster; without one, only the objects are kept."),
    )

    def _set_namespaces(self, choices: list[str], allow_other: bool) -> None:
        self.fields["namespaces"].choices = [(n, n) for n in choices]
        self.allow_other = allow_other
        if not allow_other:
            del self.fields["other_namespaces"]

    def clean_other_namespaces(self):
        names = split_names(self.cleaned_data.get("other_namespaces", ""))
        for name in names:
            if name != "*" and not is_dns_label(name):
                raise ValidationError(gettext("%(name)s is not a namespace name.") % {"name": name[:70]})
        return names

    def chosen_namespaces(self) -> list[str]:
        data = self.cleaned_data
        return sorted(set(data.get("namespaces") or []) | set(data.get("other_namespaces") or []))

    def _require_namespaces(self) -> None:
        if not self.errors and not self.chosen_namespaces():
            message = (
                gettext('Pick at least one namespace, or type "*" for every namespace.')
                if self.allow_other
                else gettext("Pick at least one namespace.")
            )
            self.add_error("namespaces", message)


class PlanForm(VeleroSelectionForm):
    """An etcd, Velero or database plan. Velero plans have no storage target (Velero writes to its own storage
    location) and no count: Velero keeps each backup ``keep_days`` x 24 hours (its TTL)."""

    name = forms.CharField(
        label=_("Name"), max_length=50, help_text=_("Lower-case letters, digits and dashes, e.g. etcd-nightly.")
    )
    target = forms.ModelChoiceField(
        label=_("Storage target"), queryset=Target.objects.all(), empty_label=None, widget=forms.Select(attrs=SELECT)
    )
    cron = forms.CharField(
        label=_("Schedule (cron)"),
        max_length=cron_fields.MAX_LENGTH,
        required=False,
        help_text=_("Minute hour day-of-month month day-of-week, e.g. 0 2 * * * (every night at 02:00)."),
    )
    enabled = forms.BooleanField(label=_("Scheduled backups run"), required=False, initial=True)
    keep_count = forms.IntegerField(
        label=_("Keep at most"), min_value=1, max_value=1000, initial=7, help_text=_("backups; older ones are deleted")
    )
    keep_days = forms.IntegerField(
        label=_("Keep for (days)"), min_value=1, max_value=3650, initial=7, help_text=_("then a backup is deleted")
    )
    rpo_hours = forms.IntegerField(
        label=_("Recovery point objective (hours)"),
        min_value=1,
        max_value=8760,
        initial=24,
        help_text=_("The newest good backup may be at most this old; older shows red."),
    )

    def __init__(self, *args, kind: str, plan: Plan | None = None, namespaces=(), allow_other=False, **kwargs):
        if plan is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": plan.name,
                "target": plan.target_id,
                "namespaces": list(plan.namespaces),
                "other_namespaces": " ".join(n for n in plan.namespaces if n not in namespaces),
                "label_selector": plan.label_selector,
                "snapshot_volumes": plan.snapshot_volumes,
                "cron": plan.cron,
                "enabled": plan.enabled,
                "keep_count": plan.keep_count,
                "keep_days": plan.keep_days,
                "rpo_hours": plan.rpo_hours,
            }
        super().__init__(*args, **kwargs)
        self.kind, self.plan = kind, plan
        if kind == Kind.VELERO:
            for name in ("target", "keep_count"):
                del self.fields[name]
            self.fields["cron"].required = True
            self.fields["cron"].help_text = _(
                "Minute hour day-of-month month day-of-week, e.g. 0 2 * * *; Velero runs it in the cluster."
            )
            self.fields["keep_days"].help_text = _("Velero deletes each backup after this many days (its TTL).")
            self._set_namespaces(list(namespaces), allow_other)
        else:
            for name in ("namespaces", "other_namespaces", "label_selector", "snapshot_volumes"):
                del self.fields[name]
            self.fields["cron"].help_text = _(
                "Minute hour day-of-month month day-of-week, e.g. 0 2 * * *. Empty: only when run by hand."
            )
        if plan is not None:
            self.fields["name"].disabled = True

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not is_dns_label(name):
            raise ValidationError(gettext("A plan's name is lower-case letters, digits and dashes."))
        return name

    def clean_cron(self):
        return _cron(self.cleaned_data.get("cron", ""))

    def clean(self):
        data = super().clean()
        if self.kind == Kind.VELERO:
            self._require_namespaces()
        return data

    def apply(self, plan: Plan) -> Plan:
        data = self.cleaned_data
        if plan.pk is None:
            plan.name = data["name"]
        plan.cron, plan.enabled = data["cron"], data["enabled"]
        plan.keep_days, plan.rpo_hours = data["keep_days"], data["rpo_hours"]
        if self.kind == Kind.VELERO:
            plan.namespaces = self.chosen_namespaces()
            plan.label_selector = data["label_selector"].strip()
            plan.snapshot_volumes = data["snapshot_volumes"]
        else:
            plan.target = data["target"]
            plan.keep_count = data["keep_count"]
        return plan


class BackupNowForm(VeleroSelectionForm):
    """A Velero backup now (``velero backup create``): namespaces, labels, how long Velero keeps it."""

    ttl_hours = forms.IntegerField(
        label=_("Keep for (hours)"),
        min_value=1,
        max_value=87600,
        initial=720,
        help_text=_("Velero deletes the backup after this (720 hours: 30 days)."),
    )

    def __init__(self, *args, namespaces=(), allow_other=False, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_namespaces(list(namespaces), allow_other)

    def clean(self):
        data = super().clean()
        self._require_namespaces()
        return data


class TargetForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=63, help_text=_("Lower-case letters, digits and dashes, e.g. backup-store.")
    )
    endpoint = forms.URLField(
        label=_("Endpoint"), max_length=300, assume_scheme="https", help_text=_("e.g. https://s3.bank.local:9000")
    )
    bucket = forms.CharField(label=_("Bucket"), max_length=63)
    region = forms.CharField(label=_("Region"), max_length=40, initial="us-east-1")
    prefix = forms.CharField(
        label=_("Folder"),
        max_length=200,
        required=False,
        help_text=_("A folder inside the bucket, e.g. kubemate/prod."),
    )
    path_style = forms.BooleanField(
        label=_("Path-style addressing (https://host/bucket)"),
        required=False,
        initial=True,
        help_text=_("Most stores inside a bank's network (Ceph, versitygw) need it."),
    )
    access_key = forms.CharField(label=_("Access key"), max_length=200, required=False, strip=True)
    secret_key = forms.CharField(
        label=_("Secret key"),
        max_length=500,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
    )
    ca_pem = forms.CharField(
        label=_("Certificate authority (PEM)"),
        required=False,
        max_length=64 * 1024,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("When the store's certificate is signed by the bank's own authority: paste it here."),
    )

    def __init__(self, *args, target: Target | None = None, **kwargs):
        if target is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": target.name,
                "endpoint": target.endpoint,
                "bucket": target.bucket,
                "region": target.region,
                "prefix": target.prefix,
                "path_style": target.path_style,
                "ca_pem": target.ca_pem,
            }
        super().__init__(*args, **kwargs)
        self.target = target
        if target is None:
            self.fields["access_key"].required = self.fields["secret_key"].required = True

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not is_dns_label(name):
            raise ValidationError(gettext("A name is lower-case letters, digits and dashes."))
        clash = Target.objects.filter(name=name)
        if self.target is not None:
            clash = clash.exclude(pk=self.target.pk)
        if clash.exists():
            raise ValidationError(gettext("A storage target called %(name)s exists already.") % {"name": name})
        return name

    def clean_endpoint(self):
        value = self.cleaned_data["endpoint"]
        if urlsplit(value).scheme not in {"http", "https"}:
            raise ValidationError(gettext("The endpoint is an http:// or https:// address."))
        return value.rstrip("/")

    def clean_prefix(self):
        return self.cleaned_data["prefix"].strip().strip("/")

    def apply(self, target: Target) -> tuple[Target, str, str]:
        """``target`` with the typed values, and the keys typed (empty: keep the stored ones)."""
        data = self.cleaned_data
        target.name, target.endpoint, target.bucket = data["name"], data["endpoint"], data["bucket"].strip()
        target.region, target.prefix, target.path_style = data["region"].strip(), data["prefix"], data["path_style"]
        target.ca_pem = data["ca_pem"].strip()
        return target, data["access_key"], data["secret_key"]


class EtcdAccessForm(forms.Form):
    endpoints = forms.CharField(
        label=_("Endpoints"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("etcd's client URLs, one a line, e.g. https://10.0.0.11:2379."),
    )
    ca_pem = forms.CharField(
        label=_("etcd's certificate authority (PEM)"),
        required=False,
        max_length=64 * 1024,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("e.g. /etc/kubernetes/pki/etcd/ca.crt on a control-plane node."),
    )
    cert_pem = forms.CharField(
        label=_("Client certificate (PEM)"),
        required=False,
        max_length=64 * 1024,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("e.g. /etc/kubernetes/pki/apiserver-etcd-client.crt. Empty keeps the stored one."),
    )
    key_pem = forms.CharField(
        label=_("Client key (PEM)"),
        required=False,
        max_length=64 * 1024,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Stored encrypted, never shown again. Empty keeps the stored one."),
    )

    def __init__(self, *args, access=None, **kwargs):
        if access is not None and "initial" not in kwargs:
            kwargs["initial"] = {"endpoints": "\n".join(access.endpoints), "ca_pem": access.ca_pem}
        super().__init__(*args, **kwargs)
        self.access = access

    def clean_endpoints(self):
        found = split_names(self.cleaned_data["endpoints"])
        if not found:
            raise ValidationError(gettext("Give at least one endpoint."))
        for endpoint in found:
            parts = urlsplit(endpoint)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValidationError(
                    gettext("%(endpoint)s is not an http:// or https:// address.") % {"endpoint": endpoint[:100]}
                )
        return found

    def clean(self):
        data = super().clean()
        has_cert = bool(data.get("cert_pem", "").strip()) or bool(self.access and self.access.cert_encrypted)
        has_key = bool(data.get("key_pem", "").strip()) or bool(self.access and self.access.key_encrypted)
        if has_cert != has_key:
            raise ValidationError(gettext("Give the client certificate and its key together."))
        return data


class VeleroNamespaceForm(forms.Form):
    namespace = forms.CharField(
        label=_("Velero namespace"),
        max_length=63,
        required=False,
        help_text=_("Where Velero runs in this cluster, e.g. velero; empty when it does not."),
    )

    def clean_namespace(self):
        value = self.cleaned_data["namespace"].strip()
        if value and not is_dns_label(value):
            raise ValidationError(gettext("%(name)s is not a namespace name.") % {"name": value[:70]})
        return value
