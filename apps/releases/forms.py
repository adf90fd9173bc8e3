"""The release form: every field a person fills in, validated with sentences that say what to write instead."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.accounts import access
from apps.accounts.capabilities import RELEASES_DEPLOY
from apps.accounts.models import Project
from apps.clusters.inventory.pages.tables import listeners_text
from apps.clusters.models import Resource
from apps.clusters.values import is_dns_label, is_label_key, is_label_value, parse_quantity
from apps.core import crypto
from apps.releases import render
from apps.releases.changes import extra_lines
from apps.releases.models import Release

HOSTNAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE = re.compile(
    rf"^(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?/)?{_PATH_PART}(?:/{_PATH_PART})*"
    r"(?P<tag>:[\w][\w.-]{0,127})?(?P<digest>@sha256:[a-f0-9]{64})?$"
)
CPU = re.compile(r"^(?P<number>[0-9]+(\.[0-9]+)?)(?P<unit>m?)$")
MEMORY = re.compile(r"^(?P<number>[0-9]+(\.[0-9]+)?)(?P<unit>Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
PROBE_TYPES = (
    ("none", gettext_lazy("No probe")),
    ("http", gettext_lazy("HTTP request")),
    ("tcp", gettext_lazy("TCP connection")),
)


def validate_dns_label(value: str) -> None:
    if not is_dns_label(value):
        raise ValidationError(
            _(
                "“%(value)s” is not a valid name: use at most 63 lower-case letters, digits and hyphens, "
                "starting and ending with a letter or digit, for example payments-api."
            )
            % {"value": value}
        )


def validate_image(value: str) -> None:
    match = IMAGE.match(value)
    if not match or len(value) > 512:
        raise ValidationError(
            _(
                "“%(value)s” is not an image reference. Write registry/repository:tag, for example "
                "registry.example.com/team/app:1.4.2, or pin a digest with @sha256:…"
            )
            % {"value": value}
        )
    if not match.group("tag") and not match.group("digest"):
        raise ValidationError(
            _("Name the version of “%(value)s”: add a tag such as :1.4.2 or a digest such as @sha256:…")
            % {"value": value}
        )


def validate_port(value: int) -> None:
    if not 1 <= value <= 65535:
        raise ValidationError(_("Port %(port)s is outside 1-65535; pick a port in that range.") % {"port": value})


def cpu_cores(value: str) -> Decimal:
    if not CPU.match(value):
        raise ValidationError(
            _("“%(value)s” is not a CPU amount. Write 250m (a quarter of a core) or 2 (two cores).") % {"value": value}
        )
    return parse_quantity(value)


def memory_bytes(value: str) -> Decimal:
    if not MEMORY.match(value):
        raise ValidationError(_("“%(value)s” is not a memory size. Write 512Mi or 2Gi.") % {"value": value})
    return parse_quantity(value)


# Kubernetes checks no single variable's length, but the whole object must stay under its request limit
# (about 3 MB) and a Secret under 1 MiB; these keep a release well inside both, with a sentence per field.
MAX_VARIABLES = 200
MAX_VARIABLE_NAME = 128
MAX_VARIABLE_VALUE = 32 * 1024
MAX_VARIABLES_TOTAL = 256 * 1024


def check_sizes(values: list[tuple[str, str]]) -> list[str]:
    """Sentences for variables over the limits above (``values`` is [(name, value)])."""
    errors = []
    if len(values) > MAX_VARIABLES:
        errors.append(
            _("At most %(limit)s variables are allowed; %(count)s were given.")
            % {"limit": MAX_VARIABLES, "count": len(values)}
        )
    for name, value in values:
        if len(name) > MAX_VARIABLE_NAME:
            errors.append(
                _("The name %(name)s… is longer than %(limit)s characters.")
                % {"name": name[:20], "limit": MAX_VARIABLE_NAME}
            )
        if len(value.encode()) > MAX_VARIABLE_VALUE:
            errors.append(
                _("The value of %(name)s is longer than 32 KB; keep large content in a config map.")
                % {"name": name[:40]}
            )
    if sum(len(n) + len(v.encode()) for n, v in values) > MAX_VARIABLES_TOTAL:
        errors.append(_("The variables add up to more than 256 KB; keep large content in a config map."))
    return errors


def _lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def parse_env(text: str) -> list[dict]:
    """``NAME=value``, ``NAME=configmap:<name>/<key>`` or ``NAME=secret:<name>/<key>``, one per line."""
    env, seen, errors = [], set(), []
    for number, line in _lines(text):
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not ENV_NAME.match(name):
            errors.append(
                _("Line %(n)s: write NAME=value, NAME=configmap:name/key or NAME=secret:name/key.") % {"n": number}
            )
            continue
        if name in seen:
            errors.append(_("Line %(n)s: %(name)s is set twice.") % {"n": number, "name": name})
            continue
        seen.add(name)
        source, _colon, ref = value.partition(":")
        if source in ("configmap", "secret") and _colon:
            object_name, slash, key = ref.partition("/")
            if not slash or not is_dns_label(object_name) or not ENV_NAME.match(key):
                errors.append(
                    _("Line %(n)s: a reference is written %(source)s:name/key, for example %(source)s:app-config/url.")
                    % {"n": number, "source": source}
                )
                continue
            env.append({"name": name, source: object_name, "key": key})
        else:
            env.append({"name": name, "value": value})
    errors += check_sizes([(item["name"], item.get("value", "")) for item in env])
    if errors:
        raise ValidationError(errors)
    return env


def format_env(env: list[dict]) -> str:
    lines = []
    for item in env:
        if "configmap" in item:
            lines.append(f"{item['name']}=configmap:{item['configmap']}/{item['key']}")
        elif "secret" in item:
            lines.append(f"{item['name']}=secret:{item['secret']}/{item['key']}")
        else:
            lines.append(f"{item['name']}={item.get('value', '')}")
    return "\n".join(lines)


def parse_assignments(text: str, *, allow_empty: bool) -> dict[str, str]:
    values, errors = {}, []
    for number, line in _lines(text):
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not ENV_NAME.match(name) or (not allow_empty and not value):
            errors.append(_("Line %(n)s: write NAME=value.") % {"n": number})
            continue
        values[name] = value
    errors += check_sizes(list(values.items()))
    if errors:
        raise ValidationError(errors)
    return values


def parse_node_selector(text: str) -> dict[str, str]:
    values, errors = {}, []
    for number, line in _lines(text):
        key, sep, value = line.partition("=")
        if not sep or not is_label_key(key.strip()) or not is_label_value(value.strip()):
            errors.append(_("Line %(n)s: write a node label as key=value, for example disk=ssd.") % {"n": number})
            continue
        values[key.strip()] = value.strip()
    if errors:
        raise ValidationError(errors)
    return values


def parse_ports(text: str) -> list[int]:
    ports = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        if not part.isdigit():
            raise ValidationError(
                _("“%(value)s” is not a port number; write numbers like 8080, 9090.") % {"value": part}
            )
        validate_port(int(part))
        ports.append(int(part))
    if not ports:
        raise ValidationError(_("Enter the port the app listens on, for example 8080."))
    if len(set(ports)) != len(ports):
        raise ValidationError(_("Each port may be listed once."))
    return ports


def style_selects(form: forms.Form) -> None:
    """Selects render through their widget (so choices may be grouped): give them the console's look and test id."""
    for name, field in form.fields.items():
        if isinstance(field.widget, forms.Select):
            field.widget.attrs.update({"class": "form-select", "data-testid": f"field-{name}"})


