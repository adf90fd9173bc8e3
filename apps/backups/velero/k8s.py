"""Velero's objects (velero.io/v1) through the one Kubernetes door, ``clusters/kube.py``, as the acting person:
Backups, Schedules and Restores in the cluster's Velero namespace, their status read into plain dataclasses, and
what a backup holds or logged, read through Velero's DownloadRequest (Velero answers a short-lived signed link to
its storage location; the file is fetched with a size bound and opened with a bound on what it expands to).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

from apps.clusters import kube
from apps.core import untrusted
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

GROUP_PATH = "/apis/velero.io/v1"
MANAGED = {"app.kubernetes.io/managed-by": "kubemate"}
PLAN_LABEL = "kubemate.io/plan"
ACTOR_LABEL = "kubemate.io/requested-by"
SCHEDULE_LABEL = "velero.io/schedule-name"
DONE_BACKUP = {"Completed", "PartiallyFailed", "Failed", "FailedValidation"}
DONE_RESTORE = {"Completed", "PartiallyFailed", "Failed", "FailedValidation"}
MAX_DOWNLOAD = 16 * 1024 * 1024
MAX_EXPANDED = 64 * 1024 * 1024
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LIST_LIMITS = untrusted.Limits(max_bytes=MAX_EXPANDED, max_depth=16, max_nodes=500_000)


class VeleroError(Failure):
    """Velero is missing, refused, or its storage did not answer; the sentence says what to check."""


@dataclass(frozen=True)
class BackupView:
    name: str
    phase: str
    namespaces: list[str]
    excluded: list[str]
    label_selector: str
    schedule: str
    plan: str
    requested_by: str
    location: str
    ttl: str
    snapshot_volumes: bool | None
    started: datetime | None
    completed: datetime | None
    expires: datetime | None
    items_done: int
    items_total: int
    warnings: int
    errors: int
    failure: str
    validation: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.phase in DONE_BACKUP

    @property
    def good(self) -> bool:
        return self.phase == "Completed"


@dataclass(frozen=True)
class RestoreView:
    name: str
    backup: str
    phase: str
    namespaces: list[str]
    mapping: dict[str, str]
    requested_by: str
    started: datetime | None
    completed: datetime | None
    items_done: int
    items_total: int
    warnings: int
    errors: int
    failure: str
    validation: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.phase in DONE_RESTORE


@dataclass(frozen=True)
class ScheduleView:
    name: str
    cron: str
    paused: bool
    phase: str
    last_backup: datetime | None
    namespaces: list[str]


def _when(value) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) and value else None


def serves_velero(k: kube.Client) -> bool:
    try:
        found = k.json("GET", GROUP_PATH)
    except kube.NotFound:
        return False
    return any(r.get("name") == "backups" for r in found.get("resources") or [])


def selector(text: str) -> dict | None:
    """A label selector typed as ``a=b,c!=d,e`` (equality, inequality, existence) as a LabelSelector; None when
    empty. VeleroError for anything else."""
    text = (text or "").strip()
    if not text:
        return None
    labels: dict[str, str] = {}
    expressions: list[dict] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "!=" in part:
            key, value = (s.strip() for s in part.split("!=", 1))
            expressions.append({"key": key, "operator": "NotIn", "values": [value]})
        elif "=" in part:
            key, value = (s.strip() for s in part.split("=", 1))
            labels[key.rstrip("=")] = value.lstrip("=")
        elif part.startswith("!"):
            expressions.append({"key": part[1:].strip(), "operator": "DoesNotExist"})
        else:
            key, value = part, None
            expressions.append({"key": key, "operator": "Exists"})
    for key in [*labels, *(e["key"] for e in expressions)]:
        if not key or len(key) > 253 or any(c.isspace() for c in key):
            raise VeleroError(D(N_("The label selector %(text)s cannot be read."), text=text[:100]))
    found: dict = {}
    if labels:
        found["matchLabels"] = labels
    if expressions:
        found["matchExpressions"] = expressions
    return found


def selector_text(spec: dict | None) -> str:
    if not spec:
        return ""
    parts = [f"{k}={v}" for k, v in (spec.get("matchLabels") or {}).items()]
    for e in spec.get("matchExpressions") or []:
        op = e.get("operator")
        if op == "Exists":
            parts.append(e.get("key", ""))
        elif op == "DoesNotExist":
            parts.append("!" + e.get("key", ""))
        else:
            parts.append(f"{e.get('key')} {op} ({','.join(e.get('values') or [])})")
    return ",".join(parts)


def backup_spec(
    *, namespaces: list[str], label_selector: str, ttl_hours: int, snapshot_volumes: bool, location: str = ""
) -> dict:
    spec: dict = {
        "includedNamespaces": list(namespaces) or ["*"],
        "ttl": f"{int(ttl_hours)}h0m0s",
        "snapshotVolumes": bool(snapshot_volumes),
        "defaultVolumesToFsBackup": False,
    }
    found = selector(label_selector)
    if found:
        spec["labelSelector"] = found
    if location:
        spec["storageLocation"] = location
    return spec


def _meta(name: str, namespace: str, labels: dict) -> dict:
    return {"name": name, "namespace": namespace, "labels": {**MANAGED, **labels}}


def create_backup(k: kube.Client, namespace: str, name: str, spec: dict, labels: dict) -> dict:
    body = {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": _meta(name, namespace, labels), "spec": spec}
    _status, answer = k.post("Backup", namespace, body=body)
    return answer


def save_schedule(
    k: kube.Client, namespace: str, name: str, cron: str, template: dict, labels: dict, paused: bool
) -> dict:
    body = {
        "apiVersion": "velero.io/v1",
        "kind": "Schedule",
        "metadata": _meta(name, namespace, labels),
        "spec": {"schedule": cron, "template": template, "paused": bool(paused), "useOwnerReferencesInBackup": False},
    }
    return k.apply(body)


def delete_schedule(k: kube.Client, namespace: str, name: str) -> bool:
    return k.delete("Schedule", namespace, name)


def create_restore(
    k: kube.Client,
    namespace: str,
    name: str,
    *,
    backup: str,
    namespaces: list[str],
    mapping: dict[str, str],
    labels: dict,
) -> dict:
    spec: dict = {
        "backupName": backup,
        "includedNamespaces": list(namespaces) or ["*"],
        "restorePVs": False,
        "existingResourcePolicy": "none",
    }
    if mapping:
        spec["namespaceMapping"] = dict(mapping)
    body = {"apiVersion": "velero.io/v1", "kind": "Restore", "metadata": _meta(name, namespace, labels), "spec": spec}
    _status, answer = k.post("Restore", namespace, body=body)
    return answer


def backup_view(obj: dict) -> BackupView:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    labels = meta.get("labels") or {}
    progress = status.get("progress") or {}
    return BackupView(
        name=meta.get("name", ""),
        phase=status.get("phase") or "New",
        namespaces=list(spec.get("includedNamespaces") or ["*"]),
        excluded=list(spec.get("excludedNamespaces") or []),
        label_selector=selector_text(spec.get("labelSelector")),
        schedule=labels.get(SCHEDULE_LABEL, ""),
        plan=labels.get(PLAN_LABEL, ""),
        requested_by=(meta.get("annotations") or {}).get(ACTOR_LABEL, labels.get(ACTOR_LABEL, "")),
        location=spec.get("storageLocation", ""),
        ttl=spec.get("ttl", ""),
        snapshot_volumes=spec.get("snapshotVolumes"),
        started=_when(status.get("startTimestamp")),
        completed=_when(status.get("completionTimestamp")),
        expires=_when(status.get("expiration")),
        items_done=int(progress.get("itemsBackedUp") or 0),
        items_total=int(progress.get("totalItems") or 0),
        warnings=int(status.get("warnings") or 0),
        errors=int(status.get("errors") or 0),
        failure=str(status.get("failureReason") or "")[:500],
        validation=[str(v)[:300] for v in status.get("validationErrors") or []][:10],
    )


def restore_view(obj: dict) -> RestoreView:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    progress = status.get("progress") or {}
    return RestoreView(
        name=meta.get("name", ""),
        backup=spec.get("backupName", ""),
        phase=status.get("phase") or "New",
        namespaces=list(spec.get("includedNamespaces") or ["*"]),
        mapping=dict(spec.get("namespaceMapping") or {}),
        requested_by=(meta.get("labels") or {}).get(ACTOR_LABEL, ""),
        started=_when(status.get("startTimestamp")),
        completed=_when(status.get("completionTimestamp")),
        items_done=int(progress.get("itemsRestored") or 0),
        items_total=int(progress.get("totalItems") or 0),
        warnings=int(status.get("warnings") or 0),
        errors=int(status.get("errors") or 0),
        failure=str(status.get("failureReason") or "")[:500],
        validation=[str(v)[:300] for v in status.get("validationErrors") or []][:10],
    )


def schedule_view(obj: dict) -> ScheduleView:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    return ScheduleView(
        name=meta.get("name", ""),
        cron=spec.get("schedule", ""),
        paused=bool(spec.get("paused")),
        phase=status.get("phase") or "New",
        last_backup=_when(status.get("lastBackup")),
        namespaces=list((spec.get("template") or {}).get("includedNamespaces") or ["*"]),
    )


def backups(k: kube.Client, namespace: str) -> list[BackupView]:
    found = [backup_view(o) for o in k.list("Backup", namespace)]
    return sorted(found, key=lambda b: b.started or b.completed or EPOCH, reverse=True)


def restores(k: kube.Client, namespace: str) -> list[RestoreView]:
    found = [restore_view(o) for o in k.list("Restore", namespace)]
    return sorted(found, key=lambda r: r.started or EPOCH, reverse=True)


def schedules(k: kube.Client, namespace: str) -> list[ScheduleView]:
    return [schedule_view(o) for o in k.list("Schedule", namespace)]


def locations(k: kube.Client, namespace: str) -> list[dict]:
    return [
        {
            "name": (o.get("metadata") or {}).get("name", ""),
            "phase": (o.get("status") or {}).get("phase", ""),
            "default": bool((o.get("spec") or {}).get("default")),
            "bucket": ((o.get("spec") or {}).get("objectStorage") or {}).get("bucket", ""),
            "last_validated": _when((o.get("status") or {}).get("lastValidationTime")),
        }
        for o in k.list("BackupStorageLocation", namespace)
    ]


def download(k: kube.Client, namespace: str, kind: str, name: str, *, timeout: float = 30) -> bytes:
    """What Velero stored for ``name`` (``kind``: BackupResourceList, BackupLog, RestoreLog, RestoreResults), through
    a DownloadRequest; gunzipped, at most MAX_EXPANDED bytes. VeleroError when Velero or its storage do not answer."""
    request_name = f"km-{name}"[:50].rstrip("-") + "-" + uuid.uuid4().hex[:8]
    body = {
        "apiVersion": "velero.io/v1",
        "kind": "DownloadRequest",
        "metadata": _meta(request_name, namespace, {}),
        "spec": {"target": {"kind": kind, "name": name}},
    }
    k.post("DownloadRequest", namespace, body=body)
    try:
        deadline = time.monotonic() + timeout
        url = ""
        while time.monotonic() < deadline:
            found = k.read("DownloadRequest", namespace, request_name) or {}
            status = found.get("status") or {}
            if status.get("phase") == "Processed" and status.get("downloadURL"):
                url = status["downloadURL"]
                break
            time.sleep(0.5)
        if not url:
            raise VeleroError(
                D(N_("Velero did not answer the download request within %(s)s seconds; is it running?"), s=int(timeout))
            )
        return _fetch(url)
    finally:
        with contextlib.suppress(kube.KubeError):
            k.delete("DownloadRequest", namespace, request_name)


def _fetch(url: str) -> bytes:
    import requests

    try:
        with requests.get(url, stream=True, timeout=(5, 30)) as answer:
            if answer.status_code == 404:
                raise VeleroError(D(N_("Velero's storage holds no such file (yet).")))
            if answer.status_code != 200:
                raise VeleroError(D(N_("Velero's storage answered %(code)s."), code=answer.status_code))
            data = io.BytesIO()
            for chunk in answer.iter_content(64 * 1024):
                data.write(chunk)
                if data.tell() > MAX_DOWNLOAD:
                    raise VeleroError(
                        D(
                            N_("Velero's file is larger than %(mb)s MiB; it was not read."),
                            mb=MAX_DOWNLOAD // (1024 * 1024),
                        )
                    )
    except requests.RequestException:
        raise VeleroError(D(N_("Velero's storage location cannot be reached from Kubemate."))) from None
    raw = data.getvalue()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as unpacked:
            out = unpacked.read(MAX_EXPANDED + 1)
    except (OSError, EOFError):
        raise VeleroError(D(N_("Velero's file is damaged."))) from None
    if len(out) > MAX_EXPANDED:
        raise VeleroError(
            D(N_("Velero's file expands to more than %(mb)s MiB; it was not read."), mb=MAX_EXPANDED // (1024 * 1024))
        )
    return out


def _json_object(k: kube.Client, namespace: str, kind: str, name: str) -> dict:
    """A JSON object Velero stored for ``name`` (``kind`` a DownloadRequest target), read with bounds; VeleroError
    when it cannot be read."""
    try:
        found = untrusted.load_json(download(k, namespace, kind, name), LIST_LIMITS)
    except untrusted.UntrustedInput:
        raise VeleroError(D(N_("Velero's list of the backup's objects cannot be read."))) from None
    return found if isinstance(found, dict) else {}


def _kind_lists(k: kube.Client, namespace: str, kind: str, name: str) -> dict[str, list[str]]:
    """Velero's lists of objects by kind ({"apps/v1/Deployment": ["ns/name", ...], ...})."""
    found = _json_object(k, namespace, kind, name)
    return {str(key): [str(x) for x in items] for key, items in found.items() if isinstance(items, list)}


