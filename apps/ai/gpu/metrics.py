"""GPU readings from NVIDIA's DCGM exporter through the cluster's Prometheus (the one door,
``apps/observability/prometheus.py``): utilisation, frame-buffer memory, temperature and power per GPU and per node,
a small utilisation history per GPU, and each pod's average utilisation over the last 30 minutes, which flags
allocations left idle.

The exporter's series carry ``gpu``, ``UUID``, ``modelName`` and ``Hostname``; with pod attribution also the pod
holding the GPU, as ``namespace``/``pod``/``container`` or, when Prometheus kept the scrape target's own labels,
``exported_namespace``/``exported_pod``/``exported_container``: both are read, the exported ones first.

People who see only some namespaces get the GPUs attributed to their namespaces' pods and nothing else: the
queries name their namespaces, and what comes back is filtered again by the pod's namespace.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone

from apps.clusters.values import is_dns_label
from apps.core.deferred import N_, sentence_of
from apps.core.deferred import text as D
from apps.observability import endpoints, prometheus

UTIL = "DCGM_FI_DEV_GPU_UTIL"
FB_USED = "DCGM_FI_DEV_FB_USED"
FB_FREE = "DCGM_FI_DEV_FB_FREE"
TEMP = "DCGM_FI_DEV_GPU_TEMP"
POWER = "DCGM_FI_DEV_POWER_USAGE"
NAMES = (UTIL, FB_USED, FB_FREE, TEMP, POWER)
IDLE_PERCENT = 5  # a pod whose GPUs averaged less over the window holds them for nothing
IDLE_WINDOW_MINUTES = 30
HISTORY = timedelta(hours=1)
HISTORY_POINTS = 60
MAX_GPUS = 1000  # GPUs a page lists; more are counted
NODE_LABELS = ("Hostname", "node", "kubernetes_node")
SPARK_WIDTH, SPARK_HEIGHT = 96, 22
IDLE_CACHE_SECONDS = 60


def gib(mib: float | None) -> float | None:
    """DCGM's MiB as GiB, one decimal."""
    return None if mib is None else round(mib / 1024, 1)


class _FrameBuffer:
    """Memory figures of a GPU or a node, from ``fb_used`` and ``fb_total`` (MiB)."""

    fb_used: float | None
    fb_total: float | None

    @property
    def fb_percent(self) -> int | None:
        total = self.fb_total
        return round(100 * self.fb_used / total) if total else None

    @property
    def fb_used_gib(self) -> float | None:
        return gib(self.fb_used)

    @property
    def fb_total_gib(self) -> float | None:
        return gib(self.fb_total)


@dataclass
class Gpu(_FrameBuffer):
    """One GPU as the exporter reports it now; memory in MiB, temperature in °C, power in W."""

    key: str
    node: str
    index: str
    uuid: str
    model: str
    namespace: str = ""
    pod: str = ""
    container: str = ""
    util: float | None = None
    fb_used: float | None = None
    fb_free: float | None = None
    temp: float | None = None
    power: float | None = None
    spark: dict | None = None

    @property
    def fb_total(self) -> float | None:
        if self.fb_used is None or self.fb_free is None:
            return None
        return self.fb_used + self.fb_free


@dataclass
class NodeReading(_FrameBuffer):
    node: str
    gpus: int
    util: float | None
    fb_used: float
    fb_total: float
    temp: float | None
    power: float | None


@dataclass
class PodUse:
    namespace: str
    pod: str
    average: float  # percent, over IDLE_WINDOW_MINUTES

    @property
    def idle(self) -> bool:
        return self.average < IDLE_PERCENT


@dataclass
class Readings:
    """What Prometheus said, or the sentence saying why there is nothing (``state``: ok, none, empty, down)."""

    state: str
    sentence: str = ""
    gpus: list[Gpu] = field(default_factory=list)
    nodes: list[NodeReading] = field(default_factory=list)
    pods: dict[tuple[str, str], PodUse] = field(default_factory=dict)
    total: int = 0
    address: str = ""

    @property
    def cut(self) -> bool:
        return self.total > len(self.gpus)


# Labels -----------------------------------------------------------------------------------------------------------


def owner_of(labels: dict) -> tuple[str, str, str]:
    """(namespace, pod, container) of the pod a series is attributed to; ("", "", "") when none."""
    if labels.get("exported_pod"):
        return labels.get("exported_namespace", ""), labels["exported_pod"], labels.get("exported_container", "")
    if labels.get("pod") and labels.get("namespace"):
        return labels["namespace"], labels["pod"], labels.get("container", "")
    return "", "", ""


def _node_of(labels: dict) -> str:
    return next((str(labels[name]) for name in NODE_LABELS if labels.get(name)), "")


def _key(labels: dict) -> str:
    return str(labels.get("UUID") or f"{_node_of(labels)}/{labels.get('gpu', '')}")


