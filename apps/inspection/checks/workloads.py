"""Pod and workload checks, reported per workload: what a person fixes is the Deployment, not each of its pods.

Every pod check reads one digest of the cluster's pods (``pod_digest``), built in a single streamed pass over the
Pod rows and kept for the run: for each kind of trouble, the workloads that have it, how many of their pods, and the
worst pod as the example. Only troubled workloads are kept, plus a count of pods per workload, so memory follows the
number of workloads, not of pods. A pod's workload is its controller, with a ReplicaSet made by a Deployment named
as that Deployment (the ReplicaSet's name less the pod-template-hash), so a finding keeps its subject across
rollouts.

Requests, limits and probes are judged on the pods, not on the workload's template: a namespace's LimitRange fills
in defaults when pods are admitted, and the pods are what runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from apps.clusters.inventory.summaries import controller_of
from apps.clusters.models import Cluster, SyncState
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.inspection.checks.base import CannotCheck, Domain, Finding, Severity, check
from apps.inspection.checks.cluster import condition
from apps.inspection.checks.context import Row

CLUSTER = Domain.CLUSTER
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
MAX_CONTAINERS = 8  # containers named in one finding
MAX_TEXT = 300

Key = tuple[str, str, str]  # namespace, workload kind, workload name


def _cut(value, limit: int = MAX_TEXT) -> str:
    value = " ".join(str(value or "").split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def workload_of(row: Row) -> tuple[str, str]:
    """(kind, name) of the workload that runs the pod: its controller, a Deployment for a ReplicaSet it made, the
    pod itself when nothing controls it."""
    owner = controller_of(row.object)
    if not owner or not owner.get("kind") or not owner.get("name"):
        return "Pod", row.name
    kind, name = str(owner["kind"])[:63], str(owner["name"])[:253]
    template_hash = str((row.labels or {}).get("pod-template-hash") or "")
    if kind == "ReplicaSet" and template_hash and name.endswith("-" + template_hash):
        return "Deployment", name[: -len(template_hash) - 1]
    return kind, name


def subject_of(key: Key) -> str:
    namespace, kind, name = key
    return f"{kind} {namespace}/{name}"


@dataclass
class Trouble:
    """One kind of trouble in one workload: how many of its pods have it, and the worst pod's details."""

    pods: int = 0
    worst: float = -1.0
    pod: str = ""
    detail: dict = field(default_factory=dict)

    def add(self, pod: str, measure: float, detail: dict) -> None:
        self.pods += 1
        if measure > self.worst:
            self.worst, self.pod, self.detail = measure, pod, detail


@dataclass
class PodDigest:
    pods: Counter = field(default_factory=Counter)  # pods per workload
    troubles: dict[str, dict[Key, Trouble]] = field(default_factory=dict)

    def add(self, trouble: str, key: Key, pod: str, measure: float, detail: dict) -> None:
        self.troubles.setdefault(trouble, {}).setdefault(key, Trouble()).add(pod, measure, detail)

    def of(self, trouble: str) -> list[tuple[Key, Trouble]]:
        return sorted(self.troubles.get(trouble, {}).items())


def _containers_missing(spec: dict, test) -> list[str]:
    """'web (cpu, memory)' for each container of ``spec`` that ``test(container)`` finds wanting."""
    found = []
    for container in spec.get("containers") or []:
        if not isinstance(container, dict):
            continue
        missing = test(container)
        if missing:
            name = str(container.get("name") or "?")[:63]
            found.append(f"{name} ({', '.join(missing)})" if isinstance(missing, list) else name)
    return found


def _missing_requests(container: dict) -> list[str]:
    requests = (container.get("resources") or {}).get("requests") or {}
    return [r for r in ("cpu", "memory") if not requests.get(r)]


def _missing_memory_limit(container: dict) -> bool:
    return not ((container.get("resources") or {}).get("limits") or {}).get("memory")


def _memory_limit(spec: dict, container: str) -> str:
    for item in spec.get("containers") or []:
        if isinstance(item, dict) and item.get("name") == container:
            return str(((item.get("resources") or {}).get("limits") or {}).get("memory") or "")[:20]
    return ""


