"""Day-2 actions on cluster objects: scale, restart, delete pod, cordon, drain, YAML edit, and log reading.

Every action acts as the user (``kube.api_client(cluster, as_user=actor)``), so
the cluster's RBAC has the last word, and writes one audit event: success, or
failure with the sentence the person saw when Kubernetes refused. Callers
check the console capability first (``access.require``); this module trusts
them on that and never widens what the user may do.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime

import yaml
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts import audit
from apps.accounts.models import AuditEvent
from apps.clusters import kube
from apps.clusters.actions import k8s as k8s_actions
from apps.clusters.kinds import BY_KIND
from apps.clusters.models import Cluster
from apps.core.jobs import JobRecorder, start_job
from apps.core.locks import redis_lock
from apps.core.models import Job, JobLogLine

SCALABLE_KINDS = ("Deployment", "StatefulSet")
RESTARTABLE_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
# The kinds the "yaml.edit" capability's RBAC rules cover.
EDITABLE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Service", "ConfigMap", "Job", "CronJob")
LOG_TAIL_CHOICES = (100, 500, 2000)
DRAIN_TIMEOUT_SECONDS = 300
DRAIN_BACKOFF_SECONDS = (1, 2, 4, 8, 15)


class ActionError(Exception):
    """Kubernetes refused or could not do the action; the message is the sentence to show."""


@dataclass(frozen=True)
class Target:
    """The object an action is about."""

    cluster: Cluster
    kind: str
    namespace: str
    name: str

    @property
    def plural(self) -> str:
        return BY_KIND[self.kind].plural


def refused_sentence(exc: kube.KubeError, verb: str, target: Target) -> str:
    """Turn a Kubernetes error into the sentence for this action (RBAC refusals name what and where)."""
    if isinstance(exc, kube.Forbidden):
        where = {"verb": verb, "plural": target.plural, "namespace": target.namespace, "cluster": target.cluster.name}
        if target.namespace:
            return _("Kubernetes refused: you may not %(verb)s %(plural)s in namespace %(namespace)s.") % where
        return _("Kubernetes refused: you may not %(verb)s %(plural)s in cluster %(cluster)s.") % where
    if isinstance(exc, kube.Conflict):
        return _("Someone else changed this object since you opened it; reload it and try again.")
    return str(exc)


def _audit(actor, action: str, target: Target, *, request=None, detail=None, error: str = "") -> None:
    audit.record(
        actor=actor,
        action=action,
        result=AuditEvent.Result.FAILURE if error else AuditEvent.Result.SUCCESS,
        cluster=target.cluster.name,
        namespace=target.namespace,
        kind=target.kind,
        name=target.name,
        detail={**(detail or {}), **({"error": error} if error else {})},
        request=request,
    )


def _act(actor, action: str, verb: str, target: Target, work, *, request=None, detail=None):
    """Run ``work(api)`` as ``actor`` and audit the outcome; a KubeError becomes an audited ActionError."""
    try:
        with kube.api_client(target.cluster, as_user=actor) as api:
            result = work(api)
    except kube.KubeError as exc:
        sentence = refused_sentence(exc, verb, target)
        _audit(actor, action, target, request=request, detail=detail, error=sentence)
        raise ActionError(sentence) from None
    _audit(actor, action, target, request=request, detail=detail)
    return result


# --- workloads and pods ----------------------------------------------------------------------------------


def scale_workload(*, actor, target: Target, replicas: int, request=None) -> int:
    """Set the replicas of a Deployment or StatefulSet; returns the count Kubernetes stored."""
    if target.kind not in SCALABLE_KINDS:
        raise ActionError(_("Only Deployments and StatefulSets can be scaled here."))
    return _act(
        actor,
        "clusters.workload.scale",
        _("scale"),
        target,
        lambda api: k8s_actions.scale(api, target.cluster, target.kind, target.namespace, target.name, replicas),
        request=request,
        detail={"replicas": replicas},
    )


def restart_workload(*, actor, target: Target, request=None) -> str:
    """Rollout restart: the controller replaces the pods one by one, as `kubectl rollout restart` does."""
    if target.kind not in RESTARTABLE_KINDS:
        raise ActionError(_("Only Deployments, StatefulSets and DaemonSets can be restarted."))
    now = timezone.now()
    return _act(
        actor,
        "clusters.workload.restart",
        _("restart"),
        target,
        lambda api: k8s_actions.restart(api, target.cluster, target.kind, target.namespace, target.name, now),
        request=request,
    )


def delete_pod(*, actor, target: Target, request=None) -> None:
    _act(
        actor,
        "clusters.pod.delete",
        _("delete"),
        target,
        lambda api: k8s_actions.delete_pod(api, target.cluster, target.namespace, target.name),
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
        lambda api: k8s_actions.set_unschedulable(api, target.cluster, target.name, unschedulable),
        request=request,
    )


def start_drain(*, actor, target: Target, request=None) -> Job:
    """Queue the drain as a Job; the Job row and its audit event commit together."""
    from apps.clusters.actions.tasks import drain_node

    with transaction.atomic():
        job = start_job(
            task=drain_node,
            title=_("Drain node %(node)s") % {"node": target.name},
            actor=actor,
            target=f"cluster/{target.cluster.name}/node/{target.name}",
            args=(target.cluster.pk, target.name),
        )
        _audit(actor, "clusters.node.drain_started", target, request=request, detail={"job": str(job.pk)})
    return job


class DrainBlocked(Exception):
    """A disruption budget kept a pod on the node until the drain gave up; the message names it."""


def drain_job(job: JobRecorder, *, cluster_id: int, node: str) -> None:
    """The drain task's body: runs as the user who started it (Job.actor) and audits how it ended."""
    row = Job.objects.select_related("actor").get(pk=job.id)
    cluster = Cluster.objects.get(pk=cluster_id)
    target = Target(cluster, "Node", "", node)
    timeout = getattr(settings, "KUBEMATE_DRAIN_TIMEOUT_SECONDS", DRAIN_TIMEOUT_SECONDS)
    try:
        with redis_lock(f"drain:{cluster_id}:{node}", timeout=timeout + 120):
            evicted = _drain(job, target, row.actor, timeout)
    except kube.KubeError as exc:
        sentence = refused_sentence(exc, _("drain"), target)
        _audit(row.actor, "clusters.node.drained", target, detail={"job": str(row.pk)}, error=sentence)
        raise ActionError(sentence) from None
    except Exception as exc:
        _audit(row.actor, "clusters.node.drained", target, detail={"job": str(row.pk)}, error=str(exc))
        raise
    _audit(row.actor, "clusters.node.drained", target, detail={"job": str(row.pk), "evicted": evicted})