def resource_list(k: kube.Client, namespace: str, backup: str) -> dict[str, list[str]]:
    """What ``backup`` holds: {"apps/v1/Deployment": ["ns/name", ...], ...}."""
    return _kind_lists(k, namespace, "BackupResourceList", backup)


def restored_items(k: kube.Client, namespace: str, restore: str) -> dict[str, list[str]]:
    """What Velero did with each item of ``restore``: {"created": ["apps/v1/Deployment ns/name", ...],
    "skipped": [...], "updated": [...], "failed": [...]} from its RestoreResourceList ("ns/name(action)")."""
    actions: dict[str, list[str]] = {}
    for kind, entries in sorted(_kind_lists(k, namespace, "RestoreResourceList", restore).items()):
        for entry in entries:
            name, paren, action = entry.rpartition("(")
            if not paren:
                name, action = entry, "unknown)"
            actions.setdefault(action.rstrip(")") or "unknown", []).append(f"{kind} {name}")
    return actions


def restore_results(k: kube.Client, namespace: str, restore: str) -> dict:
    """Velero's warnings and errors of ``restore`` ({"warnings": {...}, "errors": {...}})."""
    return _json_object(k, namespace, "RestoreResults", restore)


def log_text(k: kube.Client, namespace: str, kind: str, name: str, *, max_lines: int = 2000) -> list[str]:
    raw = download(k, namespace, kind, name)
    return raw.decode("utf-8", errors="replace").splitlines()[-max_lines:]
