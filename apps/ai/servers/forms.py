"""The model server form (deploy Ollama or vLLM into a project namespace) and the external endpoint form, validated
with sentences that say what to write instead."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.accounts import access as accounts_access
from apps.accounts.capabilities import AI_SERVE, RELEASES_DEPLOY
from apps.accounts.models import Project
from apps.ai import access
from apps.ai.models import Endpoint
from apps.ai.servers import spec as server_spec
from apps.clusters.models import Resource
from apps.clusters.registry.services import RegistryError, address_problem, check_pem, check_url
from apps.clusters.values import is_dns_subdomain, is_label_key, is_label_value
from apps.core import crypto
from apps.releases.forms import (
    cpu_cores,
    memory_bytes,
    parse_node_selector,
    style_selects,
    validate_dns_label,
    validate_image,
    validate_port,
)
from apps.releases.models import Release

VOLUME_MODES = (
    ("new", gettext_lazy("A new volume claim")),
    ("existing", gettext_lazy("An existing volume claim")),
    ("none", gettext_lazy("No volume (models are lost when the pod restarts)")),
)
ACCESS_MODES = (
    ("ReadWriteOnce", gettext_lazy("One node at a time (ReadWriteOnce)")),
    ("ReadWriteMany", gettext_lazy("Many nodes (ReadWriteMany)")),
)
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
MAX_MODELS = 20
MAX_TOLERATIONS = 20
MAX_PEM = 64 * 1024
# A model as vLLM takes it: a Hugging Face id (org/name, with a revision after ':' for some), or a path on the volume.
VLLM_MODEL = re.compile(r"^(/[\w.@+-]+)+/?$|^[\w.-]+(/[\w.-]+)?$")
# A model as Ollama names it: [namespace/]name[:tag].
OLLAMA_MODEL = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?(:[\w.-]+)?$")
ENDPOINT_NAME = re.compile(r"^[\w][\w .-]{0,62}$")
PLATFORM_ONLY_ADMIN = gettext_lazy(
    "Only an AI administrator registers an endpoint for the whole platform; choose one of your projects."
)


def _lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate((text or "").splitlines(), 1) if line.strip()]


def parse_tolerations(text: str) -> list[dict]:
    """One per line, as ``kubectl taint`` writes a taint: key=value:Effect (this value), key:Effect (any value),
    key (any value, any effect) or * (every taint)."""
    tolerations, errors = [], []
    lines = _lines(text)
    if len(lines) > MAX_TOLERATIONS:
        raise ValidationError(_("At most %(limit)s tolerations are allowed.") % {"limit": MAX_TOLERATIONS})
    for number, line in lines:
        rest, colon, effect = line.rpartition(":") if ":" in line else (line, "", "")
        key, equals, value = rest.partition("=")
        key, value, effect = key.strip(), value.strip(), effect.strip()
        if colon and effect not in EFFECTS:
            errors.append(
                _("Line %(n)s: the effect is one of %(effects)s.") % {"n": number, "effects": ", ".join(EFFECTS)}
            )
            continue
        if key == "*" and not equals:
            tolerations.append({"key": "", "operator": "Exists", "effect": effect})
            continue
        if not is_label_key(key) or (equals and not is_label_value(value)):
            errors.append(
                _("Line %(n)s: write key=value:Effect, key:Effect or key, for example nvidia.com/gpu:NoSchedule.")
                % {"n": number}
            )
            continue
        if equals:
            tolerations.append({"key": key, "operator": "Equal", "value": value, "effect": effect})
        else:
            tolerations.append({"key": key, "operator": "Exists", "effect": effect})
    if errors:
        raise ValidationError(errors)
    return tolerations


def serving_projects(user):
    """Projects with a namespace where ``user`` may both serve models (ai.serve) and deploy releases."""
    return (
        access.projects(user, AI_SERVE)
        .filter(accounts_access.q(user, RELEASES_DEPLOY, cluster="cluster", namespace="namespaces__overlap"))
        .exclude(namespaces=[])
    )


def may_serve_in(user, project: Project, namespace: str) -> bool:
    return all(
        accounts_access.may(user, code, cluster=project.cluster, namespace=namespace)
        for code in (AI_SERVE, RELEASES_DEPLOY)
    )


class ServerForm(forms.Form):
    project = forms.ModelChoiceField(label=gettext_lazy("Project"), queryset=Project.objects.none())
    namespace = forms.ChoiceField(
        label=gettext_lazy("Namespace"),
        error_messages={
            "invalid_choice": gettext_lazy(
                "%(value)s is not a namespace where you may deploy model servers: choose one from the list."
            )
        },
    )
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=50,
        validators=[validate_dns_label],
        help_text=gettext_lazy("The release, Deployment and Service name, for example llm-chat."),
    )
    kind = forms.ChoiceField(
        label=gettext_lazy("Server"),
        choices=(
            (Endpoint.Kind.OLLAMA, gettext_lazy("Ollama")),
            (Endpoint.Kind.VLLM, gettext_lazy("vLLM (OpenAI-compatible)")),
        ),
        initial=Endpoint.Kind.OLLAMA,
    )
    image = forms.CharField(
        label=gettext_lazy("Image"),
        max_length=512,
        required=False,
    )
    models = forms.CharField(
        label=gettext_lazy("Models"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy(
            "vLLM: the one model it serves, a Hugging Face id or a path on the volume (/models/…). Ollama: the "
            "models you will pull or have put on the volume, one per line (the first is the default)."
        ),
    )
    gpus = forms.IntegerField(label=gettext_lazy("GPUs"), min_value=0, max_value=16, initial=1)
    gpu_resource = forms.CharField(
        label=gettext_lazy("GPU resource"),
        max_length=100,
        initial=server_spec.GPU_RESOURCE,
        help_text=gettext_lazy("A MIG slice such as nvidia.com/mig-1g.10gb works too."),
    )
    node_selector = forms.CharField(
        label=gettext_lazy("Run only on nodes labelled"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 1}),
        initial=f"{server_spec.GPU_NODE_LABEL}=true",
        help_text=gettext_lazy("key=value, one per line."),
    )
    tolerations = forms.CharField(
        label=gettext_lazy("Tolerate the taints"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 1}),
        initial=f"{server_spec.GPU_TAINT}:NoSchedule",
        help_text=gettext_lazy("key=value:Effect, key:Effect or key, one per line; GPU nodes are usually tainted."),
    )
    volume = forms.ChoiceField(label=gettext_lazy("Model volume"), choices=VOLUME_MODES, initial="new")
    volume_claim = forms.CharField(
        label=gettext_lazy("Volume claim"),
        max_length=63,
        required=False,
        help_text=gettext_lazy("Empty for a new one: <name>-models."),
    )
    volume_size = forms.CharField(label=gettext_lazy("Size"), max_length=20, required=False, initial="50Gi")
    storage_class = forms.CharField(
        label=gettext_lazy("Storage class"),
        max_length=253,
        required=False,
        help_text=gettext_lazy("Empty: the cluster's default class."),
    )
    access_mode = forms.ChoiceField(label=gettext_lazy("Access"), choices=ACCESS_MODES, initial="ReadWriteOnce")
    mount_path = forms.CharField(
        label=gettext_lazy("Mount path"),
        max_length=200,
        required=False,
        help_text=gettext_lazy("Empty: /root/.ollama for Ollama, /models for vLLM."),
    )
    cpu_request = forms.CharField(label=gettext_lazy("CPU request"), max_length=20, initial="2")
    cpu_limit = forms.CharField(label=gettext_lazy("CPU limit"), max_length=20, initial="8")
    memory_request = forms.CharField(label=gettext_lazy("Memory request"), max_length=20, initial="8Gi")
    memory_limit = forms.CharField(label=gettext_lazy("Memory limit"), max_length=20, initial="32Gi")
    port = forms.IntegerField(
        label=gettext_lazy("Port"),
        required=False,
        validators=[validate_port],
        help_text=gettext_lazy("Empty: 11434 for Ollama, 8000 for vLLM."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        style_selects(self)
        self.fields["image"].help_text = _(
            "Empty: %(ollama)s or %(vllm)s. Pull it into your registry mirror if the cluster cannot reach Docker Hub."
        ) % {"ollama": server_spec.KINDS["ollama"].image, "vllm": server_spec.KINDS["vllm"].image}
        projects = list(serving_projects(user))
        self.fields["project"].queryset = serving_projects(user)
        self.fields["namespace"].widget.attrs["data-filter-by"] = "field-project"
        self.fields["namespace"].choices = [
            ("", _("Choose a namespace")),
            *((p.name, [(ns, ns) for ns in p.namespaces if may_serve_in(user, p, ns)]) for p in projects),
        ]

    def clean_image(self):
        value = self.cleaned_data["image"].strip()
        if value:
            validate_image(value)
        return value

    def clean_gpu_resource(self):
        value = self.cleaned_data["gpu_resource"].strip()
        if "/" not in value or not is_label_key(value):
            raise ValidationError(
                _("“%(value)s” is not an extended resource name; write domain/name, for example nvidia.com/gpu.")
                % {"value": value}
            )
        return value

    def clean_node_selector(self):
        return parse_node_selector(self.cleaned_data["node_selector"])

    def clean_tolerations(self):
        return parse_tolerations(self.cleaned_data["tolerations"])

    def clean_volume_claim(self):
        value = self.cleaned_data["volume_claim"].strip()
        if value:
            validate_dns_label(value)
        return value

    def clean_volume_size(self):
        value = self.cleaned_data["volume_size"].strip()
        if value and memory_bytes(value) <= 0:
            raise ValidationError(_("Give the volume a size, for example 50Gi."))
        return value

    def clean_storage_class(self):
        value = self.cleaned_data["storage_class"].strip()
        if value and not is_dns_subdomain(value):
            raise ValidationError(
                _("“%(value)s” is not a storage class name: lower-case letters, digits, '-' and '.'.")
                % {"value": value}
            )
        return value

    def clean_mount_path(self):
        value = self.cleaned_data["mount_path"].strip()
        if value and (not value.startswith("/") or not re.fullmatch(r"(/[\w.@+-]+)+/?", value) or ".." in value):
            raise ValidationError(_("“%(value)s” is not an absolute path, such as /models.") % {"value": value})
        return value.rstrip("/") or value

    def clean_cpu_request(self):
        return self._quantity("cpu_request", cpu_cores)

    def clean_cpu_limit(self):
        return self._quantity("cpu_limit", cpu_cores)

    def clean_memory_request(self):
        return self._quantity("memory_request", memory_bytes)

    def clean_memory_limit(self):
        return self._quantity("memory_limit", memory_bytes)

    def _quantity(self, field: str, parse) -> str:
        value = self.cleaned_data[field].strip()
        parse(value)
        return value

    def clean_models(self):
        lines = [line for _n, line in _lines(self.cleaned_data["models"])]
        if len(lines) > MAX_MODELS:
            raise ValidationError(_("Name at most %(limit)s models.") % {"limit": MAX_MODELS})
        if any(len(line) > 200 for line in lines):
            raise ValidationError(_("A model name is at most 200 characters."))
        return lines

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        self._clean_place(data)
        self._clean_models(data, kind)
        for quantity, parse in (("cpu", cpu_cores), ("memory", memory_bytes)):
            request, limit = data.get(f"{quantity}_request"), data.get(f"{quantity}_limit")
            if request and limit and parse(request) > parse(limit):
                self.add_error(
                    f"{quantity}_limit", _("The limit must be at least the request (%(r)s).") % {"r": request}
                )
        volume = data.get("volume")
        if volume == "existing" and not data.get("volume_claim") and "volume_claim" not in self.errors:
            self.add_error("volume_claim", _("Name the volume claim to mount."))
        if volume == "new" and not data.get("volume_size") and "volume_size" not in self.errors:
            self.add_error("volume_size", _("Give the volume a size, for example 50Gi."))
        self._clean_claim(data)
        return data

    def _clean_place(self, data: dict) -> None:
        project, namespace, name = data.get("project"), data.get("namespace"), data.get("name")
        if not project or not namespace:
            return
        if namespace not in project.namespaces or not may_serve_in(self.user, project, namespace):
            self.add_error(
                "namespace",
                _("Choose one of the project's namespaces where you may deploy model servers: %(list)s.")
                % {"list": ", ".join(ns for ns in project.namespaces if may_serve_in(self.user, project, ns))},
            )
            return
        if not name:
            return
        if Release.objects.filter(project__cluster=project.cluster, namespace=namespace, name=name).exists():
            self.add_error(
                "name", _("A release named %(name)s already exists in %(ns)s.") % {"name": name, "ns": namespace}
            )
        elif Endpoint.objects.filter(project=project, name=name).exists():
            self.add_error(
                "name",
                _("The project already has a model server or endpoint named %(name)s.") % {"name": name},
            )

    def _clean_models(self, data: dict, kind: str | None) -> None:
        models = data.get("models")
        if models is None or kind is None:
            return
        if kind == Endpoint.Kind.VLLM:
            if len(models) != 1:
                self.add_error("models", _("vLLM serves one model: name it, for example Qwen/Qwen2.5-7B-Instruct."))
            elif not VLLM_MODEL.fullmatch(models[0]) or ".." in models[0]:
                self.add_error(
                    "models",
                    _("“%(value)s” is not a model vLLM can load: a Hugging Face id or a path such as /models/qwen.")
                    % {"value": models[0]},
                )
        else:
            wrong = [m for m in models if not OLLAMA_MODEL.fullmatch(m)]
            if wrong:
                self.add_error(
                    "models",
                    _("“%(value)s” is not an Ollama model name; write name:tag, for example qwen2.5:7b.")
                    % {"value": wrong[0]},
                )

    def _clean_claim(self, data: dict) -> None:
        """A new claim must not take over one that exists; an existing one must exist (as the inventory saw it)."""
        project, namespace, name = data.get("project"), data.get("namespace"), data.get("name")
        if not project or not namespace or not name or data.get("volume") in (None, "none"):
            return
        claim = data.get("volume_claim") or server_spec.default_claim(name)
        data["volume_claim"] = claim
        seen = Resource.objects.filter(
            cluster=project.cluster, kind="PersistentVolumeClaim", namespace=namespace, name=claim
        ).exists()
        if data["volume"] == "new" and seen:
            self.add_error(
                "volume_claim",
                _("A volume claim named %(claim)s already exists in %(ns)s: mount it as an existing one, or name "
                  "another.") % {"claim": claim, "ns": namespace},
            )  # fmt: skip

    def settings(self) -> server_spec.ServerSettings:
        d = self.cleaned_data
        kind = server_spec.KINDS[d["kind"]]
        port = d.get("port") or kind.port
        if d["volume"] == "none":
            volume = server_spec.Volume(mode="none")
        else:
            volume = server_spec.Volume(
                mode=d["volume"],
                claim=d["volume_claim"],
                size=d["volume_size"],
                storage_class=d["storage_class"],
                access_mode=d["access_mode"],
                mount_path=d["mount_path"] or kind.mount_path,
            )
        return server_spec.ServerSettings(
            name=d["name"],
            kind=d["kind"],
            image=d["image"] or kind.image,
            models=tuple(d["models"]),
            gpus=d["gpus"],
            gpu_resource=d["gpu_resource"],
            node_selector=d["node_selector"],
            tolerations=tuple(d["tolerations"]),
            volume=volume,
            cpu_request=d["cpu_request"],
            cpu_limit=d["cpu_limit"],
            memory_request=d["memory_request"],
            memory_limit=d["memory_limit"],
            port=port,
        )


class EndpointForm(forms.Form):
    """Registers (or changes) an external OpenAI-compatible or Ollama endpoint. The API key is write-only: an empty
    field keeps the stored one."""

    name = forms.CharField(
        label=gettext_lazy("Name"), max_length=63, help_text=gettext_lazy("For example bank-llm-gateway.")
    )
    project = forms.ModelChoiceField(
        label=gettext_lazy("Project"),
        queryset=Project.objects.none(),
        required=False,
        empty_label=gettext_lazy("The whole platform"),
    )
    kind = forms.ChoiceField(
        label=gettext_lazy("API"),
        choices=(
            (Endpoint.Kind.OPENAI, gettext_lazy("OpenAI-compatible (/v1)")),
            (Endpoint.Kind.OLLAMA, gettext_lazy("Ollama")),
        ),
        initial=Endpoint.Kind.OPENAI,
    )
    base_url = forms.CharField(
        label=gettext_lazy("Address"),
        max_length=300,
        help_text=gettext_lazy("For example https://llm.bank.example/v1 (with /v1 for an OpenAI-compatible API)."),
    )
    api_key = forms.CharField(
        label=gettext_lazy("API key"),
        required=False,
        max_length=4096,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    remove_api_key = forms.BooleanField(label=gettext_lazy("Remove the stored API key"), required=False)
    ca_pem = forms.CharField(
        label=gettext_lazy("Certificate authority (PEM)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("The CA that signed the server's certificate, when it is not a public one."),
    )
    default_model = forms.CharField(
        label=gettext_lazy("Default model"),
        max_length=200,
        required=False,
        help_text=gettext_lazy("Empty: the first model the server lists."),
    )
    save_unchecked = forms.BooleanField(
        label=gettext_lazy("Save even if the endpoint does not answer now"), required=False
    )

    def __init__(self, *args, user, endpoint: Endpoint | None = None, **kwargs):
        self.user = user
        self.endpoint = endpoint
        if endpoint is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": endpoint.name,
                    "project": endpoint.project_id,
                    "kind": endpoint.kind,
                    "base_url": endpoint.base_url,
                    "ca_pem": endpoint.ca_pem,
                    "default_model": endpoint.default_model,
                },
            )
        super().__init__(*args, **kwargs)
        style_selects(self)
        self.fields["project"].queryset = access.projects(user, AI_SERVE)
        if not access.is_admin(user):  # only an AI administrator registers for the whole platform
            self.fields["project"].required = True
            self.fields["project"].empty_label = None
            self.fields["project"].error_messages["required"] = PLATFORM_ONLY_ADMIN
        if endpoint is not None and endpoint.api_key_encrypted:
            self.fields["api_key"].help_text = _(
                "A key is stored (never shown). Empty keeps it; a new one replaces it."
            )
        else:
            self.fields["api_key"].help_text = _("Stored encrypted and never shown again.")
            del self.fields["remove_api_key"]

    def clean_name(self):
        value = self.cleaned_data["name"].strip()
        if not ENDPOINT_NAME.fullmatch(value):
            raise ValidationError(_("Use letters, digits, spaces, '.', '_' and '-' in a name, for example bank-llm."))
        return value

    def clean_base_url(self):
        try:
            url = check_url(self.cleaned_data["base_url"], schemes=("http", "https"))
        except RegistryError as exc:
            raise ValidationError(str(exc)) from None
        problem = address_problem(url, allow_link_local=False)
        if problem:
            raise ValidationError(problem)
        return url

    def clean_ca_pem(self):
        value = self.cleaned_data["ca_pem"].strip()
        if not value:
            return ""
        if len(value) > MAX_PEM:
            raise ValidationError(_("The certificate authority is longer than 64 KB."))
        try:
            check_pem(value)
        except RegistryError as exc:
            raise ValidationError(str(exc)) from None
        return value + "\n"

    def clean(self):
        data = super().clean()
        project = data.get("project")
        if "project" in data and not access.on_project(self.user, AI_SERVE, project):
            self.add_error(
                "project",
                PLATFORM_ONLY_ADMIN if project is None else _("You may not register endpoints in this project."),
            )
        name = data.get("name")
        if name:
            taken = Endpoint.objects.filter(project=project, name=name)
            if self.endpoint is not None:
                taken = taken.exclude(pk=self.endpoint.pk)
            if taken.exists():
                self.add_error("name", _("Another model server or endpoint is named %(name)s here.") % {"name": name})
        return data

    def encrypted_key(self) -> str | None:
        """The new encrypted key; "" to remove the stored one; None to keep it."""
        key = self.cleaned_data.get("api_key") or ""
        if key:
            return crypto.encrypt(key)
        if self.cleaned_data.get("remove_api_key"):
            return ""
        return None