def _budget_name(reason: str) -> str:
    match = re.search(r"disruption budget (\S+)", reason or "")
    return match.group(1).rstrip(".,") if match else ""


def _drain(job: JobRecorder, target: Target, actor, timeout: float) -> int:
    cluster, node = target.cluster, target.name
    deadline = time.monotonic() + timeout
    with kube.api_client(cluster, as_user=actor) as api:
        job.progress(5, _("Cordoning node %(node)s so that no new pods land on it.") % {"node": node})
        k8s_actions.set_unschedulable(api, cluster, node, True)
        pods = k8s_actions.pods_on_node(api, cluster, node)
        pending = []
        for pod in pods:
            if pod.mirror:
                job.log(_("Leaving %(pod)s: it is a static (mirror) pod.") % {"pod": pod.label})
            elif pod.owner_kind == "DaemonSet":
                job.log(_("Leaving %(pod)s: it belongs to a DaemonSet.") % {"pod": pod.label})
            else:
                pending.append(pod)
        total = len(pending)
        job.progress(10, _("%(count)d pods to evict from %(node)s.") % {"count": total, "node": node})
        evicted, attempt = [], 0
        while pending:
            blocked = []
            for pod in pending:
                result = k8s_actions.evict(api, cluster, pod)
                if result.evicted:
                    evicted.append(pod)
                    job.progress(
                        10 + 80 * len(evicted) // max(total, 1),
                        _("Evicted %(pod)s (%(done)d of %(total)d).")
                        % {"pod": pod.label, "done": len(evicted), "total": total},
                    )
                else:
                    blocked.append((pod, result.reason))
            if not blocked:
                break
            pod, reason = blocked[0]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DrainBlocked(_give_up_sentence(timeout, pod, reason, len(blocked)))
            wait = min(DRAIN_BACKOFF_SECONDS[min(attempt, len(DRAIN_BACKOFF_SECONDS) - 1)], max(remaining, 0.1))
            for pod, reason in blocked:
                job.log(
                    _("%(pod)s cannot be evicted yet: %(reason)s Trying again in %(seconds)d s.")
                    % {"pod": pod.label, "reason": reason, "seconds": max(int(wait), 1)},
                    JobLogLine.Level.WARNING,
                )
            time.sleep(wait)
            attempt += 1
            pending = [pod for pod, _reason in blocked]
        job.progress(92, _("Waiting for the evicted pods to stop."))
        still = list(evicted)
        while still and time.monotonic() < deadline:
            still = [pod for pod in still if k8s_actions.pod_exists(api, cluster, pod)]
            if still:
                time.sleep(1)
        if still:
            job.log(
                _("%(count)d evicted pods are still terminating.") % {"count": len(still)}, JobLogLine.Level.WARNING
            )
        job.progress(
            100, _("Node %(node)s is drained: %(count)d pods evicted.") % {"node": node, "count": len(evicted)}
        )
    return len(evicted)