def port_field(label, initial, required=True):
    return forms.IntegerField(label=label, initial=initial, required=required, validators=[validate_port])


class ReleaseForm(forms.Form):
    """Creates (with project, namespace and name) or edits (without them) a release's spec."""

    project = forms.ModelChoiceField(label=gettext_lazy("Project"), queryset=Project.objects.none())
    # Chosen among the namespaces of the projects the user may deploy to (grouped by project).
    namespace = forms.ChoiceField(
        label=gettext_lazy("Namespace"),
        error_messages={
            "invalid_choice": gettext_lazy(
                "%(value)s is not a namespace of a project you may deploy to: choose one from the list."
            )
        },
    )
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=63,
        validators=[validate_dns_label],
        help_text=gettext_lazy("For example payments-api."),
    )
    image = forms.CharField(
        label=gettext_lazy("Image"),
        max_length=512,
        validators=[validate_image],
        help_text=gettext_lazy("registry/repository:tag, or a digest @sha256:…"),
    )
    replicas = forms.IntegerField(label=gettext_lazy("Replicas"), min_value=0, max_value=1000)
    # The count the form showed: a deploy carries a newer live count (scaled meanwhile) when the user left this one.
    replicas_seen = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0, max_value=1000)
    ports = forms.CharField(
        label=gettext_lazy("Container ports"),
        max_length=200,
        help_text=gettext_lazy("The first one receives the Service's traffic."),
    )
    env = forms.CharField(
        label=gettext_lazy("Environment variables"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("One per line: NAME=value, NAME=configmap:name/key or NAME=secret:name/key."),
    )
    secret_env = forms.CharField(
        label=gettext_lazy("Sensitive variables"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy(
            "NAME=value, one per line: encrypted by Kubemate and never shown again. NAME= removes one; "
            "names you leave out keep their stored value."
        ),
    )
    encrypt_in_cluster = forms.BooleanField(
        label=gettext_lazy("Encrypt the sensitive variables in the cluster too"),
        required=False,
        help_text=gettext_lazy(
            "The release's Secret then holds ciphertext only; the pod decrypts it at start (kubemate-decrypt) and "
            "the app reads each value from the file named by NAME_FILE."
        ),
    )
    decrypt_service_account = forms.RegexField(
        label=gettext_lazy("ServiceAccount that decrypts"),
        regex=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        max_length=63,
        required=False,
        help_text=gettext_lazy("The pods run as it and only it may read the project's key; empty: default."),
        error_messages={
            "invalid": gettext_lazy("A ServiceAccount name is a DNS label: lower-case letters, digits and '-'.")
        },
    )
    cpu_request = forms.CharField(label=gettext_lazy("CPU request"), max_length=20, required=False)
    cpu_limit = forms.CharField(label=gettext_lazy("CPU limit"), max_length=20, required=False)
    memory_request = forms.CharField(label=gettext_lazy("Memory request"), max_length=20, required=False)
    memory_limit = forms.CharField(label=gettext_lazy("Memory limit"), max_length=20, required=False)
    readiness_type = forms.ChoiceField(label=gettext_lazy("Readiness probe"), choices=PROBE_TYPES)
    readiness_path = forms.CharField(label=gettext_lazy("HTTP path"), required=False, max_length=200)
    readiness_port = port_field(gettext_lazy("Probe port"), 8080, required=False)
    readiness_delay = forms.IntegerField(label=gettext_lazy("Initial delay (seconds)"), min_value=0, max_value=3600)
    readiness_period = forms.IntegerField(label=gettext_lazy("Every (seconds)"), min_value=1, max_value=3600)
    liveness_type = forms.ChoiceField(label=gettext_lazy("Liveness probe"), choices=PROBE_TYPES)
    liveness_path = forms.CharField(label=gettext_lazy("HTTP path"), required=False, max_length=200)
    liveness_port = port_field(gettext_lazy("Probe port"), 8080, required=False)
    liveness_delay = forms.IntegerField(label=gettext_lazy("Initial delay (seconds)"), min_value=0, max_value=3600)
    liveness_period = forms.IntegerField(label=gettext_lazy("Every (seconds)"), min_value=1, max_value=3600)
    service_enabled = forms.BooleanField(label=gettext_lazy("Expose a Service"), required=False)
    service_port = port_field(gettext_lazy("Service port"), 80, required=False)
    route_enabled = forms.BooleanField(label=gettext_lazy("Publish through a Gateway (HTTPRoute)"), required=False)
    route_hostname = forms.CharField(label=gettext_lazy("Host name"), max_length=253, required=False)
    route_path = forms.CharField(label=gettext_lazy("Path prefix"), max_length=200, required=False)
    # A Gateway the inventory holds ("<cluster id>/<namespace>/<name>"), or OTHER_GATEWAY to type one in the two
    # fields below (a Gateway Kubemate has not read, or none read yet).
    gateway = forms.ChoiceField(label=gettext_lazy("Gateway"), required=False)
    gateway_namespace = forms.CharField(label=gettext_lazy("Gateway namespace"), max_length=63, required=False)
    gateway_name = forms.CharField(label=gettext_lazy("Gateway name"), max_length=63, required=False)
    hpa_enabled = forms.BooleanField(label=gettext_lazy("Scale automatically (HPA)"), required=False)
    hpa_min = forms.IntegerField(label=gettext_lazy("Minimum replicas"), min_value=1, max_value=1000, required=False)
    hpa_max = forms.IntegerField(label=gettext_lazy("Maximum replicas"), min_value=1, max_value=1000, required=False)
    hpa_cpu_percent = forms.IntegerField(
        label=gettext_lazy("CPU target (%)"), min_value=1, max_value=1000, required=False
    )
    hpa_memory_percent = forms.IntegerField(
        label=gettext_lazy("Memory target (%)"), min_value=1, max_value=1000, required=False
    )
    node_selector = forms.CharField(
        label=gettext_lazy("Run only on nodes labelled"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 1}),
        help_text=gettext_lazy("key=value, one per line; leave empty to run anywhere."),
    )
    progress_deadline_seconds = forms.IntegerField(
        label=gettext_lazy("Give up the rollout after (seconds)"), min_value=1, max_value=86400
    )

    IDENTITY = ("project", "namespace", "name")

    def __init__(self, *args, user, release: Release | None = None, live_replicas: int | None = None, **kwargs):
        self.user = user
        self.release = release
        spec = release.spec if release else render.default_spec()
        initial = initial_from_spec(spec)
        if live_replicas is not None:
            initial["replicas"] = live_replicas
        initial["replicas_seen"] = initial.get("replicas")
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        self.warnings: list[str] = []
        style_selects(self)
        self._gateways = gateway_rows(user, release)
        self.fields["gateway"].choices = gateway_choices(self._gateways)
        if release is not None:
            self.initial.setdefault("gateway", gateway_value_for(self._gateways, release.project.cluster_id, spec))
        if live_replicas is not None and release is not None:
            self.fields["replicas"].help_text = _(
                "The cluster runs %(live)s (scaled outside the release, which said %(spec)s); "
                "deploying keeps %(live)s unless you change it."
            ) % {"live": live_replicas, "spec": spec.get("replicas")}
        if release is not None:
            for name in self.IDENTITY:
                del self.fields[name]
            stored = sorted(release.spec.get("secret_env") or {})
            if stored:
                self.fields["secret_env"].help_text = _(
                    "Stored (values hidden): %(names)s. NAME=value sets or replaces one, NAME= removes it; "
                    "names you leave out keep their stored value."
                ) % {"names": ", ".join(stored)}
        else:
            projects = list(deployable_projects(user))
            self.fields["project"].queryset = deployable_projects(user)
            self.fields["namespace"].widget.attrs["data-filter-by"] = "field-project"
            self.fields["namespace"].choices = [
                ("", _("Choose a namespace")),
                *((p.name, [(ns, ns) for ns in p.namespaces]) for p in projects),
            ]

    def clean_ports(self):
        return parse_ports(self.cleaned_data["ports"])

    def clean_env(self):
        return parse_env(self.cleaned_data["env"])

    def clean_secret_env(self):
        return parse_assignments(self.cleaned_data["secret_env"], allow_empty=True)

    def clean_node_selector(self):
        return parse_node_selector(self.cleaned_data["node_selector"])

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
        if value:
            parse(value)
        return value

    def clean_route_hostname(self):
        value = self.cleaned_data["route_hostname"].strip().lower()
        if value and not HOSTNAME.match(value):
            raise ValidationError(_("“%(value)s” is not a host name; write app.example.com.") % {"value": value})
        return value

    def clean_route_path(self):
        return self._path("route_path")

    def clean_readiness_path(self):
        return self._path("readiness_path")

    def clean_liveness_path(self):
        return self._path("liveness_path")

    def _path(self, field: str) -> str:
        value = self.cleaned_data[field].strip()
        if value and (not value.startswith("/") or re.search(r"[\s?#]", value)):
            raise ValidationError(
                _("“%(value)s” is not a path: start with / and use no spaces, ? or #, for example /healthz.")
                % {"value": value}
            )
        return value

    def clean_gateway_name(self):
        return self._optional_label("gateway_name")

    def clean_gateway_namespace(self):
        return self._optional_label("gateway_namespace")

    def _optional_label(self, field: str) -> str:
        value = self.cleaned_data[field].strip()
        if value:
            validate_dns_label(value)
        return value

    def clean(self):
        data = super().clean()
        if self.release is None:
            self._clean_identity(data)
        self._clean_gateway(data)
        self._follow_first_port(data)
        for kind, parse in (("cpu", cpu_cores), ("memory", memory_bytes)):
            request, limit = data.get(f"{kind}_request"), data.get(f"{kind}_limit")
            if request and limit and parse(request) > parse(limit):
                self.add_error(f"{kind}_limit", _("The limit must be at least the request (%(r)s).") % {"r": request})
        for prefix in ("readiness", "liveness"):
            kind = data.get(f"{prefix}_type")
            if kind in ("http", "tcp") and not data.get(f"{prefix}_port") and f"{prefix}_port" not in self.errors:
                self.add_error(f"{prefix}_port", _("Enter the port the probe checks."))
            if kind == "http" and not data.get(f"{prefix}_path") and f"{prefix}_path" not in self.errors:
                self.add_error(f"{prefix}_path", _("Enter the path the probe requests, for example /healthz."))
        if data.get("service_enabled") and not data.get("service_port") and "service_port" not in self.errors:
            self.add_error("service_port", _("Enter the port the Service listens on, for example 80."))
        if data.get("route_enabled"):
            if not data.get("service_enabled"):
                self.add_error("route_enabled", _("A route sends traffic to the Service: expose a Service too."))
            if not data.get("gateway_name"):
                self.add_error("gateway_name", _("Name the Gateway the route attaches to."))
        if data.get("hpa_enabled"):
            low, high = data.get("hpa_min"), data.get("hpa_max")
            if not low or not high or low > high:
                self.add_error("hpa_max", _("Enter a minimum and a maximum, the maximum at least the minimum."))
            if not data.get("hpa_cpu_percent") and not data.get("hpa_memory_percent"):
                self.add_error("hpa_cpu_percent", _("Give a CPU or memory target, for example 70%."))
            if data.get("hpa_cpu_percent") and not data.get("cpu_request"):
                self.add_error("cpu_request", _("A CPU target is a share of the CPU request: enter a request."))
            if data.get("hpa_memory_percent") and not data.get("memory_request"):
                self.add_error("memory_request", _("A memory target is a share of the memory request: enter one."))
        env_names = {item["name"] for item in data.get("env") or []}
        clash = sorted(env_names & set(data.get("secret_env") or {}))
        if clash:
            self.add_error("secret_env", _("Already set as plain variables: %(names)s.") % {"names": ", ".join(clash)})
        return data

    def _clean_gateway(self, data: dict) -> None:
        """A picked Gateway fills the namespace and name; it must be in the release's cluster."""
        value = data.get("gateway") or ""
        if not value or value == OTHER_GATEWAY:
            return
        cluster_id, namespace, name = value.split("/", 2)
        project = self.release.project if self.release else data.get("project")
        if project is not None and str(project.cluster_id) != cluster_id:
            self.add_error(
                "gateway", _("This Gateway is in another cluster than the project's; choose one of its own.")
            )
            return
        data["gateway_namespace"], data["gateway_name"] = namespace, name

    def _follow_first_port(self, data: dict) -> None:
        """Probe ports left at the old first container port follow the new one; a probe on a port the container
        does not list is worth a warning (it may be a sidecar's, but usually it is a mistake)."""
        ports = data.get("ports")
        if not ports:
            return
        old = parse_first_port(self.initial.get("ports"))
        for prefix, words in (("readiness", _("readiness probe")), ("liveness", _("liveness probe"))):
            if data.get(f"{prefix}_type") not in ("http", "tcp") or f"{prefix}_port" in self.errors:
                continue
            port = data.get(f"{prefix}_port")
            if port is not None and port == old and port == self.initial.get(f"{prefix}_port") and port not in ports:
                data[f"{prefix}_port"] = port = ports[0]
            if port is not None and port not in ports:
                self.warnings.append(
                    _("The %(probe)s checks port %(port)s, which is not one of the container ports (%(ports)s).")
                    % {"probe": words, "port": port, "ports": ", ".join(str(p) for p in ports)}
                )

    def _clean_identity(self, data: dict) -> None:
        project, namespace, name = data.get("project"), data.get("namespace"), data.get("name")
        if not project or not namespace:
            return
        if namespace not in project.namespaces or not access.may(
            self.user, RELEASES_DEPLOY, cluster=project.cluster, namespace=namespace
        ):
            self.add_error(
                "namespace",
                _("Choose one of the project's namespaces: %(list)s.") % {"list": ", ".join(project.namespaces)},
            )
            return
        taken = Release.objects.filter(project__cluster=project.cluster, namespace=namespace, name=name).exists()
        if name and taken:
            self.add_error(
                "name", _("A release named %(name)s already exists in %(ns)s.") % {"name": name, "ns": namespace}
            )

    def spec(self) -> dict:
        """The release spec from the cleaned form; sensitive values are encrypted here, never kept in clear."""
        d = self.cleaned_data
        stored = dict((self.release.spec.get("secret_env") or {}) if self.release else {})
        for key, value in d["secret_env"].items():
            if value:
                stored[key] = crypto.encrypt(value)
            else:
                stored.pop(key, None)
        return {
            "image": d["image"],
            "replicas": d["replicas"],
            "ports": d["ports"],
            "env": d["env"],
            "secret_env": stored,
            "cluster_encryption": {
                "enabled": bool(d.get("encrypt_in_cluster")),
                "service_account": d.get("decrypt_service_account") or "default",
            },
            "resources": {k: d[k] for k in ("cpu_request", "cpu_limit", "memory_request", "memory_limit")},
            "readiness": _probe_spec(d, "readiness"),
            "liveness": _probe_spec(d, "liveness"),
            "service": {"enabled": d["service_enabled"], "port": d["service_port"]},
            "route": {
                "enabled": d["route_enabled"],
                "hostname": d["route_hostname"],
                "path": d["route_path"] or "/",
                "gateway_namespace": d["gateway_namespace"],
                "gateway_name": d["gateway_name"],
            },
            "autoscaling": {
                "enabled": d["hpa_enabled"],
                "min": d["hpa_min"],
                "max": d["hpa_max"],
                "cpu_percent": d["hpa_cpu_percent"],
                "memory_percent": d["hpa_memory_percent"],
            },
            "node_selector": d["node_selector"],
            "progress_deadline_seconds": d["progress_deadline_seconds"],
            **self.kept(),
        }

    def kept(self) -> dict:
        """The fields this form does not show (GPUs, tolerations, a volume, command and arguments: the model server
        form sets them), carried over unchanged from the release."""
        spec = self.release.spec if self.release else {}
        return {key: spec[key] for key in KEPT_FIELDS if spec.get(key)}

    def kept_lines(self) -> list[tuple[object, str]]:
        return extra_lines(self.release.spec) if self.release else []


KEPT_FIELDS = ("extra_resources", "tolerations", "volume", "command", "args")


def _probe_spec(d: dict, prefix: str) -> dict:
    return {
        "type": d[f"{prefix}_type"],
        "path": d[f"{prefix}_path"],
        "port": d[f"{prefix}_port"],
        "initial_delay": d[f"{prefix}_delay"],
        "period": d[f"{prefix}_period"],
    }


def initial_from_spec(spec: dict) -> dict:
    resources, service, route, scaling = spec["resources"], spec["service"], spec["route"], spec["autoscaling"]
    initial = {
        "image": spec["image"],
        "replicas": spec["replicas"],
        "ports": ", ".join(str(p) for p in spec["ports"]),
        "env": format_env(spec["env"]),
        "secret_env": "",
        "encrypt_in_cluster": (spec.get("cluster_encryption") or {}).get("enabled", False),
        "decrypt_service_account": (spec.get("cluster_encryption") or {}).get("service_account", ""),
        **resources,
        "service_enabled": service["enabled"],
        "service_port": service["port"],
        "route_enabled": route["enabled"],
        "route_hostname": route["hostname"],
        "route_path": route["path"],
        "gateway_namespace": route["gateway_namespace"],
        "gateway_name": route["gateway_name"],
        "hpa_enabled": scaling["enabled"],
        "hpa_min": scaling["min"],
        "hpa_max": scaling["max"],
        "hpa_cpu_percent": scaling["cpu_percent"],
        "hpa_memory_percent": scaling["memory_percent"],
        "node_selector": "\n".join(f"{k}={v}" for k, v in spec["node_selector"].items()),
        "progress_deadline_seconds": spec["progress_deadline_seconds"],
    }
    for prefix in ("readiness", "liveness"):
        probe = spec[prefix]
        initial.update(
            {
                f"{prefix}_type": probe["type"],
                f"{prefix}_path": probe["path"],
                f"{prefix}_port": probe["port"],
                f"{prefix}_delay": probe["initial_delay"],
                f"{prefix}_period": probe["period"],
            }
        )
    return initial


OTHER_GATEWAY = "other"


def parse_first_port(text) -> int | None:
    match = re.match(r"\s*(\d{1,5})", str(text or ""))
    return int(match.group(1)) if match else None


def gateway_rows(user, release: Release | None) -> list:
    """The Gateways the inventory holds in the release's cluster, or in the clusters of the projects ``user`` may
    deploy to. Gateways are shared entry points (usually in a namespace of their own, such as gateway-system, that
    no project holds): anyone who may deploy in a cluster sees their names and listeners here, as a route
    attaching to one needs, and nothing else of them."""
    if release is not None:
        cluster_ids = [release.project.cluster_id]
    else:
        cluster_ids = sorted({p.cluster_id for p in deployable_projects(user)})
    rows = Resource.objects.filter(cluster_id__in=cluster_ids, kind="Gateway").select_related("cluster")
    return list(
        rows.only("cluster__name", "namespace", "name", "summary").order_by("cluster_id", "namespace", "name")[:200]
    )


def gateway_choices(rows: list) -> list:
    clusters = {row.cluster_id for row in rows}
    choices = [("", _("No Gateway"))]
    for row in rows:
        where = f"{row.cluster.name} · " if len(clusters) > 1 else ""
        label = f"{where}{row.namespace}/{row.name} — {listeners_text((row.summary or {}).get('listeners') or [])}"
        choices.append((f"{row.cluster_id}/{row.namespace}/{row.name}", label))
    choices.append((OTHER_GATEWAY, _("Another Gateway (type its namespace and name)")))
    return choices


def gateway_value_for(rows: list, cluster_id: int, spec: dict) -> str:
    route = spec.get("route") or {}
    if not route.get("gateway_name"):
        return ""
    value = f"{cluster_id}/{route.get('gateway_namespace')}/{route.get('gateway_name')}"
    return value if any(f"{r.cluster_id}/{r.namespace}/{r.name}" == value for r in rows) else OTHER_GATEWAY


def deployable_projects(user):
    """Projects with at least one namespace where ``user`` may deploy."""
    where = access.q(user, RELEASES_DEPLOY, cluster="cluster", namespace="namespaces__overlap")
    return Project.objects.filter(where).exclude(namespaces=[]).select_related("cluster")


class RollbackForm(forms.Form):
    revision = forms.IntegerField(min_value=1)


class DiffForm(forms.Form):
    a = forms.IntegerField(min_value=1)
    b = forms.IntegerField(min_value=1)