def _selector(metric: str, namespaces: frozenset[str] | None) -> str:
    """``metric`` for everyone (None), or only the series attributed to ``namespaces`` (either label)."""
    if namespaces is None:
        return metric
    names = sorted(n for n in namespaces if is_dns_label(n))  # DNS labels hold nothing a regular expression reads
    pattern = "|".join(names)
    return f'({metric}{{namespace=~"{pattern}"}} or {metric}{{exported_namespace=~"{pattern}"}})'


def _averaged(metric: str, namespaces: frozenset[str] | None, minutes: int) -> str:
    """``avg_over_time`` of ``_selector``'s series: a range applies to a plain selector only, so each side of its
    ``or`` is averaged on its own."""
    if namespaces is None:
        return f"avg_over_time({metric}[{minutes}m])"
    names = sorted(n for n in namespaces if is_dns_label(n))
    pattern = "|".join(names)
    return " or ".join(
        f'avg_over_time({metric}{{{label}=~"{pattern}"}}[{minutes}m])' for label in ("namespace", "exported_namespace")
    )


# Reading ---------------------------------------------------------------------------------------------------------


def read(
    cluster, namespaces: frozenset[str] | None, holders: set[tuple[str, str]], *, history: bool = True
) -> Readings:
    """The GPUs of ``cluster``, their nodes and the average use of the pods in ``holders`` (namespace, name: the
    GPU pods the person sees, from the inventory). ``namespaces`` None: every GPU; else only the GPUs attributed to
    one of ``holders``, asked for by ``namespaces``.

    Never raises for Prometheus: a missing address, an unreachable server and an exporter that is not there are
    each a ``Readings`` with a (deferred) sentence."""
    source = endpoints.prometheus(cluster)
    address = source.shown
    if not source.url:
        return Readings(state="none", sentence=NO_PROMETHEUS)
    if namespaces is not None and not holders:
        return Readings(state="empty", sentence=_empty_sentence(address, namespaces), address=address)
    try:
        now = prometheus.query(source, _now_query(namespaces))
        uses = prometheus.query(source, _idle_query(namespaces))
    except prometheus.PrometheusError as exc:
        return Readings(state="down", sentence=sentence_of(exc), address=address)
    gpus = _gpus(now, holders, whole=namespaces is None)
    pods = _pod_uses(uses, holders)
    if not gpus:
        return Readings(state="empty", sentence=_empty_sentence(address, namespaces), address=address, pods=pods)
    total = len(gpus)
    gpus = gpus[:MAX_GPUS]
    if history:
        _add_history(source, gpus, namespaces)
    return Readings(
        state="ok",
        gpus=gpus,
        nodes=_nodes(gpus) if namespaces is None else [],
        pods=pods,
        total=total,
        address=address,
    )


NO_PROMETHEUS = D(
    N_(
        "No Prometheus is set for this cluster, so GPU utilisation, memory, temperature and power are not shown. A "
        "platform administrator sets its address in the cluster's settings."
    )
)


def _empty_sentence(address: str, namespaces) -> str:
    if namespaces is None:
        return D(
            N_(
                "Prometheus at %(url)s has no GPU metrics from NVIDIA's DCGM exporter (%(metric)s and the others): "
                "install the exporter on the GPU nodes (the GPU operator does) and let Prometheus scrape it."
            ),
            url=address,
            metric=UTIL,
        )
    return D(
        N_(
            "Prometheus at %(url)s has no GPU metrics from NVIDIA's DCGM exporter for the pods of your namespaces "
            "(%(metric)s with their namespace and pod)."
        ),
        url=address,
        metric=UTIL,
    )


def _now_query(namespaces) -> str:
    pattern = "|".join(NAMES)
    if namespaces is None:
        return f'{{__name__=~"{pattern}"}}'
    names = sorted(n for n in namespaces if is_dns_label(n))
    where = "|".join(names)
    return f'{{__name__=~"{pattern}",namespace=~"{where}"}} or {{__name__=~"{pattern}",exported_namespace=~"{where}"}}'


