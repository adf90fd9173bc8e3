"""The drain job's body: cordon a node and evict its pods, as the user who started the job (Job.actor).

``services.start_drain`` queues it as a Job; the ``clusters.drain_node`` task (tasks.py) runs ``drain_job``.
Evictions respect disruption budgets: a blocked pod is retried with backoff until
``KUBEMATE_DRAIN_TIMEOUT_SECONDS``, then the drain gives up with a sentence that names the budget.

A drain that stopped (it gave up, Kubernetes refused, or its worker died: ``drain_orphaned``) leaves the node
cordoned. ``stopped_drain`` finds it, and the node page offers to resume it (a new drain: cordoning is
idempotent and only the pods left are evicted) or to undo it (uncordon); see services.py.
"""

from __future__ import annotations

import re
import time

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.clusters import kube
from apps.clusters.actions import k8s as k8s_actions
from apps.clusters.actions.targets import ActionError, Target, audit_action, refused_sentence
from apps.clusters.models import Cluster
from apps.core.deferred import N_, sentence_of
from apps.core.deferred import text as D
from apps.core.jobs import JobRecorder
from apps.core.locks import redis_lock
from apps.core.models import Job, JobLogLine

BACKOFF_SECONDS = (1, 2, 4, 8, 15)
DRAIN_KIND = "clusters.drain_node"


class DrainBlocked(Exception):
    """A disruption budget kept a pod on the node until the drain gave up; the message names it."""


def drain_job(job: JobRecorder, *, cluster_id: int, node: str) -> None:
    """The drain task's body: runs as the user who started it (Job.actor) and audits how it ended."""
    row = Job.objects.select_related("actor").get(pk=job.id)
    cluster = Cluster.objects.get(pk=cluster_id)
    target = Target(cluster, "Node", "", node)
    timeout = settings.KUBEMATE_DRAIN_TIMEOUT_SECONDS
    try:
        busy = lambda: _already_draining(cluster, node, row)  # noqa: E731
        with redis_lock(f"drain:{cluster_id}:{node}", timeout=timeout + 120, busy=busy):
            evicted = _drain(job, target, row.actor, timeout)
    except kube.KubeError as exc:
        sentence = refused_sentence(exc, _("drain"), target)
        audit_action(row.actor, "clusters.node.drained", target, detail={"job": str(row.pk)}, error=sentence)
        raise ActionError(sentence) from None
    except Exception as exc:
        audit_action(row.actor, "clusters.node.drained", target, detail={"job": str(row.pk)}, error=sentence_of(exc))
        raise
    audit_action(row.actor, "clusters.node.drained", target, detail={"job": str(row.pk), "evicted": evicted})


def _already_draining(cluster: Cluster, node: str, mine: Job) -> str:
    """Who holds the node: "node-000 is already being drained by job 1a2b3c4d started by admin at 06:48"."""
    other = (
        Job.objects.select_related("actor")
        .filter(kind=DRAIN_KIND, target=job_target(cluster, node), status=Job.Status.RUNNING)
        .exclude(pk=mine.pk)
        .order_by("-created_at")
        .first()
    )
    if other is None:
        return _("Node %(node)s is already being drained; try again when that drain has finished.") % {"node": node}
    started = timezone.localtime(other.started_at or other.created_at).strftime("%Y-%m-%d %H:%M")
    return _("Node %(node)s is already being drained by job %(job)s started by %(user)s at %(time)s.") % {
        "node": node,
        "job": str(other.pk)[:8],
        "user": other.actor.get_username() if other.actor else _("the system"),
        "time": started,
    }


def job_target(cluster: Cluster, node: str) -> str:
    """The Job.target of a drain of ``node``."""
    return f"cluster/{cluster.name}/node/{node}"


def stopped_drain(cluster: Cluster, node: str) -> Job | None:
    """The node's last drain when it stopped before the end (failed or cancelled), else None."""
    last = Job.objects.filter(kind=DRAIN_KIND, target=job_target(cluster, node)).order_by("-created_at").first()
    return last if last is not None and last.status in (Job.Status.FAILED, Job.Status.CANCELLED) else None


def drain_cancelled(job: Job) -> str:
    """The words for a drain someone cancelled (JobTask.when_cancelled); the drain audited its own stop."""
    node = [*job.target.split("/"), "", "", "", ""][3]
    return D(
        N_(
            "Cancelled by %(user)s at %(progress)s%%. Node %(node)s stays cordoned with the pods not yet evicted: "
            "on the node's page, resume the drain to evict them, or uncordon the node to undo it."
        ),
        user=job.cancelled_by.get_username() if job.cancelled_by else D(N_("the system")),
        progress=job.progress,
        node=node,
    )


