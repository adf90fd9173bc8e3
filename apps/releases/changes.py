"""What a deploy, a rollback or a promote would change, in words, for the confirmation dialog. Pure: specs in,
lines out. Sensitive values are compared by name only (their tokens change on each encryption)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Change:
    label: object
    before: str
    after: str


def _probe(probe: dict | None) -> str:
    probe = probe or {}
    kind = probe.get("type") or "none"
    if kind == "none":
        return "—"
    where = f"{probe.get('path') or '/'}:{probe.get('port')}" if kind == "http" else str(probe.get("port"))
    return f"{kind.upper()} {where}"


def _env(spec: dict) -> str:
    parts = []
    for item in spec.get("env") or []:
        if "configmap" in item:
            parts.append(f"{item['name']}=configmap:{item['configmap']}/{item['key']}")
        elif "secret" in item:
            parts.append(f"{item['name']}=secret:{item['secret']}/{item['key']}")
        else:
            parts.append(f"{item['name']}={item.get('value', '')}")
    return ", ".join(parts) or "—"


def _resources(spec: dict) -> str:
    r = spec.get("resources") or {}
    return (
        f"CPU {r.get('cpu_request') or '—'}/{r.get('cpu_limit') or '—'}, "
        f"memory {r.get('memory_request') or '—'}/{r.get('memory_limit') or '—'}"
    )


def _route(spec: dict) -> str:
    route = spec.get("route") or {}
    if not route.get("enabled"):
        return "—"
    return f"{route.get('hostname') or '*'}{route.get('path') or '/'} → {route.get('gateway_name')}"


def _scaling(spec: dict) -> str:
    auto = spec.get("autoscaling") or {}
    if auto.get("enabled"):
        return f"HPA {auto.get('min')}–{auto.get('max')}"
    return str(spec.get("replicas"))


def _extra_resources(spec: dict) -> str:
    return ", ".join(f"{name} × {count}" for name, count in sorted((spec.get("extra_resources") or {}).items())) or "—"


def toleration_text(item: dict) -> str:
    """A toleration the way ``kubectl taint`` writes a taint: key=value:Effect, key:Effect (any value) or *."""
    text = item.get("key") or "*"
    if item.get("operator") == "Equal":
        text += f"={item.get('value', '')}"
    return f"{text}:{item['effect']}" if item.get("effect") else text


def _tolerations(spec: dict) -> str:
    return ", ".join(toleration_text(item) for item in spec.get("tolerations") or []) or "—"


def _volume(spec: dict) -> str:
    volume = spec.get("volume") or {}
    if not volume.get("claim"):
        return "—"
    size = f" ({volume.get('size')})" if volume.get("create") else ""
    return f"{volume['claim']}{size} → {volume.get('mount_path')}"


def _command(spec: dict) -> str:
    return " ".join([*(spec.get("command") or []), *(spec.get("args") or [])]) or "—"


# The fields only the model server form sets (the release form keeps them as they are).
EXTRA_FIELDS = (
    (_("Extra resources (GPUs)"), _extra_resources),
    (_("Tolerations"), _tolerations),
    (_("Volume"), _volume),
    (_("Command and arguments"), _command),
)

FIELDS = (
    (_("Image"), lambda s: s.get("image") or "—"),
    (_("Replicas"), _scaling),
    (_("Container ports"), lambda s: ", ".join(str(p) for p in s.get("ports") or []) or "—"),
    (_("Environment variables"), _env),
    (_("Sensitive variables"), lambda s: ", ".join(sorted(s.get("secret_env") or {})) or "—"),
    (_("Resources"), _resources),
    (_("Readiness probe"), lambda s: _probe(s.get("readiness"))),
    (_("Liveness probe"), lambda s: _probe(s.get("liveness"))),
    (
        _("Service port"),
        lambda s: str((s.get("service") or {}).get("port")) if (s.get("service") or {}).get("enabled") else "—",
    ),
    (_("Route"), _route),
    (
        _("Run only on nodes labelled"),
        lambda s: ", ".join(f"{k}={v}" for k, v in sorted((s.get("node_selector") or {}).items())) or "—",
    ),
    *EXTRA_FIELDS,
)


def extra_lines(spec: dict) -> list[tuple[object, str]]:
    """(label, value) of the extra fields ``spec`` sets, for the release form that keeps them unchanged."""
    lines = [(label, read(spec or {})) for label, read in EXTRA_FIELDS]
    return [(label, value) for label, value in lines if value != "—"]


def spec_changes(before: dict, after: dict, *, keep_replicas: bool = False) -> list[Change]:
    """The fields that differ between two release specs, each with its value before and after.

    ``keep_replicas``: the replica count is carried over from the cluster (a rollback keeps it), so it is not a
    change to show."""
    before, after = before or {}, after or {}
    if keep_replicas:
        after = {**after, "replicas": before.get("replicas")}
    changes = [(label, read(before), read(after)) for label, read in FIELDS]
    return [Change(label, old, new) for label, old, new in changes if old != new]