def _pod_troubles(ctx, row: Row, pending_after_minutes: float, restart_limit: float) -> dict[str, tuple]:
    """Each trouble the pod has: trouble -> (measure, detail), the worst container's when several have it."""
    spec, status = row.object.get("spec") or {}, row.object.get("status") or {}
    phase = status.get("phase") or "Pending"
    found: dict[str, tuple] = {}

    def keep(trouble: str, measure: float, detail: dict) -> None:
        if trouble not in found or measure > found[trouble][0]:
            found[trouble] = (measure, detail)

    if phase == "Pending" and row.created is not None:
        minutes = (ctx.now - row.created).total_seconds() / 60
        if minutes > pending_after_minutes:
            scheduled = condition(row, "PodScheduled") or {}
            why = scheduled.get("message") if scheduled.get("status") == "False" else ""
            for item in status.get("containerStatuses") or []:
                waiting = ((item or {}).get("state") or {}).get("waiting") or {}
                why = why or waiting.get("reason")
            keep("pending", minutes, {"minutes": int(minutes), "why": _cut(why) or "-"})
    statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    for item in statuses:
        if not isinstance(item, dict):
            continue
        container = str(item.get("name") or "?")[:63]
        state, last = item.get("state") or {}, (item.get("lastState") or {}).get("terminated") or {}
        waiting, ended = state.get("waiting") or {}, state.get("terminated") or {}
        try:
            restarts = int(item.get("restartCount") or 0)
        except (TypeError, ValueError):
            restarts = 0
        if waiting.get("reason") == "CrashLoopBackOff":
            exit_words = f"{last.get('reason') or '?'} ({last.get('exitCode', '?')})" if last else "?"
            keep("crash", restarts, {"container": container, "restarts": restarts, "last": _cut(exit_words, 80)})
        if waiting.get("reason") in IMAGE_PULL_REASONS:
            detail = {
                "container": container,
                "image": _cut(item.get("image"), 200),
                "reason": waiting["reason"],
                "why": _cut(waiting.get("message")),
            }
            keep("pull", 0, detail)
        killed = ended if ended.get("reason") == "OOMKilled" else last if last.get("reason") == "OOMKilled" else None
        if killed is not None:
            detail = {
                "container": container,
                "limit": _memory_limit(spec, container) or "-",
                "at": str(killed.get("finishedAt") or "?")[:40],
            }
            keep("oom", restarts, detail)
        if restarts > restart_limit:
            keep("restarts", restarts, {"container": container, "restarts": restarts})
    return found


def _build_digest(ctx, cluster: Cluster) -> PodDigest:
    digest = PodDigest()
    pending_after = ctx.threshold("pod.pending_minutes")
    restart_limit = ctx.threshold("pod.restart_count")
    for row in ctx.rows(cluster, "Pod"):
        meta = row.object.get("metadata") or {}
        phase = (row.object.get("status") or {}).get("phase")
        if meta.get("deletionTimestamp") or phase == "Succeeded":
            continue
        key: Key = (row.namespace, *workload_of(row))
        digest.pods[key] += 1
        for trouble, (measure, detail) in _pod_troubles(ctx, row, pending_after, restart_limit).items():
            digest.add(trouble, key, row.name, measure, detail)
        if key[1] not in WORKLOAD_KINDS or phase == "Failed":
            continue
        spec = row.object.get("spec") or {}
        for trouble, test in (
            ("requests", _missing_requests),
            ("limits", _missing_memory_limit),
            ("readiness", lambda c: not c.get("readinessProbe")),
            ("liveness", lambda c: not c.get("livenessProbe")),
        ):
            containers = _containers_missing(spec, test)
            if containers:
                digest.add(trouble, key, row.name, len(containers), {"containers": containers[:MAX_CONTAINERS]})
    return digest


def pod_digest(ctx, cluster: Cluster) -> PodDigest:
    """The digest of ``cluster``'s pods, built once per run."""
    return ctx.once(("cluster.pods", cluster.pk), lambda: _build_digest(ctx, cluster))


def _every_pod_or_some(digest: PodDigest, key: Key, trouble: Trouble) -> str:
    # Every pod of the workload: it is down. Some: it runs with less than it should.
    return Severity.CRITICAL if trouble.pods >= digest.pods[key] else Severity.WARNING


def _facts(digest: PodDigest, key: Key, trouble: Trouble) -> dict:
    return {"pods": digest.pods[key], "affected": trouble.pods, "example": trouble.pod, **trouble.detail}


# Pods --------------------------------------------------------------------------------------------------------


