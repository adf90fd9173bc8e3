"""Day-2 actions on cluster objects: scale, restart, delete pod, cordon, drain, YAML edit, and log reading.

Every action acts as the user (``kube.client(cluster, as_user=actor)``), so
the cluster's RBAC has the last word, and writes one audit event: success, or
failure with the sentence the person saw when Kubernetes refused. Callers
check the console capability first (``access.require``); this module trusts
them on that and never widens what the user may do.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime

import yaml
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import Project
from apps.clusters import kube
from apps.clusters.actions import drain
from apps.clusters.actions import k8s as k8s_actions
from apps.clusters.actions.registry import ACTIONS
from apps.clusters.actions.targets import ActionError, Target, audit_action, refused_sentence
from apps.clusters.actions.tasks import drain_node
from apps.core import crypto, gates, untrusted
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.core.jobs import start_job
from apps.core.models import Job, JobLogLine
from apps.fieldcrypt import services as fieldcrypt

LOG_TAIL_CHOICES = (100, 500, 2000)


def _act(actor, action: str, verb: str, target: Target, work, *, request=None, detail=None):
    """Run ``work(k)`` as ``actor`` and audit the outcome; a KubeError becomes an audited ActionError."""
    try:
        with kube.client(target.cluster, as_user=actor) as k:
            result = work(k)
    except kube.KubeError as exc:
        sentence = refused_sentence(exc, verb, target)
        audit_action(actor, action, target, request=request, detail=detail, error=sentence)
        raise ActionError(sentence) from None
    audit_action(actor, action, target, request=request, detail=detail)
    return result


# --- workloads and pods ----------------------------------------------------------------------------------


def scale_workload(*, actor, target: Target, replicas: int, request=None) -> int:
    """Set the replicas of a Deployment or StatefulSet; returns the count Kubernetes stored."""
    if not ACTIONS["scale"].applies_to(target.kind):
        raise ActionError(_("Only Deployments and StatefulSets can be scaled here."))
    return _act(
        actor,
        "clusters.workload.scale",
        _("scale"),
        target,
        lambda k: k8s_actions.scale(k, target.kind, target.namespace, target.name, replicas),
        request=request,
        detail={"replicas": replicas},
    )


def restart_workload(*, actor, target: Target, request=None) -> str:
    """Rollout restart: the controller replaces the pods one by one, as `kubectl rollout restart` does."""
    if not ACTIONS["restart"].applies_to(target.kind):
        raise ActionError(_("Only Deployments, StatefulSets and DaemonSets can be restarted."))
    now = timezone.now()
    return _act(
        actor,
        "clusters.workload.restart",
        _("restart"),
        target,
        lambda k: k8s_actions.restart(k, target.kind, target.namespace, target.name, now),
        request=request,
    )


def delete_pod(*, actor, target: Target, request=None) -> None:
    _act(
        actor,
        "clusters.pod.delete",
        _("delete"),
        target,
        lambda k: k8s_actions.delete_pod(k, target.namespace, target.name),
        request=request,
    )


# --- nodes -----------------------------------------------------------------------------------------------


def set_node_unschedulable(*, actor, target: Target, unschedulable: bool, request=None) -> None:
    """Cordon (True) or uncordon (False) a node."""
    _act(
        actor,
        "clusters.node.cordon" if unschedulable else "clusters.node.uncordon",
        _("cordon") if unschedulable else _("uncordon"),
        target,
        lambda k: k8s_actions.set_unschedulable(k, target.name, unschedulable),
        request=request,
    )


def start_drain(
    *,
    actor,
    target: Target,
    request=None,
    resumes: Job | None = None,
    approved: bool = False,
    break_glass: str = "",
) -> Job:
    """Queue the drain as a Job (its body: drain.py); the Job row and its audit event commit together.

    ``resumes``: the stopped drain this one takes up (the node page's "Resume drain"); the new job cordons
    again (no change on a cordoned node) and evicts only the pods still on the node. Where a policy asks for
    four-eyes approval, nothing starts: ``gates.ApprovalRequired`` names the change request (resuming a drain an
    approval started needs none).
    """
    if not approved and resumes is None:
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": target.name}, "spec": {"unschedulable": True}}
        change = gates.Change(
            action="nodes.drain",
            cluster=target.cluster,
            namespace="",
            actor=actor,
            kind="Node",
            name=target.name,
            summary=D(N_("Drain node %(node)s"), node=target.name),
            payload={"cluster": target.cluster.pk, "node": target.name},
            manifests=[node],  # cordoned, then its pods evicted: those on it when the approved drain runs
        )
        try:
            gates.guard(change, request=request, break_glass=break_glass)
        except gates.ChangeRefused as exc:
            raise ActionError(str(exc)) from None
    with transaction.atomic():
        job = start_job(
            task=drain_node,
            title=D(N_("Drain node %(node)s"), node=target.name),
            actor=actor,
            target=drain.job_target(target.cluster, target.name),
            args=(target.cluster.pk, target.name),
        )
        detail = {"job": str(job.pk)}
        if resumes is not None:
            detail["resumes"] = str(resumes.pk)
            JobLogLine.objects.create(
                job=job,
                message=_("Resuming the drain that stopped at %(progress)s%%: %(message)s")
                % {"progress": resumes.progress, "message": resumes.message},
            )
        action = "clusters.node.drain_resumed" if resumes is not None else "clusters.node.drain_started"
        audit_action(actor, action, target, request=request, detail=detail)
    return job


def undo_drain(*, actor, target: Target, stopped: Job | None, request=None) -> None:
    """Uncordon a node whose drain stopped (the node page's "Uncordon (undo)"); the pods already evicted run
    elsewhere now and stay there."""
    _act(
        actor,
        "clusters.node.uncordon",
        _("uncordon"),
        target,
        lambda k: k8s_actions.set_unschedulable(k, target.name, False),
        request=request,
        detail={"undoes_drain": str(stopped.pk)} if stopped is not None else None,
    )


def encrypt_field(*, actor, target: Target, field: str, service_account: str = "", request=None) -> None:
    """Seal one field with the key of the project that holds the namespace (apps/fieldcrypt), and let the app's
    ServiceAccount read that key when one is named; audited there, as the person."""
    project = Project.objects.filter(cluster=target.cluster, namespaces__contains=[target.namespace]).first()
    if project is None:
        raise ActionError(
            _("Namespace %(namespace)s belongs to no project, and field encryption uses a project's key.")
            % {"namespace": target.namespace}
        )
    try:
        fieldcrypt.seal_field(
            actor=actor,
            project=project,
            kind=target.kind,
            namespace=target.namespace,
            name=target.name,
            field=field,
            request=request,
        )
        if service_account:
            fieldcrypt.grant_reader(
                actor=actor,
                project=project,
                namespace=target.namespace,
                service_account=service_account,
                request=request,
            )
    except fieldcrypt.SealError as exc:
        raise ActionError(str(exc)) from None


# --- YAML ------------------------------------------------------------------------------------------------

DIFF_IGNORED_METADATA = ("managedFields", "resourceVersion", "generation")


def to_yaml(obj: dict) -> str:
    """YAML in the order people read manifests: apiVersion, kind, metadata, the rest, status last."""
    first = [key for key in ("apiVersion", "kind", "metadata") if key in obj]
    rest = [key for key in obj if key not in first and key != "status"]
    ordered = {key: obj[key] for key in first + rest + (["status"] if "status" in obj else [])}
    return yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)


def _without(obj: dict, keys) -> dict:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in keys}
    return {**obj, "metadata": meta}


@dataclass(frozen=True)
class YamlDocument:
    text: str
    resource_version: str
    metadata_only: bool = False


def read_yaml(*, user, target: Target) -> YamlDocument:
    """The live object as YAML, read as ``user``; managedFields dropped; Secrets as metadata only."""
    try:
        with kube.client(target.cluster, as_user=user) as k:
            if target.kind == "Secret":
                obj = k8s_actions.read_secret_metadata(k, target.namespace, target.name)
            else:
                obj = k8s_actions.read_object(k, target.kind, target.namespace, target.name)
    except kube.NotFound:
        raise
    except kube.KubeError as exc:
        raise ActionError(refused_sentence(exc, _("read"), target)) from None
    obj = _without(obj, ("managedFields",))
    version = (obj.get("metadata") or {}).get("resourceVersion", "")
    return YamlDocument(text=to_yaml(obj), resource_version=version, metadata_only=target.kind == "Secret")


def parse_edit(text: str, target: Target, resource_version: str) -> dict:
    """The edited manifest, or ActionError naming the line of a syntax error or the identity field changed."""
    try:
        manifest = untrusted.load_yaml(text, untrusted.OBJECT)
    except untrusted.UntrustedInput as exc:
        error = ActionError(str(exc))
        error.line = exc.line
        raise error from None
    if not isinstance(manifest, dict):
        raise ActionError(_("The YAML must describe one object, starting with apiVersion and kind."))
    meta = manifest.get("metadata")
    if not isinstance(meta, dict):
        raise ActionError(_("The YAML has no metadata section; keep the object's metadata."))
    if manifest.get("kind") != target.kind:
        raise ActionError(_("The kind cannot be changed here; it must stay %(kind)s.") % {"kind": target.kind})
    if meta.get("name") != target.name:
        raise ActionError(_("The name cannot be changed here; it must stay %(name)s.") % {"name": target.name})
    if meta.get("namespace", target.namespace) != target.namespace:
        raise ActionError(
            _("The namespace cannot be changed here; it must stay %(namespace)s.") % {"namespace": target.namespace}
        )
    if target.namespace:
        meta["namespace"] = target.namespace
    # The version the person started from: if the object changed since, Kubernetes answers Conflict.
    meta["resourceVersion"] = resource_version
    return manifest


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "remove", "hunk", "context"
    text: str


@dataclass(frozen=True)
class EditPreview:
    diff: list[DiffLine] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(line.kind in ("add", "remove") for line in self.diff)


def yaml_diff(before: dict, after: dict) -> list[DiffLine]:
    old = to_yaml(_without(before, DIFF_IGNORED_METADATA)).splitlines()
    new = to_yaml(_without(after, DIFF_IGNORED_METADATA)).splitlines()
    lines = []
    for line in difflib.unified_diff(old, new, _("live"), _("after your change"), lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        kind = {"+": "add", "-": "remove", "@": "hunk"}.get(line[:1], "context")
        lines.append(DiffLine(kind, line))
    return lines


def preview_yaml_edit(*, actor, target: Target, text: str, resource_version: str) -> EditPreview:
    """Server-side dry run of the edit and the diff it would make; nothing changes, nothing is audited."""
    manifest = parse_edit(text, target, resource_version)
    try:
        with kube.client(target.cluster, as_user=actor) as k:
            live = k8s_actions.read_object(k, target.kind, target.namespace, target.name)
            result = k8s_actions.replace_object(k, manifest, dry_run=True)
    except kube.KubeError as exc:
        raise ActionError(refused_sentence(exc, _("edit"), target)) from None
    return EditPreview(diff=yaml_diff(live, result))


MASK = "********"


def masked(manifest: dict) -> dict:
    """``manifest`` with a Secret's values hidden (what a checker reads of a change request)."""
    if manifest.get("kind") != "Secret":
        return manifest
    hidden = dict(manifest)
    for key in ("data", "stringData"):
        if isinstance(hidden.get(key), dict):
            hidden[key] = dict.fromkeys(hidden[key], MASK)
    return hidden


def yaml_edit_change(*, actor, target: Target, text: str, resource_version: str) -> gates.Change:
    """A YAML edit described for four-eyes approval: the object as it would be written (a Secret's values masked),
    the dry-run diff (none for a Secret: its values would show), and the resourceVersion it was made against. The
    text itself is kept sealed (apps/core/crypto.py): it may hold a Secret's values."""
    manifest = parse_edit(text, target, resource_version)
    preview = preview_yaml_edit(actor=actor, target=target, text=text, resource_version=resource_version)
    diff = "" if target.kind == "Secret" else "\n".join(line.text for line in preview.diff)
    return gates.Change(
        action="yaml.edit",
        cluster=target.cluster,
        namespace=target.namespace,
        actor=actor,
        kind=target.kind,
        name=target.name,
        summary=D(N_("Edit the YAML of %(kind)s %(name)s"), kind=target.kind, name=target.name),
        payload={
            "cluster": target.cluster.pk,
            "kind": target.kind,
            "namespace": target.namespace,
            "name": target.name,
            "resource_version": resource_version,
            "sealed": crypto.encrypt(text),
        },
        manifests=[masked(manifest)],
        diff=diff[:200_000],
        base={"resource_version": resource_version},
    )


def apply_yaml_edit(
    *,
    actor,
    target: Target,
    text: str,
    resource_version: str,
    request=None,
    approved: bool = False,
    break_glass: str = "",
) -> str:
    """Replace the object with the edited YAML; returns the new resourceVersion. Where a policy asks for four-eyes
    approval, nothing changes: ``gates.ApprovalRequired`` names the change request (``approved``: it is applied)."""
    manifest = parse_edit(text, target, resource_version)
    # Described (a live read, a server-side dry run, the text sealed) only where a policy or a window may hold it.
    if not approved and gates.watched("yaml.edit", target.cluster, target.namespace):
        try:
            change = yaml_edit_change(actor=actor, target=target, text=text, resource_version=resource_version)
        except ActionError as exc:  # its dry run was refused (a conflict, a bad field): the edit failed, audited
            audit_action(
                actor,
                "clusters.yaml.edit",
                target,
                request=request,
                detail={"from_version": resource_version},
                error=str(exc),
            )
            raise
        try:
            gates.guard(change, request=request, break_glass=break_glass)
        except gates.ChangeRefused as exc:
            raise ActionError(str(exc)) from None
    result = _act(
        actor,
        "clusters.yaml.edit",
        _("edit"),
        target,
        lambda k: k8s_actions.replace_object(k, manifest, dry_run=False),
        request=request,
        detail={"from_version": resource_version},
    )
    return (result.get("metadata") or {}).get("resourceVersion", "")


# --- logs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogLine:
    timestamp: str
    text: str


@dataclass(frozen=True)
class LogPage:
    """Lines to show and the cursor of the last one (its timestamp and how many lines share it)."""

    lines: list[LogLine]
    after: str
    skip: int


SECRET_SHOWN_BYTES = 64 * 1024


def reveal_secret(*, actor, target: Target, key: str, request=None) -> str:
    """One value of a Secret, read live as ``actor`` (the cluster's RBAC decides) and audited with the key's name,
    never the value. Text longer than 64 KiB is cut; a binary value is described, not shown."""
    import base64
    import binascii

    def read(k):
        secret = k.read("Secret", target.namespace, target.name)
        if secret is None:
            raise ActionError(_("Secret %(name)s is no longer there.") % {"name": target.name})
        return (secret.get("data") or {}).get(key)

    encoded = _act(actor, "clusters.secret.reveal", _("read"), target, read, request=request, detail={"key": key})
    if encoded is None:
        raise ActionError(_("Secret %(name)s has no key %(key)s.") % {"name": target.name, "key": key})
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return _("The value is not valid base64.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _("A binary value of %(bytes)s bytes.") % {"bytes": len(raw)}
    return text[:SECRET_SHOWN_BYTES]


def _log_call(user, target: Target, work):
    try:
        with kube.client(target.cluster, as_user=user) as k:
            return work(k)
    except kube.NotFound:
        raise
    except kube.KubeError as exc:
        raise ActionError(refused_sentence(exc, _("read the logs of"), target)) from None


def pod_containers(*, user, target: Target) -> list[str]:
    """Container names of the pod (init containers last), read live as ``user``."""
    pod = _log_call(user, target, lambda k: k8s_actions.read_pod(k, target.namespace, target.name))
    spec = pod.get("spec") or {}
    return [c["name"] for c in spec.get("containers") or []] + [c["name"] for c in spec.get("initContainers") or []]


def _time_key(stamp: str) -> tuple[str, int]:
    """Sortable key of an RFC 3339 timestamp whose fraction may have 0 to 9 digits."""
    head, _dot, rest = stamp.rstrip("Z").partition(".")
    digits = re.match(r"\d*", rest).group(0)
    return head, int((digits + "000000000")[:9] or 0)


def _split(text: str) -> list[LogLine]:
    lines = []
    for raw in text.splitlines():
        stamp, _space, rest = raw.partition(" ")
        if stamp[:1].isdigit() and "T" in stamp:
            lines.append(LogLine(stamp, rest))
        elif raw:
            lines.append(LogLine("", raw))
    return lines


def _cursor(lines: list[LogLine], fallback: str = "", fallback_skip: int = 0) -> tuple[str, int]:
    stamped = [line for line in lines if line.timestamp]
    if not stamped:
        return fallback, fallback_skip
    last = _time_key(stamped[-1].timestamp)
    return stamped[-1].timestamp, sum(1 for line in stamped if _time_key(line.timestamp) == last)


def read_log(*, user, target: Target, container: str, tail: int, previous: bool = False) -> LogPage:
    """The last ``tail`` lines of a container's log."""
    text = _log_call(
        user,
        target,
        lambda k: k8s_actions.read_log(k, target.namespace, target.name, container, tail=tail, previous=previous),
    )
    lines = _split(text)
    after, skip = _cursor(lines)
    return LogPage(lines, after, skip)


def follow_log(*, user, target: Target, container: str, after: str, skip: int, previous: bool = False) -> LogPage:
    """Only the lines newer than the cursor: asks from the cursor's second on and drops what was shown."""
    since = after.split(".")[0].rstrip("Z") + "Z" if after else ""
    text = _log_call(
        user,
        target,
        lambda k: k8s_actions.read_log(
            k,
            target.namespace,
            target.name,
            container,
            tail=None if since else LOG_TAIL_CHOICES[0],
            previous=previous,
            since_time=since,
        ),
    )
    fetched = _split(text)
    if not after:
        new = fetched
    else:
        cursor, same, new = _time_key(after), 0, []
        for line in fetched:
            if not line.timestamp:
                continue
            key = _time_key(line.timestamp)
            if key < cursor:
                continue
            if key == cursor:
                same += 1
                if same <= skip:
                    continue
            new.append(line)
    if not new:
        return LogPage([], after, skip)
    last_key = _time_key(new[-1].timestamp) if new[-1].timestamp else None
    shown_same = sum(1 for line in fetched if line.timestamp and _time_key(line.timestamp) == last_key)
    return LogPage(new, new[-1].timestamp or after, shown_same if last_key else skip)


def stream_log(*, user, target: Target, container: str, previous: bool = False) -> Iterator[bytes]:
    """The whole log as chunks for a download; refusals are raised before the first chunk."""
    stack = ExitStack()
    try:
        k = stack.enter_context(kube.client(target.cluster, as_user=user))
        chunks = k8s_actions.open_log_stream(k, target.namespace, target.name, container, previous=previous)
    except kube.NotFound:
        stack.close()
        raise
    except kube.KubeError as exc:
        stack.close()
        raise ActionError(refused_sentence(exc, _("read the logs of"), target)) from None

    def generate() -> Iterator[bytes]:
        with stack:
            yield from chunks

    return generate()


def log_filename(target: Target, container: str, when: datetime | None = None) -> str:
    stamp = (when or timezone.now()).strftime("%Y%m%d-%H%M%S")
    return f"{target.namespace}_{target.name}_{container}_{stamp}.log"