def drain_orphaned(job: Job) -> str:
    """The reaper's words, and audit event, for a drain whose worker died (JobTask.when_orphaned)."""
    _prefix, cluster_name, _kind, node = [*job.target.split("/"), "", "", "", ""][:4]
    sentence = D(
        N_(
            "The worker running this drain stopped at %(progress)s%% and did not come back. Node %(node)s stays "
            "cordoned with the pods not yet evicted: on the node's page, resume the drain to evict them, or uncordon "
            "the node to undo it."
        ),
        progress=job.progress,
        node=node,
    )
    cluster = Cluster.objects.filter(name=cluster_name).first()
    if cluster is not None:
        target = Target(cluster, "Node", "", node)
        audit_action(job.actor, "clusters.node.drained", target, detail={"job": str(job.pk)}, error=sentence)
    return sentence


def _budget_name(reason: str) -> str:
    match = re.search(r"disruption budget (\S+)", reason or "")
    return match.group(1).rstrip(".,") if match else ""


def _drain(job: JobRecorder, target: Target, actor, timeout: float) -> int:
    cluster, node = target.cluster, target.name
    deadline = time.monotonic() + timeout
    with kube.client(cluster, as_user=actor) as k:
        job.progress(5, D(N_("Cordoning node %(node)s so that no new pods land on it."), node=node))
        k8s_actions.set_unschedulable(k, node, True)
        pods = k8s_actions.pods_on_node(k, node)
        pending = []
        for pod in pods:
            if pod.mirror:
                job.log(D(N_("Leaving %(pod)s: it is a static (mirror) pod."), pod=pod.label))
            elif pod.owner_kind == "DaemonSet":
                job.log(D(N_("Leaving %(pod)s: it belongs to a DaemonSet."), pod=pod.label))
            else:
                pending.append(pod)
        total = len(pending)
        job.progress(10, D(N_("%(count)d pods to evict from %(node)s."), count=total, node=node))
        evicted, attempt = [], 0
        while pending:
            blocked = []
            for pod in pending:
                result = k8s_actions.evict(k, pod)
                if result.evicted:
                    evicted.append(pod)
                    job.progress(
                        10 + 80 * len(evicted) // max(total, 1),
                        D(
                            N_("Evicted %(pod)s (%(done)d of %(total)d)."),
                            pod=pod.label,
                            done=len(evicted),
                            total=total,
                        ),
                    )
                else:
                    blocked.append((pod, result.reason))
            if not blocked:
                break
            pod, reason = blocked[0]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DrainBlocked(_give_up_sentence(timeout, pod, reason, len(blocked)))
            wait = min(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)], max(remaining, 0.1))
            for pod, reason in blocked:
                job.log(
                    D(
                        N_("%(pod)s cannot be evicted yet: %(reason)s Trying again in %(seconds)d s."),
                        pod=pod.label,
                        reason=reason,
                        seconds=max(int(wait), 1),
                    ),
                    JobLogLine.Level.WARNING,
                )
            time.sleep(wait)
            attempt += 1
            pending = [pod for pod, _reason in blocked]
        job.progress(92, D(N_("Waiting for the evicted pods to stop.")))
        still = list(evicted)
        while still and time.monotonic() < deadline:
            still = [pod for pod in still if k8s_actions.pod_exists(k, pod)]
            if still:
                time.sleep(1)
        if still:
            job.log(
                D(N_("%(count)d evicted pods are still terminating."), count=len(still)),
                JobLogLine.Level.WARNING,
            )
        job.progress(100, D(N_("Node %(node)s is drained: %(count)d pods evicted."), node=node, count=len(evicted)))
    return len(evicted)


def _give_up_sentence(timeout: float, pod: k8s_actions.PodRef, reason: str, count: int) -> str:
    values = {
        "seconds": int(timeout),
        "budget": _budget_name(reason) or D(N_("(unnamed)")),
        "namespace": pod.namespace,
        "pod": pod.label,
        "count": count,
    }
    return D(
        N_(
            "Gave up after %(seconds)d s: the disruption budget %(budget)s in namespace %(namespace)s does not "
            "allow evicting %(pod)s (%(count)d pods still on the node). The node stays cordoned; add replicas "
            "or relax the budget, then drain again."
        ),
        **values,
    )