@check(
    "cluster.pods.pending",
    CLUSTER,
    Severity.WARNING,
    _("No pod stays pending"),
    _(
        "A pod pending for long never started: no node has room for its requests or matches its placement, a "
        "volume does not attach, or its image does not pull; the workload runs short."
    ),
    _(
        "Read why in the finding (the scheduler's message), then free or add capacity, correct the node selector, "
        "tolerations or affinity, or fix the volume claim."
    ),
)
def pods_pending(ctx, cluster: Cluster) -> Iterator[Finding]:
    digest = pod_digest(ctx, cluster)
    for key, trouble in digest.of("pending"):
        yield Finding(
            subject=subject_of(key),
            namespace=key[0],
            message=D(
                N_(
                    "%(affected)s of %(pods)s pods of %(workload)s are pending; %(pod)s for %(minutes)s minutes: "
                    "%(why)s"
                ),
                affected=trouble.pods,
                pods=digest.pods[key],
                workload=subject_of(key),
                pod=trouble.pod,
                minutes=trouble.detail["minutes"],
                why=trouble.detail["why"],
            ),
            facts=_facts(digest, key, trouble),
        )


@check(
    "cluster.pods.crash_looping",
    CLUSTER,
    Severity.CRITICAL,
    _("No pod is crash-looping"),
    _(
        "A crash-looping container starts, fails and is restarted with a growing delay: the workload serves with "
        "fewer pods, or not at all when every pod does it."
    ),
    _(
        "Read the previous container's log (Kubemate's log page, or kubectl logs --previous) and its exit code; "
        "usually a configuration value, a secret, a dependency that does not answer, or too little memory."
    ),
)
def pods_crash_looping(ctx, cluster: Cluster) -> Iterator[Finding]:
    digest = pod_digest(ctx, cluster)
    for key, trouble in digest.of("crash"):
        yield Finding(
            subject=subject_of(key),
            namespace=key[0],
            severity=_every_pod_or_some(digest, key, trouble),
            message=D(
                N_(
                    "%(affected)s of %(pods)s pods of %(workload)s are crash-looping; container %(container)s of "
                    "%(pod)s restarted %(restarts)s times, last ended %(last)s."
                ),
                affected=trouble.pods,
                pods=digest.pods[key],
                workload=subject_of(key),
                container=trouble.detail["container"],
                pod=trouble.pod,
                restarts=trouble.detail["restarts"],
                last=trouble.detail["last"],
            ),
            facts=_facts(digest, key, trouble),
        )


@check(
    "cluster.pods.oom_killed",
    CLUSTER,
    Severity.WARNING,
    _("No container was killed for running out of memory"),
    _(
        "A container that uses more memory than its limit is killed by the kernel (OOMKilled) and restarted: "
        "requests in flight are lost, and it will happen again under the same load."
    ),
    _(
        "Compare the container's memory use (the metrics page) with its limit: raise the limit, or fix the leak "
        "or the heap setting (a JVM's -Xmx must leave room below the limit)."
    ),
)
def pods_oom_killed(ctx, cluster: Cluster) -> Iterator[Finding]:
    digest = pod_digest(ctx, cluster)
    for key, trouble in digest.of("oom"):
        yield Finding(
            subject=subject_of(key),
            namespace=key[0],
            message=D(
                N_(
                    "%(affected)s of %(pods)s pods of %(workload)s were killed for running out of memory; "
                    "container %(container)s of %(pod)s (memory limit %(limit)s) at %(at)s."
                ),
                affected=trouble.pods,
                pods=digest.pods[key],
                workload=subject_of(key),
                container=trouble.detail["container"],
                pod=trouble.pod,
                limit=trouble.detail["limit"],
                at=trouble.detail["at"],
            ),
            facts=_facts(digest, key, trouble),
        )


@check(
    "cluster.pods.restarts",
    CLUSTER,
    Severity.WARNING,
    _("Containers do not restart often"),
    _(
        "Containers that restart again and again fail for a reason that has not been fixed: each restart drops "
        "the requests in flight and the pod is unready meanwhile."
    ),
    _(
        "Read the previous container's log and exit code (kubectl logs --previous, kubectl describe pod): a failing "
        "liveness probe, running out of memory, or the application exiting on an error."
    ),
)
def pods_restarts(ctx, cluster: Cluster) -> Iterator[Finding]:
    digest = pod_digest(ctx, cluster)
    limit = int(ctx.threshold("pod.restart_count"))
    for key, trouble in digest.of("restarts"):
        yield Finding(
            subject=subject_of(key),
            namespace=key[0],
            message=D(
                N_(
                    "%(affected)s of %(pods)s pods of %(workload)s restarted more than %(limit)s times; container "
                    "%(container)s of %(pod)s %(restarts)s times."
                ),
                affected=trouble.pods,
                pods=digest.pods[key],
                workload=subject_of(key),
                limit=limit,
                container=trouble.detail["container"],
                pod=trouble.pod,
                restarts=trouble.detail["restarts"],
            ),
            facts={**_facts(digest, key, trouble), "limit": limit},
        )