def _idle_query(namespaces) -> str:
    """Each attributed pod's GPUs' utilisation, averaged over the window (a pod's several GPUs averaged too)."""
    return (
        "avg by (namespace, pod, exported_namespace, exported_pod) "
        f"({_averaged(UTIL, namespaces, IDLE_WINDOW_MINUTES)})"
    )


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _gpus(samples: list[prometheus.Sample], holders: set[tuple[str, str]], *, whole: bool) -> list[Gpu]:
    """One Gpu per UUID (or node and index) from the series of now. A GPU is attributed to a pod only when that
    pod holds GPUs in the inventory: without pod attribution, Prometheus's own target labels name the exporter's
    pod. Without ``whole`` only attributed GPUs are kept."""
    found: dict[str, Gpu] = {}
    attribute = {UTIL: "util", FB_USED: "fb_used", FB_FREE: "fb_free", TEMP: "temp", POWER: "power"}
    for sample in samples:
        labels = sample.labels
        name = labels.get("__name__", "")
        namespace, pod, container = owner_of(labels)
        held = (namespace, pod) in holders
        if name not in attribute or not (whole or held):
            continue
        key = _key(labels)
        gpu = found.get(key)
        if gpu is None:
            gpu = found[key] = Gpu(
                key=key,
                node=_node_of(labels),
                index=str(labels.get("gpu", "")),
                uuid=str(labels.get("UUID", "")),
                model=str(labels.get("modelName", "")),
            )
        if held and not gpu.pod:
            gpu.namespace, gpu.pod, gpu.container = namespace, pod, container
        setattr(gpu, attribute[name], _number(sample.value))
    return sorted(found.values(), key=lambda g: (g.node, _index_order(g.index), g.uuid))


def _index_order(index: str) -> tuple:
    return (0, int(index), "") if index.isdigit() else (1, 0, index)


def _nodes(gpus: list[Gpu]) -> list[NodeReading]:
    by_node: dict[str, list[Gpu]] = {}
    for gpu in gpus:
        by_node.setdefault(gpu.node, []).append(gpu)
    nodes = []
    for node, members in sorted(by_node.items()):
        utils = [g.util for g in members if g.util is not None]
        temps = [g.temp for g in members if g.temp is not None]
        powers = [g.power for g in members if g.power is not None]
        nodes.append(
            NodeReading(
                node=node,
                gpus=len(members),
                util=sum(utils) / len(utils) if utils else None,
                fb_used=sum(g.fb_used or 0 for g in members),
                fb_total=sum(g.fb_total or 0 for g in members),
                temp=max(temps) if temps else None,
                power=sum(powers) if powers else None,
            )
        )
    return nodes


def _pod_uses(samples: list[prometheus.Sample], holders: set[tuple[str, str]]) -> dict[tuple[str, str], PodUse]:
    uses = {}
    for sample in samples:
        namespace, pod, _container = owner_of(sample.labels)
        if (namespace, pod) in holders and math.isfinite(sample.value):
            uses[(namespace, pod)] = PodUse(namespace=namespace, pod=pod, average=sample.value)
    return uses


def _add_history(source, gpus: list[Gpu], namespaces) -> None:
    """A utilisation line per GPU over the last hour, from one range query; none when it fails (the figures of now
    are still shown)."""
    end = timezone.now()
    try:
        answer = prometheus.query_range(
            source,
            f"max by (UUID, gpu, {', '.join(NODE_LABELS)}) ({_selector(UTIL, namespaces)})",
            end - HISTORY,
            end,
            max_series=len(gpus),
            max_points=HISTORY_POINTS,
        )
    except prometheus.PrometheusError:
        return
    by_key = {gpu.key: gpu for gpu in gpus}
    for series in answer.series:
        gpu = by_key.get(_key(series.labels))
        if gpu is not None:
            gpu.spark = sparkline([v for _t, v in series.points if math.isfinite(v)])


def sparkline(values: list[float], *, top: float = 100) -> dict | None:
    """The points of a small line of percentages (oldest first), 0 at the bottom and ``top`` at the top."""
    if len(values) < 2:
        return None
    step = (SPARK_WIDTH - 4) / (len(values) - 1)
    height = SPARK_HEIGHT - 6

    def y(value: float) -> float:
        return SPARK_HEIGHT - 3 - min(max(value, 0), top) * height / top

    points = " ".join(f"{2 + i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))
    return {
        "points": points,
        "width": SPARK_WIDTH,
        "height": SPARK_HEIGHT,
        "low": round(min(values)),
        "high": round(max(values)),
        "count": len(values),
    }


def idle_pods(cluster, namespaces: frozenset[str] | None, holders: set[tuple[str, str]]) -> int | None:
    """How many of ``holders`` averaged under IDLE_PERCENT over the window (None: no Prometheus, or no answer);
    cached briefly, for the AI home's summary of every cluster."""
    if not cluster.prometheus_url:
        return None
    if not holders:
        return 0
    scope = hashlib.sha256(repr((namespaces and sorted(namespaces), sorted(holders))).encode()).hexdigest()[:16]
    key = f"ai:gpu:idle:{cluster.pk}:{scope}"
    cached = cache.get(key)
    if cached is not None:
        return cached if cached >= 0 else None
    try:
        samples = prometheus.query(endpoints.prometheus(cluster), _idle_query(namespaces))
    except prometheus.PrometheusError:
        cache.set(key, -1, IDLE_CACHE_SECONDS)
        return None
    count = sum(1 for use in _pod_uses(samples, holders).values() if use.idle)
    cache.set(key, count, IDLE_CACHE_SECONDS)
    return count
