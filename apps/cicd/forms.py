"""The pipeline forms. They validate shape only; services decide what the person may do."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.accounts.capabilities import CICD_EDIT
from apps.accounts.models import Project
from apps.cicd import access, uploads
from apps.cicd.models import BaseImage, Pipeline, Registry

SELECT = {"class": "form-select"}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
MAX_ENV = 50


def grouped(rows, label) -> list:
    """Choices grouped by project name (the console's script shows the group of the project picked)."""
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(label(row), []).append((row.pk, str(row)))
    return [("", "—"), *groups.items()]


class PipelineForm(forms.Form):
    project = forms.ModelChoiceField(label=_("Project"), queryset=Project.objects.none(), empty_label=None)
    namespace = forms.ChoiceField(label=_("Namespace"), help_text=_("Where it builds and deploys."))
    name = forms.CharField(
        label=_("Name"), max_length=63, help_text=_("Lower-case letters, digits and dashes, e.g. payments-api.")
    )
    description = forms.CharField(label=_("Description"), max_length=300, required=False)
    kind = forms.ChoiceField(label=_("Source"), choices=Pipeline.Kind.choices)
    # Repository.
    git_url = forms.CharField(label=_("Repository address"), max_length=500, required=False)
    git_branch = forms.CharField(label=_("Branch"), max_length=200, required=False, initial="main")
    git_username = forms.CharField(label=_("Repository user name"), max_length=200, required=False)
    git_token = forms.CharField(
        label=_("Repository token"),
        max_length=500,
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Stored encrypted, never shown again. Empty keeps the stored one."),
    )
    clear_git_token = forms.BooleanField(label=_("Remove the stored token"), required=False)
    dockerfile = forms.CharField(label=_("Dockerfile"), max_length=300, required=False, initial="Dockerfile")
    context_dir = forms.CharField(label=_("Build context"), max_length=300, required=False, initial=".")
    # Jar.
    base_image = forms.TypedChoiceField(label=_("Base image"), coerce=int, required=False, empty_value=None)
    template = forms.ChoiceField(
        label=_("Start template"), choices=[(k, t.label) for k, t in uploads.TEMPLATES.items()]
    )
    jvm_options = forms.CharField(
        label=_("JVM options"),
        max_length=500,
        required=False,
        initial="-XX:MaxRAMPercentage=75.0",
        help_text=_("Given to the JVM through its environment (JAVA_TOOL_OPTIONS, or CATALINA_OPTS for Tomcat)."),
    )
    env = forms.CharField(
        label=_("Environment"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One per line: NAME=value. Not for secrets: those go in the release."),
    )
    # Image.
    registry = forms.TypedChoiceField(label=_("Registry"), coerce=int)
    repository = forms.CharField(label=_("Image repository"), max_length=200, help_text=_("e.g. payments/api"))
    # Deploy.
    deploy_mode = forms.ChoiceField(label=_("Deploy"), choices=Pipeline.DeployMode.choices)
    release_name = forms.CharField(
        label=_("Release"), max_length=63, required=False, help_text=_("Empty: the pipeline's name.")
    )
    port = forms.IntegerField(label=_("Container port"), min_value=1, max_value=65535, initial=8080)
    canary_weight = forms.IntegerField(label=_("Canary traffic (%)"), min_value=1, max_value=99, initial=10)
    # Triggers.
    schedule = forms.CharField(
        label=_("Schedule (cron)"),
        max_length=100,
        required=False,
        help_text=_("Five fields, e.g. 0 2 * * 1-5; empty: no schedule. It runs as you."),
    )
    webhook_as_me = forms.BooleanField(
        label=_("Push webhooks run as me"),
        required=False,
        help_text=_("A signed push to the branch starts a run acting as you."),
    )

    def __init__(self, *args, user, pipeline: Pipeline | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.pipeline = user, pipeline
        projects = list(access.projects(user, CICD_EDIT))
        self.fields["project"].queryset = access.projects(user, CICD_EDIT)
        self.fields["project"].widget.attrs.update({**SELECT, "data-testid": "field-project"})
        self.fields["namespace"].choices = [
            ("", _("Choose a namespace")),
            *((p.name, [(ns, ns) for ns in access.project_namespaces(user, p, CICD_EDIT)]) for p in projects),
        ]
        self.fields["namespace"].widget.attrs.update({**SELECT, "data-filter-by": "field-project"})
        bases = BaseImage.objects.filter(project__in=projects, active=True).select_related("project")
        self.fields["base_image"].choices = grouped(bases, lambda b: b.project.name)
        self.fields["base_image"].widget.attrs.update({**SELECT, "data-filter-by": "field-project"})
        registries = list(access.registries(user))
        by_project = []
        for project in projects:
            own = [
                r
                for r in registries
                if r.project_id == project.pk or (r.project_id is None and r.cluster_id == project.cluster_id)
            ]
            if own:
                by_project.append((project.name, [(r.pk, f"{r.name} ({r.host})") for r in own]))
        self.fields["registry"].choices = [("", "—"), *by_project]
        self.fields["registry"].widget.attrs.update({**SELECT, "data-filter-by": "field-project"})
        for name in ("kind", "template", "deploy_mode"):
            self.fields[name].widget.attrs.update(SELECT)
        for name in ("namespace", "kind", "template", "deploy_mode", "base_image", "registry"):
            self.fields[name].widget.attrs["data-testid"] = f"field-{name}"
        if pipeline is not None:
            for name in ("project", "namespace", "name", "kind"):
                self.fields[name].required = False
                self.fields[name].disabled = True
            self.initial.update(
                {
                    "project": pipeline.project_id,
                    "namespace": pipeline.namespace,
                    "name": pipeline.name,
                    "description": pipeline.description,
                    "kind": pipeline.kind,
                    "git_url": pipeline.git_url,
                    "git_branch": pipeline.git_branch,
                    "git_username": pipeline.git_username,
                    "dockerfile": pipeline.dockerfile,
                    "context_dir": pipeline.context_dir,
                    "base_image": pipeline.base_image_id,
                    "template": pipeline.template,
                    "jvm_options": pipeline.jvm_options,
                    "env": "\n".join(f"{e['name']}={e.get('value', '')}" for e in pipeline.env or []),
                    "registry": pipeline.registry_id,
                    "repository": pipeline.repository,
                    "deploy_mode": pipeline.deploy_mode,
                    "release_name": pipeline.release_name,
                    "port": pipeline.port,
                    "canary_weight": pipeline.canary_weight,
                    "schedule": pipeline.schedule,
                    "webhook_as_me": pipeline.webhook_owner_id == user.pk,
                }
            )

    def clean_env(self) -> list[dict]:
        lines = [line.strip() for line in (self.cleaned_data.get("env") or "").splitlines() if line.strip()]
        if len(lines) > MAX_ENV:
            raise ValidationError(_("At most %(count)s variables.") % {"count": MAX_ENV})
        found = []
        for line in lines:
            name, sep, value = line.partition("=")
            if not sep or not ENV_NAME.fullmatch(name.strip()):
                raise ValidationError(_("%(line)s is not NAME=value.") % {"line": line[:60]})
            found.append({"name": name.strip(), "value": value.strip()})
        return found

    def clean(self):
        data = super().clean()
        kind = self.pipeline.kind if self.pipeline else data.get("kind")
        if kind == Pipeline.Kind.REPOSITORY and not data.get("git_url"):
            self.add_error("git_url", _("Enter the repository's address."))
        if kind == Pipeline.Kind.JAR and not data.get("base_image"):
            self.add_error("base_image", _("Pick an approved base image."))
        project = self.pipeline.project if self.pipeline else data.get("project")
        if project is not None and not self.pipeline and data.get("namespace") not in project.namespaces:
            self.add_error(
                "namespace",
                _("Choose one of the project's namespaces: %(list)s.") % {"list": ", ".join(project.namespaces)},
            )
        return data

    def apply(self, pipeline: Pipeline) -> Pipeline:
        """The form's values on ``pipeline`` (unsaved)."""
        data = self.cleaned_data
        if self.pipeline is None:
            pipeline.project = data["project"]
            pipeline.namespace = data["namespace"]
            pipeline.name = data["name"].strip()
            pipeline.kind = data["kind"]
        for name in (
            "description",
            "git_url",
            "git_branch",
            "git_username",
            "dockerfile",
            "context_dir",
            "template",
            "jvm_options",
            "env",
            "repository",
            "deploy_mode",
            "release_name",
            "port",
            "canary_weight",
            "schedule",
        ):
            value = data.get(name)
            setattr(pipeline, name, value.strip() if isinstance(value, str) else value)
        pipeline.git_branch = pipeline.git_branch or "main"
        pipeline.dockerfile = pipeline.dockerfile or "Dockerfile"
        pipeline.context_dir = pipeline.context_dir or "."
        pipeline.base_image = BaseImage.objects.filter(pk=data.get("base_image")).first()
        pipeline.registry = Registry.objects.filter(pk=data.get("registry")).first()
        if data.get("webhook_as_me"):
            pipeline.webhook_owner = self.user
        elif pipeline.webhook_owner_id == self.user.pk:
            pipeline.webhook_owner = None
        return pipeline

    def token(self) -> str | None:
        if self.cleaned_data.get("clear_git_token"):
            return ""
        token = self.cleaned_data.get("git_token") or ""
        return token if token else None


class UploadForm(forms.Form):
    archive = forms.FileField(label=_("Jar or war"), help_text=_("The archive to build; a run starts when it is in."))


class RunForm(forms.Form):
    commit = forms.CharField(
        label=_("Commit"), max_length=64, required=False, help_text=_("Empty: the branch's head when the run starts.")
    )

    def clean_commit(self) -> str:
        value = (self.cleaned_data.get("commit") or "").strip().lower()
        if value and not re.fullmatch(r"[0-9a-f]{40}", value):
            raise ValidationError(_("A commit is its full 40-character id."))
        return value