@check(
    "cluster.pods.image_pull",
    CLUSTER,
    Severity.CRITICAL,
    _("Images pull"),
    _(
        "A container whose image does not pull never starts: a new version does not roll out, and pods moved to "
        "another node do not come back."
    ),
    _(
        "Check the image name and tag, that the registry answers from the nodes, and the pull secret of the pod's "
        "service account (imagePullSecrets)."
    ),
)
def pods_image_pull(ctx, cluster: Cluster) -> Iterator[Finding]:
    digest = pod_digest(ctx, cluster)
    for key, trouble in digest.of("pull"):
        yield Finding(
            subject=subject_of(key),
            namespace=key[0],
            severity=_every_pod_or_some(digest, key, trouble),
            message=D(
                N_(
                    "%(affected)s of %(pods)s pods of %(workload)s cannot pull their image; container %(container)s "
                    "of %(pod)s: %(reason)s %(image)s %(why)s"
                ),
                affected=trouble.pods,
                pods=digest.pods[key],
                workload=subject_of(key),
                container=trouble.detail["container"],
                pod=trouble.pod,
                reason=trouble.detail["reason"],
                image=trouble.detail["image"],
                why=trouble.detail["why"],
            ),
            facts=_facts(digest, key, trouble),
        )


# Workload hygiene --------------------------------------------------------------------------------------------


def _containers_finding(digest: PodDigest, key: Key, trouble: Trouble, sentence: str) -> Finding:
    containers = trouble.detail["containers"]
    return Finding(
        subject=subject_of(key),
        namespace=key[0],
        message=D(sentence, workload=subject_of(key), containers=", ".join(containers)),
        facts={"containers": containers, "pods": digest.pods[key], "example": trouble.pod},
    )


@check(
    "cluster.workloads.no_requests",
    CLUSTER,
    Severity.WARNING,
    _("Containers request CPU and memory"),
    _(
        "The scheduler places pods by their requests: without them a node is filled past what it can run, and "
        "under pressure these pods are the first evicted."
    ),
    _(
        "Set resources.requests (cpu and memory) on each container, near what it uses on a normal day (the "
        "metrics page), or give the namespace a LimitRange with defaults."
    ),
)
def workloads_no_requests(ctx, cluster: Cluster) -> Iterator[Finding]:
    digest = pod_digest(ctx, cluster)
    for key, trouble in digest.of("requests"):
        yield _containers_finding(
            digest,
            key,
            trouble,
            N_("%(workload)s runs containers without CPU or memory requests: %(containers)s."),
        )


@check(
    "cluster.workloads.no_memory_limit",
    CLUSTER,
    Severity.WARNING,
    _("Containers have a memory limit"),
    _(
        "A container without a memory limit can take all of its node's memory: its neighbours are killed or "
        "evicted instead of it. (A CPU limit is left to you: it only slows the container that reaches it.)"
    ),
    _(
        "Set resources.limits.memory on each container, with room above its peak use, or give the namespace a "
        "LimitRange with a default limit."
    ),
)
def workloads_no_memory_limit(ctx, cluster: Cluster) -> Iterator[Finding]:
    digest = pod_digest(ctx, cluster)
    for key, trouble in digest.of("limits"):
        yield _containers_finding(
            digest, key, trouble, N_("%(workload)s runs containers without a memory limit: %(containers)s.")
        )


@check(
    "cluster.workloads.no_readiness_probe",
    CLUSTER,
    Severity.WARNING,
    _("Containers have a readiness probe"),
    _(
        "Without a readiness probe a pod receives traffic as soon as its process starts, before it can answer, "
        "and keeps receiving it when it can no longer answer: users see errors at every rollout."
    ),
    _(
        "Add a readinessProbe to each serving container (an HTTP health path or its TCP port), answering only when "
        "it can serve."
    ),
)
def workloads_no_readiness_probe(ctx, cluster: Cluster) -> Iterator[Finding]:
    digest = pod_digest(ctx, cluster)
    for key, trouble in digest.of("readiness"):
        yield _containers_finding(
            digest, key, trouble, N_("%(workload)s runs containers without a readiness probe: %(containers)s.")
        )


@check(
    "cluster.workloads.no_liveness_probe",
    CLUSTER,
    Severity.INFO,
    _("Containers have a liveness probe"),
    _(
        "Without a liveness probe a container that hangs (a deadlock, an exhausted pool) keeps running and is "
        "never restarted: it stays broken until someone notices."
    ),
    _(
        "Add a livenessProbe that fails only when the process is stuck (not when a dependency is down), with a "
        "generous failure threshold."
    ),
)
def workloads_no_liveness_probe(ctx, cluster: Cluster) -> Iterator[Finding]:
    digest = pod_digest(ctx, cluster)
    for key, trouble in digest.of("liveness"):
        yield _containers_finding(
            digest, key, trouble, N_("%(workload)s runs containers without a liveness probe: %(containers)s.")
        )


