"""What the GPU pages show, as each person may see it: a cluster's GPU nodes, allocation by node, namespace and
project, the pods holding GPUs, quotas, DCGM readings, and the per-cluster summary of the AI home.

Who sees what (``allocation.pod_namespaces``, ``sees_*``): a cluster's GPU page takes ``ai.view`` somewhere in it;
pods and their allocations show for the namespaces where the person holds ``ai.view`` and may see pods; node
capacity for those who see nodes; node allocation, which sums every project's pods, and every GPU's readings only for
those who see the whole cluster. Project people get their own pods, namespaces, projects, quotas and the readings of
the GPUs their pods hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from apps.accounts import access as accounts_access
from apps.accounts.capabilities import AI_VIEW
from apps.ai import access
from apps.ai.gpu import allocation, k8s, metrics
from apps.ai.gpu.allocation import Amounts, GpuNode, GpuPod, Place
from apps.clusters.models import Cluster


@dataclass
class ClusterGpus:
    """One cluster's GPU page."""

    cluster: Cluster
    whole: bool  # every namespace and the nodes: node allocation and free GPUs are shown
    nodes_shown: bool
    nodes: list[GpuNode] = field(default_factory=list)
    totals: Amounts = field(default_factory=Amounts)
    namespaces: list[Place] = field(default_factory=list)
    projects: list[Place] = field(default_factory=list)
    pods: list[GpuPod] = field(default_factory=list)
    pods_total: int = 0

    @property
    def pods_cut(self) -> int:
        return max(self.pods_total - len(self.pods), 0)


@dataclass
class Summary:
    """A cluster's line on the AI home: GPUs (None when the person does not see the nodes), allocated GPUs and MIG
    slices of what they see, pods holding them, pods waiting, idle allocations (None: not known)."""

    cluster: Cluster
    whole: bool
    gpus: int | None
    gpus_allocated: int
    slices: int | None
    slices_allocated: int
    pods: int
    waiting: int
    idle: int | None


def clusters(user) -> QuerySet[Cluster]:
    """The clusters whose GPU page ``user`` may open (``ai.view`` somewhere in them)."""
    held = accounts_access.scope(user, AI_VIEW)
    found = accounts_access.clusters(user).order_by("name")
    if held.everywhere:
        return found
    return found.filter(pk__in=set(held.clusters) | {pk for pk, names in held.namespaces.items() if names})


def may_view(user, cluster) -> bool:
    return allocation.sees_cluster(user, cluster)


def cluster_gpus(user, cluster) -> ClusterGpus:
    """Everything of the cluster's GPU page that comes from the inventory: four queries whatever its size."""
    namespaces = allocation.pod_namespaces(user, cluster)
    whole = allocation.sees_whole(user, cluster)
    page = ClusterGpus(cluster=cluster, whole=whole, nodes_shown=allocation.sees_nodes(user, cluster))
    sums = allocation.sums(cluster, namespaces)
    if page.nodes_shown:
        page.nodes = allocation.gpu_nodes(cluster)
        for node in page.nodes:
            page.totals.add(Amounts(capacity=node.amounts.capacity, allocatable=node.amounts.allocatable))
            if whole:
                held = sums.by_node.get(node.name)
                if held is not None:
                    node.amounts.allocated = dict(held.allocated)
                node.pods = sums.pods_by_node.get(node.name, 0)
    for name in sorted(sums.by_namespace):
        held = sums.by_namespace[name]
        page.totals.add(Amounts(allocated=held.allocated, waiting=held.waiting))
        page.namespaces.append(Place(name=name, amounts=held, pods=sums.pods_by_namespace.get(name, 0)))
    page.projects = _projects(user, cluster, namespaces, sums)
    page.pods, page.pods_total = allocation.gpu_pods(cluster, namespaces)
    return page


def _projects(user, cluster, namespaces, sums: allocation.Sums) -> list[Place]:
    """Each project of the cluster the person sees with ``ai.view``, with what its visible namespaces' pods hold."""
    rows = []
    for project in access.projects(user, AI_VIEW).filter(cluster=cluster):
        mine = [n for n in project.namespaces if namespaces is None or n in namespaces]
        amounts, pods = Amounts(), 0
        for name in mine:
            held = sums.by_namespace.get(name)
            if held is not None:
                amounts.add(Amounts(allocated=held.allocated, waiting=held.waiting))
                pods += sums.pods_by_namespace.get(name, 0)
        rows.append(Place(name=project.name, amounts=amounts, pods=pods, namespaces=mine, project_id=project.pk))
    return rows


def cluster_readings(user, cluster) -> tuple[metrics.Readings, list[dict]]:
    """The DCGM readings the person may see, and each visible GPU pod with its average use and idle flag."""
    namespaces = allocation.pod_namespaces(user, cluster)
    pods, _total = allocation.gpu_pods(cluster, namespaces, limit=metrics.MAX_GPUS)
    holders = {(p.namespace, p.name) for p in pods if p.node}
    whole = allocation.sees_whole(user, cluster)
    readings = metrics.read(cluster, None if whole else namespaces, holders)
    uses = [
        {"pod": p, "use": readings.pods.get((p.namespace, p.name))}
        for p in pods
        if p.node and (p.namespace, p.name) in holders
    ]
    uses.sort(key=lambda row: (row["use"] is None, row["use"].average if row["use"] else 0, row["pod"].namespace))
    return readings, uses


def cluster_quotas(user, cluster) -> k8s.Quotas:
    """The GPU quotas of the namespaces the person sees GPU pods in, read as them."""
    return k8s.gpu_quotas(cluster, user, allocation.pod_namespaces(user, cluster))


def summary(user) -> list[Summary]:
    """Per cluster the person may see: GPUs, allocated, pods holding and waiting, idle allocations (from Prometheus,
    cached a minute; None when it cannot say). For the AI home."""
    found = []
    for cluster in clusters(user):
        namespaces = allocation.pod_namespaces(user, cluster)
        sums = allocation.sums(cluster, namespaces)
        held = Amounts()
        for amounts in sums.by_namespace.values():
            held.add(Amounts(allocated=amounts.allocated, waiting=amounts.waiting))
        gpus = slices = None
        if allocation.sees_nodes(user, cluster):
            capacity = Amounts()
            for node in allocation.gpu_nodes(cluster):
                capacity.add(node.amounts)
            gpus, slices = capacity.gpus or 0, capacity.slices
        idle = None
        if cluster.prometheus_url:
            pods, _total = allocation.gpu_pods(cluster, namespaces, limit=metrics.MAX_GPUS)
            holders = {(p.namespace, p.name) for p in pods if p.node}
            idle = metrics.idle_pods(cluster, namespaces, holders)
        found.append(
            Summary(
                cluster=cluster,
                whole=allocation.sees_whole(user, cluster),
                gpus=gpus,
                gpus_allocated=held.gpus_allocated,
                slices=slices,
                slices_allocated=held.slices_allocated,
                pods=sum(sums.pods_by_namespace.values()),
                waiting=sum(held.waiting.values()),
                idle=idle,
            )
        )
    return found
