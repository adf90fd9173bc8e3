"""Cluster checks: the control plane, the nodes, and the warning events.

The control plane is asked once per run through Kubemate's own identity (``kube.client(cluster)``): the API
server's ``/readyz?verbose`` answers for itself and for etcd (its ``etcd`` and ``etcd-readiness`` entries),
``/livez?verbose`` for whether it should be restarted. The scheduler and the controller-manager are not in the API
server's health answers and their own health ports are rarely reachable from outside the control-plane hosts; their
leader-election leases in kube-system are: a running leader renews its lease every few seconds, so a lease not
renewed for ``controlplane.lease_seconds`` (2 minutes) means no instance is working.

Nodes are judged row by row from the inventory (object checks); warning events are grouped by namespace and reason,
the way a person reads them ("FailedMount 40 times in payments"), never one finding per event.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.translation import gettext_lazy as _

from apps.clusters import kube
from apps.clusters.inventory.summaries import parse_time
from apps.clusters.models import Cluster
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.inspection.checks.base import CannotCheck, Domain, Finding, Severity, check, object_check
from apps.inspection.checks.context import Row

CLUSTER = Domain.CLUSTER

# What Kubemate reads of a health answer: the API server's is a few dozen short lines; anything longer is cut.
MAX_HEALTH_BYTES = 64 * 1024
MAX_HEALTH_LINES = 400
MAX_NAMED = 12  # failed entries named in one finding
HEALTH_LINE = re.compile(r"^\[([+-])\]([A-Za-z0-9_./:-]{1,160}) (ok|failed|excluded)")
# A load balancer in front of the API servers answers these when none behind it does: the answer is the finding.
HEALTH_STATUSES = (500, 502, 503, 504)
LEASE_NAMESPACE = "kube-system"
MAX_TEXT = 300  # characters of a message a cluster wrote, quoted in a finding


def _cut(value, limit: int = MAX_TEXT) -> str:
    value = " ".join(str(value or "").split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


# Control plane -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    """One health endpoint's answer. ``status`` None: no answer (``problem`` says why); ``refused``: the server
    answered but would not tell (401/403), so nothing can be concluded."""

    status: int | None
    entries: tuple[tuple[str, bool], ...] = ()  # (name, ok) in the server's order
    problem: str = ""
    refused: bool = False

    @property
    def failed(self) -> list[str]:
        return [name for name, ok in self.entries if not ok]


def parse_health(text: str) -> tuple[tuple[str, bool], ...]:
    """The ``[+]name ok`` / ``[-]name failed`` lines of a verbose health answer, bounded in size."""
    entries = []
    for line in text[:MAX_HEALTH_BYTES].splitlines()[:MAX_HEALTH_LINES]:
        match = HEALTH_LINE.match(line.strip())
        if match and match.group(3) != "excluded":
            entries.append((match.group(2), match.group(1) == "+"))
    return tuple(entries)


def _ask_health(cluster: Cluster, endpoint: str) -> Health:
    try:
        with kube.client(cluster) as k:
            status, text = k.send(
                "GET", f"/{endpoint}", query=[("verbose", "true")], accept="text/plain", passthrough=HEALTH_STATUSES
            )
    except kube.KubeError as exc:
        if exc.status in (401, 403):
            return Health(exc.status, problem=str(exc), refused=True)
        if exc.status:
            return Health(exc.status, problem=_cut(exc.detail or exc))
        return Health(None, problem=_cut(exc))
    return Health(status, parse_health(text if isinstance(text, str) else ""))


def health(ctx, cluster: Cluster, endpoint: str) -> Health:
    """``readyz`` or ``livez`` of ``cluster``, asked once per run."""
    return ctx.once(("cluster.health", cluster.pk, endpoint), lambda: _ask_health(cluster, endpoint))


def _cannot(cluster: Cluster, answer: Health) -> CannotCheck:
    if answer.refused:
        return CannotCheck(
            D(
                N_("Cluster %(cluster)s would not tell Kubemate's identity its health: %(error)s"),
                cluster=cluster.name,
                error=answer.problem,
            )
        )
    return CannotCheck(
        D(
            N_("The API server of cluster %(cluster)s does not answer: %(error)s"),
            cluster=cluster.name,
            error=answer.problem,
        )
    )


def _health_finding(cluster: Cluster, endpoint: str, answer: Health) -> Finding | None:
    if answer.refused:
        raise _cannot(cluster, answer)
    subject = f"apiserver /{endpoint}"
    if answer.status is None:
        return Finding(
            subject=subject,
            message=D(
                N_("The API server of cluster %(cluster)s does not answer Kubemate: %(error)s"),
                cluster=cluster.name,
                error=answer.problem,
            ),
            facts={"endpoint": endpoint, "error": answer.problem},
        )
    if answer.status == 200:
        return None
    failed = answer.failed
    if not failed:
        return Finding(
            subject=subject,
            message=D(
                N_("The API server of cluster %(cluster)s answers /%(endpoint)s with HTTP %(status)s."),
                cluster=cluster.name,
                endpoint=endpoint,
                status=answer.status,
            ),
            facts={"endpoint": endpoint, "status": answer.status, "error": answer.problem},
        )
    return Finding(
        subject=subject,
        message=D(
            N_("The API server of cluster %(cluster)s fails its /%(endpoint)s checks: %(failed)s."),
            cluster=cluster.name,
            endpoint=endpoint,
            failed=", ".join(failed[:MAX_NAMED]),
        ),
        facts={"endpoint": endpoint, "status": answer.status, "failed": failed[:MAX_NAMED]},
    )


@check(
    "cluster.apiserver.ready",
    CLUSTER,
    Severity.CRITICAL,
    _("API server is ready"),
    _(
        "An API server that is not ready refuses or delays every request: deployments, scaling and the "
        "controllers that heal the cluster all stop."
    ),
    _(
        "Read the failed entries (kubectl get --raw '/readyz?verbose'), then the API server's log on the control-plane "
        "hosts; check etcd and the load balancer in front of the API servers."
    ),
)
def apiserver_ready(ctx, cluster: Cluster) -> Iterator[Finding]:
    found = _health_finding(cluster, "readyz", health(ctx, cluster, "readyz"))
    if found:
        yield found


@check(
    "cluster.apiserver.live",
    CLUSTER,
    Severity.CRITICAL,
    _("API server is live"),
    _(
        "An API server that fails its liveness checks is stuck: its hosts restart it, and until then requests "
        "sent to it fail."
    ),
    _(
        "Read the failed entries (kubectl get --raw '/livez?verbose') and the API server's log; restart it on the "
        "host that fails if it does not recover by itself."
    ),
)
def apiserver_live(ctx, cluster: Cluster) -> Iterator[Finding]:
    found = _health_finding(cluster, "livez", health(ctx, cluster, "livez"))
    if found:
        yield found


@check(
    "cluster.etcd.health",
    CLUSTER,
    Severity.CRITICAL,
    _("etcd answers the API server"),
    _(
        "etcd holds every object of the cluster: when the API server cannot reach it, nothing can be read or "
        "changed, and a lost etcd quorum can lose data."
    ),
    _(
        "Check the etcd members (etcdctl endpoint health --cluster), their disks (fsync latency, free space) and "
        "the network between the API servers and etcd; restore a quorum before anything else."
    ),
)
def etcd_health(ctx, cluster: Cluster) -> Iterator[Finding]:
    answer = health(ctx, cluster, "readyz")
    if answer.status is None or answer.refused:
        raise _cannot(cluster, answer)
    etcd = [(name, ok) for name, ok in answer.entries if name.startswith("etcd")]
    if not etcd:
        # No etcd entry: the server keeps its objects elsewhere (kine, an external store), or a proxy answered.
        raise CannotCheck(D(N_("The API server of cluster %(cluster)s does not report on etcd."), cluster=cluster.name))
    failed = [name for name, ok in etcd if not ok]
    if failed:
        yield Finding(
            subject="etcd",
            message=D(
                N_("The API server of cluster %(cluster)s cannot use etcd: %(failed)s failed."),
                cluster=cluster.name,
                failed=", ".join(failed[:MAX_NAMED]),
            ),
            facts={"failed": failed[:MAX_NAMED], "status": answer.status},
        )


def _lease(ctx, cluster: Cluster, name: str) -> dict | None:
    def read() -> dict | CannotCheck | None:
        try:
            with kube.client(cluster) as k:
                return k.read("Lease", LEASE_NAMESPACE, name)
        except kube.Forbidden:
            return CannotCheck(
                D(
                    N_(
                        "Kubemate's identity may not read the lease %(lease)s in cluster %(cluster)s: register the "
                        "cluster again with administrator credentials to update its permissions."
                    ),
                    lease=f"{LEASE_NAMESPACE}/{name}",
                    cluster=cluster.name,
                )
            )
        except kube.KubeError as exc:
            return CannotCheck(
                D(
                    N_("The lease %(lease)s of cluster %(cluster)s could not be read: %(error)s"),
                    lease=f"{LEASE_NAMESPACE}/{name}",
                    cluster=cluster.name,
                    error=_cut(exc),
                )
            )

    answer = ctx.once(("cluster.lease", cluster.pk, name), read)
    if isinstance(answer, CannotCheck):
        raise answer
    return answer


def _lease_findings(ctx, cluster: Cluster, lease_name: str, component: str) -> Iterator[Finding]:
    lease = _lease(ctx, cluster, lease_name)
    if lease is None:
        raise CannotCheck(
            D(
                N_(
                    "Cluster %(cluster)s has no lease %(lease)s: %(component)s runs without leader election, so "
                    "Kubemate cannot tell whether it works."
                ),
                cluster=cluster.name,
                lease=f"{LEASE_NAMESPACE}/{lease_name}",
                component=component,
            )
        )
    spec = lease.get("spec") or {}
    holder = _cut(spec.get("holderIdentity"), 120)
    limit = ctx.threshold("controlplane.lease_seconds", 120)
    try:
        renewed = parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    except (TypeError, ValueError):
        renewed = None
    age = (ctx.now - renewed).total_seconds() if renewed else None
    facts = {"lease": f"{LEASE_NAMESPACE}/{lease_name}", "holder": holder, "seconds": age, "limit": limit}
    if not holder:
        yield Finding(
            subject=component,
            message=D(
                N_("No %(component)s holds the lease %(lease)s of cluster %(cluster)s: none is leading."),
                component=component,
                lease=f"{LEASE_NAMESPACE}/{lease_name}",
                cluster=cluster.name,
            ),
            facts=facts,
        )
    elif age is None or age > limit:
        yield Finding(
            subject=component,
            message=D(
                N_(
                    "%(component)s of cluster %(cluster)s has not renewed its lease for %(seconds)s seconds "
                    "(leader %(holder)s, limit %(limit)s seconds)."
                ),
                component=component,
                cluster=cluster.name,
                seconds="?" if age is None else int(age),
                holder=holder,
                limit=int(limit),
            ),
            facts=facts,
        )


@check(
    "cluster.scheduler.health",
    CLUSTER,
    Severity.CRITICAL,
    _("Scheduler is running"),
    _(
        "Without a scheduler no new pod gets a node: rollouts, scaling and pods evicted from a failed node stay "
        "Pending."
    ),
    _(
        "Check the kube-scheduler pods or services on the control-plane hosts (their logs, their certificates, "
        "whether they reach the API server); the lease in kube-system names the last leader."
    ),
)
def scheduler_health(ctx, cluster: Cluster) -> Iterator[Finding]:
    yield from _lease_findings(ctx, cluster, "kube-scheduler", "kube-scheduler")


@check(
    "cluster.controller_manager.health",
    CLUSTER,
    Severity.CRITICAL,
    _("Controller manager is running"),
    _(
        "Without the controller manager nothing converges: deployments do not roll out, failed pods are not "
        "replaced, nodes that die are not noticed, service endpoints go stale."
    ),
    _(
        "Check the kube-controller-manager pods or services on the control-plane hosts (their logs, their "
        "certificates, whether they reach the API server); the lease in kube-system names the last leader."
    ),
)
def controller_manager_health(ctx, cluster: Cluster) -> Iterator[Finding]:
    yield from _lease_findings(ctx, cluster, "kube-controller-manager", "kube-controller-manager")


# Nodes -------------------------------------------------------------------------------------------------------


def condition(row: Row, kind: str) -> dict | None:
    for item in (row.object.get("status") or {}).get("conditions") or []:
        if isinstance(item, dict) and item.get("type") == kind:
            return item
    return None


def _since(item: dict) -> str:
    return str(item.get("lastTransitionTime") or "")[:40]


@object_check(
    "cluster.nodes.not_ready",
    "Node",
    Severity.CRITICAL,
    _("Nodes are ready"),
    _(
        "A node that is not ready runs no new pods, and after a few minutes its pods are evicted and started "
        "elsewhere: capacity is gone and the cluster may not have room for them."
    ),
    _(
        "Look at the node's conditions and events (kubectl describe node), then the kubelet and container runtime "
        "on the host (systemctl status kubelet, journalctl -u kubelet); drain it if it does not come back."
    ),
)
def node_not_ready(ctx, row: Row) -> Iterator[Finding]:
    ready = condition(row, "Ready") or {}
    if ready.get("status") == "True":
        return
    state = str(ready.get("status") or "Unknown")[:20]
    yield Finding(
        subject=row.key,
        message=D(
            N_("Node %(node)s is not ready (%(state)s since %(since)s): %(reason)s %(detail)s"),
            node=row.name,
            state=state,
            since=_since(ready) or "?",
            reason=_cut(ready.get("reason"), 80),
            detail=_cut(ready.get("message")),
        ),
        facts={"ready": state, "reason": _cut(ready.get("reason"), 80), "since": _since(ready)},
    )


def _condition_check(row: Row, kind: str, sentence: str) -> Iterator[Finding]:
    item = condition(row, kind)
    if not item or item.get("status") != "True":
        return
    yield Finding(
        subject=row.key,
        message=D(sentence, node=row.name, since=_since(item) or "?", detail=_cut(item.get("message"))),
        facts={"condition": kind, "reason": _cut(item.get("reason"), 80), "since": _since(item)},
    )


@object_check(
    "cluster.nodes.memory_pressure",
    "Node",
    Severity.WARNING,
    _("Nodes have memory to spare"),
    _(
        "A node under memory pressure takes no new pods and evicts running ones, starting with those that use "
        "more memory than they requested."
    ),
    _(
        "Find the pods using the most memory on the node (kubectl top pods, sorted by node), set memory requests "
        "and limits that match their use, or add memory or nodes."
    ),
)
def node_memory_pressure(ctx, row: Row) -> Iterator[Finding]:
    yield from _condition_check(
        row, "MemoryPressure", N_("Node %(node)s is short of memory since %(since)s: %(detail)s")
    )


@object_check(
    "cluster.nodes.disk_pressure",
    "Node",
    Severity.WARNING,
    _("Nodes have disk space to spare"),
    _(
        "A node under disk pressure takes no new pods, deletes unused images and evicts pods that write to their "
        "local disk; a full disk can stop the kubelet and the container runtime."
    ),
    _(
        "Free the node's image and log file systems (crictl rmi --prune, log rotation), move pods that fill "
        "emptyDir volumes, or grow the disk."
    ),
)
def node_disk_pressure(ctx, row: Row) -> Iterator[Finding]:
    yield from _condition_check(
        row, "DiskPressure", N_("Node %(node)s is short of disk space since %(since)s: %(detail)s")
    )


@object_check(
    "cluster.nodes.pid_pressure",
    "Node",
    Severity.WARNING,
    _("Nodes have process ids to spare"),
    _(
        "A node short of process ids cannot start processes: containers fail to start, and pods are evicted to "
        "free ids."
    ),
    _(
        "Find the pod that forks without end (ps -eLf on the node, sorted by container), fix it or set a pod PID "
        "limit (the kubelet's podPidsLimit); raise kernel.pid_max if the node is simply busy."
    ),
)
def node_pid_pressure(ctx, row: Row) -> Iterator[Finding]:
    yield from _condition_check(
        row, "PIDPressure", N_("Node %(node)s is short of process ids since %(since)s: %(detail)s")
    )


@object_check(
    "cluster.nodes.network_unavailable",
    "Node",
    Severity.CRITICAL,
    _("Nodes have pod networking"),
    _("Pods on a node whose network is not set up cannot reach or be reached by anything: it takes no new pods."),
    _(
        "Check the network plugin's pod on the node (calico-node, cilium, flannel: its logs and readiness) and the "
        "routes of the host; restart the plugin's pod once the cause is fixed."
    ),
)
def node_network_unavailable(ctx, row: Row) -> Iterator[Finding]:
    yield from _condition_check(
        row, "NetworkUnavailable", N_("The network of node %(node)s is not set up since %(since)s: %(detail)s")
    )


@object_check(
    "cluster.nodes.cordoned",
    "Node",
    Severity.INFO,
    _("No node is left cordoned"),
    _(
        "A cordoned node takes no new pods: left so after maintenance, it is capacity paid for and not used, and "
        "the other nodes carry its share."
    ),
    _("Uncordon the node when its maintenance is over (Kubemate's node page, or kubectl uncordon), or remove it."),
)
def node_cordoned(ctx, row: Row) -> Iterator[Finding]:
    if (row.object.get("spec") or {}).get("unschedulable"):
        yield Finding(
            subject=row.key,
            message=D(N_("Node %(node)s is cordoned: it takes no new pods."), node=row.name),
            facts={"unschedulable": True},
        )


# Events ------------------------------------------------------------------------------------------------------


@dataclass
class EventGroup:
    """The warning events of one reason in one namespace: how many, and the latest as the example."""

    count: int = 0
    objects: int = 0
    last: datetime | None = None
    kind: str = ""
    name: str = ""
    message: str = ""


def _event_time(row: Row) -> datetime | None:
    try:
        return parse_time(row.summary.get("last")) or row.created
    except (TypeError, ValueError):
        return row.created


@check(
    "cluster.events.warnings",
    CLUSTER,
    Severity.WARNING,
    _("Few warning events"),
    _(
        "Warning events repeated many times are problems Kubernetes keeps retrying (volumes that do not mount, "
        "probes that fail, images that do not pull): each is a service degraded or about to be."
    ),
    _(
        "Open the namespace's events (kubectl get events -n NAMESPACE --field-selector type=Warning), start with "
        "the object named in the finding and fix what the message says."
    ),
)
def warning_events(ctx, cluster: Cluster) -> Iterator[Finding]:
    limit = ctx.threshold("events.warning_count")
    since = ctx.now - timedelta(hours=ctx.threshold("events.window_hours", 24))
    groups: dict[tuple[str, str], EventGroup] = {}
    for row in ctx.rows(cluster, "Event"):
        if row.status != "Warning":
            continue
        last = _event_time(row)
        if last is not None and last < since:
            continue
        reason = str(row.summary.get("reason") or "")[:80] or "-"
        group = groups.setdefault((row.namespace, reason), EventGroup())
        try:
            group.count += max(1, int(row.summary.get("count") or 1))
        except (TypeError, ValueError):
            group.count += 1
        group.objects += 1
        if group.last is None or (last is not None and last > group.last):
            group.last = last
            group.kind = str(row.summary.get("object_kind") or "")[:40]
            group.name = str(row.summary.get("object_name") or "")[:253]
            group.message = _cut(row.summary.get("message"))
    for (namespace, reason), group in sorted(groups.items()):
        if group.count <= limit:
            continue
        yield Finding(
            subject=f"Warning events {namespace or '-'}/{reason}",
            namespace=namespace,
            message=D(
                N_(
                    "%(count)s warning events %(reason)s in namespace %(namespace)s; the latest, on %(kind)s "
                    "%(name)s: %(detail)s"
                ),
                count=group.count,
                reason=reason,
                namespace=namespace or "-",
                kind=group.kind,
                name=group.name,
                detail=group.message,
            ),
            facts={
                "reason": reason,
                "count": group.count,
                "events": group.objects,
                "object": f"{group.kind} {group.name}",
                "last": group.last.isoformat() if group.last else "",
            },
        )