def _give_up_sentence(timeout: float, pod: k8s_actions.PodRef, reason: str, count: int) -> str:
    values = {
        "seconds": int(timeout),
        "budget": _budget_name(reason) or _("(unnamed)"),
        "namespace": pod.namespace,
        "pod": pod.label,
        "count": count,
    }
    return (
        _(
            "Gave up after %(seconds)d s: the disruption budget %(budget)s in namespace %(namespace)s does not "
            "allow evicting %(pod)s (%(count)d pods still on the node). The node stays cordoned; add replicas "
            "or relax the budget, then drain again."
        )
        % values
    )


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
        with kube.api_client(target.cluster, as_user=user) as api:
            if target.kind == "Secret":
                obj = k8s_actions.read_secret_metadata(api, target.cluster, target.namespace, target.name)
            else:
                obj = k8s_actions.read_object(api, target.cluster, target.kind, target.namespace, target.name)
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
        manifest = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if mark is not None:
            raise ActionError(
                _("The YAML is not valid at line %(line)d, column %(column)d: %(problem)s.")
                % {"line": mark.line + 1, "column": mark.column + 1, "problem": problem}
            ) from None
        raise ActionError(_("The YAML is not valid: %(problem)s.") % {"problem": problem}) from None
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
        with kube.api_client(target.cluster, as_user=actor) as api:
            live = k8s_actions.read_object(api, target.cluster, target.kind, target.namespace, target.name)
            result = k8s_actions.replace_object(api, target.cluster, manifest, dry_run=True)
    except kube.KubeError as exc:
        raise ActionError(refused_sentence(exc, _("edit"), target)) from None
    return EditPreview(diff=yaml_diff(live, result))


def apply_yaml_edit(*, actor, target: Target, text: str, resource_version: str, request=None) -> str:
    """Replace the object with the edited YAML; returns the new resourceVersion."""
    manifest = parse_edit(text, target, resource_version)
    result = _act(
        actor,
        "clusters.yaml.edit",
        _("edit"),
        target,
        lambda api: k8s_actions.replace_object(api, target.cluster, manifest, dry_run=False),
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


def _log_call(user, target: Target, work):
    try:
        with kube.api_client(target.cluster, as_user=user) as api:
            return work(api)
    except kube.NotFound:
        raise
    except kube.KubeError as exc:
        raise ActionError(refused_sentence(exc, _("read the logs of"), target)) from None


def pod_containers(*, user, target: Target) -> list[str]:
    """Container names of the pod (init containers last), read live as ``user``."""
    pod = _log_call(user, target, lambda api: k8s_actions.read_pod(api, target.cluster, target.namespace, target.name))
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
        lambda api: k8s_actions.read_log(
            api, target.cluster, target.namespace, target.name, container, tail=tail, previous=previous
        ),
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
        lambda api: k8s_actions.read_log(
            api,
            target.cluster,
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
    api = stack.enter_context(kube.api_client(target.cluster, as_user=user))
    try:
        chunks = k8s_actions.open_log_stream(
            api, target.cluster, target.namespace, target.name, container, previous=previous
        )
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
