"""Forms for users, groups, roles, projects and bindings; every error is a translated sentence."""

from __future__ import annotations

import re

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.accounts import capabilities
from apps.accounts.models import Project, Role
from apps.clusters import values
from apps.clusters.models import Cluster
from apps.core.models import AuditEvent

User = get_user_model()


def dns_label(value: str) -> str:
    """Identifiers that become Kubernetes names (ClusterRole kubemate:<slug>) must be DNS labels."""
    if not values.is_dns_label(value):
        raise ValidationError(_("Use lower-case letters, digits and hyphens; start and end with a letter or digit."))
    return value


class UserCreateForm(forms.Form):
    username = forms.RegexField(
        label=_("Username"),
        max_length=150,
        regex=r"^[\w.@+-]+$",
        error_messages={"invalid": _("Use letters, digits and . @ + - _ only.")},
    )
    full_name = forms.CharField(label=_("Full name"), max_length=150, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    password1 = forms.CharField(label=_("Password"), widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label=_("Repeat the password"), widget=forms.PasswordInput, strip=False)

    def clean_username(self):
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError(_("A user with this name already exists."))
        return username

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        elif data.get("password1"):
            candidate = User(username=data.get("username", ""), email=data.get("email", ""))
            try:
                password_validation.validate_password(data["password1"], candidate)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return data


class GroupForm(forms.ModelForm):
    members = forms.ModelMultipleChoiceField(
        label=_("Members"),
        queryset=User.objects.filter(is_active=True).order_by("username"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Group
        fields = ["name"]
        labels = {"name": _("Name")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["members"] = list(self.instance.user_set.values_list("pk", flat=True))


class RoleForm(forms.ModelForm):
    capabilities = forms.MultipleChoiceField(
        label=_("Capabilities"),
        choices=[(c.code, c.label) for c in capabilities.CAPABILITIES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Role
        fields = ["slug", "name_en", "name_zh", "description_en", "description_zh", "capabilities"]
        widgets = {
            "description_en": forms.Textarea(attrs={"rows": 2}),
            "description_zh": forms.Textarea(attrs={"rows": 2}),
        }

    def clean_slug(self):
        return dns_label(self.cleaned_data["slug"])


class NamespacesField(forms.CharField):
    """Namespaces typed as a comma- or space-separated list."""

    def to_python(self, value):
        text = super().to_python(value) or ""
        return sorted({part for part in re.split(r"[\s,]+", text) if part})

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def validate(self, value):
        if not value:
            raise ValidationError(_("Name at least one namespace."))
        bad = [ns for ns in value if not values.is_dns_label(ns)]
        if bad:
            raise ValidationError(
                _("These are not valid namespace names: %(names)s. Use lower-case letters, digits and hyphens.")
                % {"names": ", ".join(bad)}
            )


class ProjectForm(forms.ModelForm):
    namespaces = NamespacesField(label=_("Namespaces"), help_text=_("Separate names with commas."))

    class Meta:
        model = Project
        fields = ["cluster", "slug", "name", "description", "namespaces"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def clean_slug(self):
        return dns_label(self.cleaned_data["slug"])

    def clean(self):
        data = super().clean()
        cluster, namespaces = data.get("cluster"), data.get("namespaces") or []
        if cluster and namespaces:
            taken = (
                Project.objects.filter(cluster=cluster, namespaces__overlap=namespaces)
                .exclude(pk=self.instance.pk)
                .first()
            )
            if taken:
                shared = sorted(set(taken.namespaces) & set(namespaces))
                self.add_error(
                    "namespaces",
                    _("Namespaces %(names)s already belong to project %(project)s.")
                    % {"names": ", ".join(shared), "project": taken.name},
                )
        return data


class BindingForm(forms.Form):
    """Bind a role to a user or a group; the scope comes from where the form is shown."""

    role = forms.ModelChoiceField(label=_("Role"), queryset=Role.objects.all())
    user = forms.ModelChoiceField(
        label=_("User"), queryset=User.objects.filter(is_active=True).order_by("username"), required=False
    )
    group = forms.ModelChoiceField(label=_("Group"), queryset=Group.objects.order_by("name"), required=False)
    cluster = forms.ModelChoiceField(
        label=_("Cluster"),
        queryset=Cluster.objects.all(),
        required=False,
        help_text=_("Leave empty to bind across the whole platform."),
    )

    def __init__(self, *args, project: Project | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        if project is not None:
            del self.fields["cluster"]

    def clean(self):
        data = super().clean()
        if bool(data.get("user")) == bool(data.get("group")):
            raise ValidationError(_("Choose either a user or a group."))
        return data


class AuditFilterForm(forms.Form):
    actor = forms.CharField(label=_("Actor"), required=False)
    action = forms.CharField(label=_("Action"), required=False)
    cluster = forms.CharField(label=_("Cluster"), required=False)
    namespace = forms.CharField(label=_("Namespace"), required=False)
    object = forms.CharField(label=_("Object"), required=False)
    result = forms.ChoiceField(
        label=_("Result"), required=False, choices=[("", _("Any result")), *AuditEvent.Result.choices]
    )
    since = forms.DateTimeField(
        label=_("From"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        label=_("To"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    # Form field -> queryset lookup.
    LOOKUPS = {
        "actor": "actor_name__icontains",
        "action": "action__icontains",
        "cluster": "cluster__iexact",
        "namespace": "namespace__iexact",
        "object": "object_name__icontains",
        "result": "result",
        "since": "created_at__gte",
        "until": "created_at__lte",
    }

    def filter(self, queryset):
        given = {
            lookup: self.cleaned_data[name] for name, lookup in self.LOOKUPS.items() if self.cleaned_data.get(name)
        }
        return queryset.filter(**given)