def selects(selector, labels: dict) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) selects ``labels``; a missing selector selects
    nothing, an empty one everything (policy/v1)."""
    if not isinstance(selector, dict):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        if not isinstance(expression, dict):
            return False
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if operator == "In":
            ok = key in labels and labels[key] in values
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            ok = False
        if not ok:
            return False
    return True


def _budgets(ctx, cluster: Cluster) -> dict[str, list]:
    """The PodDisruptionBudgets' selectors, per namespace."""

    def build() -> dict[str, list]:
        found: dict[str, list] = {}
        for row in ctx.rows(cluster, "PodDisruptionBudget"):
            found.setdefault(row.namespace, []).append(((row.object.get("spec") or {}).get("selector"), row.name))
        return found

    return ctx.once(("cluster.pdbs", cluster.pk), build)


@check(
    "cluster.workloads.single_replica_no_pdb",
    CLUSTER,
    Severity.WARNING,
    _("Single-replica workloads are protected by a disruption budget"),
    _(
        "A workload with one replica stops whenever its node is drained (an upgrade, a patch night); with no "
        "PodDisruptionBudget nothing even makes the drain wait for it."
    ),
    _(
        "Run at least two replicas (spread over nodes) with a PodDisruptionBudget of minAvailable 1; a workload "
        "that must stay single needs a budget and a planned window for each drain."
    ),
)
def workloads_single_replica_no_pdb(ctx, cluster: Cluster) -> Iterator[Finding]:
    listed = SyncState.objects.filter(cluster=cluster, kind="PodDisruptionBudget", listed_at__isnull=False)
    if not listed.exclude(state=SyncState.State.FORBIDDEN).exists():
        # No budget rows because none were read (a cluster registered before Kubemate read them, or an identity
        # without the permission) must not read as "no budget protects anything".
        raise CannotCheck(
            D(
                N_(
                    "The disruption budgets of cluster %(cluster)s have not been read; if this lasts, register the "
                    "cluster again with administrator credentials so that Kubemate's identity may list them."
                ),
                cluster=cluster.name,
            )
        )
    budgets = _budgets(ctx, cluster)
    for kind in ("Deployment", "StatefulSet"):
        for row in ctx.rows(cluster, kind):
            spec = row.object.get("spec") or {}
            replicas = spec.get("replicas", 1)
            if replicas != 1:
                continue
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if any(selects(selector, labels) for selector, _name in budgets.get(row.namespace, ())):
                continue
            yield Finding(
                subject=row.key,
                namespace=row.namespace,
                message=D(
                    N_("%(workload)s runs a single replica and no PodDisruptionBudget selects its pods."),
                    workload=row.key,
                ),
                facts={"replicas": 1, "budgets_in_namespace": len(budgets.get(row.namespace, ()))},
            )


@check(
    "cluster.hpa.at_max",
    CLUSTER,
    Severity.WARNING,
    _("Autoscalers have room to scale"),
    _(
        "An autoscaler at its maximum cannot add pods when the load grows further: the workload slows down or "
        "fails while the autoscaler says it would need more."
    ),
    _(
        "Raise maxReplicas if the nodes and the workload's dependencies can take more pods, or make each pod do "
        "more (resources, efficiency); check that the metric it scales on is the right one."
    ),
)
def hpa_at_max(ctx, cluster: Cluster) -> Iterator[Finding]:
    for row in ctx.rows(cluster, "HorizontalPodAutoscaler"):
        summary = row.summary
        try:
            low, high = int(summary.get("min") or 1), int(summary.get("max") or 0)
            current, desired = int(summary.get("current") or 0), int(summary.get("desired") or 0)
        except (TypeError, ValueError):
            continue
        if high <= low or current < high:
            continue
        limited = condition(row, "ScalingLimited") or {}
        wants_more = limited.get("status") == "True" and limited.get("reason") == "TooManyReplicas"
        yield Finding(
            subject=row.key,
            namespace=row.namespace,
            message=D(
                N_("Autoscaler %(name)s keeps %(target)s at its maximum of %(max)s replicas. %(detail)s"),
                name=row.name,
                target=_cut(summary.get("target"), 253) or "?",
                max=high,
                detail=_cut(limited.get("message")) if wants_more else "",
            ),
            facts={"min": low, "max": high, "current": current, "desired": desired, "wants_more": wants_more},
        )
