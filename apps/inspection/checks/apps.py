"""Apps checks: what a cluster's Prometheus says about the apps running in it, judged per workload.

Each check asks the cluster's Prometheus one instant query (``observability/prometheus.py``), whatever the number
of pods: PromQL aggregates to one series per pod (or container) and keeps at most ``MAX_SERIES`` of them
(``topk``), so an answer stays small on a 15,000-pod cluster. Each query also answers whether the metrics the check
reads exist at all (``_present``): a Prometheus that holds none of them (no kube-state-metrics, no cAdvisor, no JVM
exporting its heap) leaves the check "not checked", not "passed".

Findings name the workload a person fixes (``Deployment payments/pay-api``), carry its namespace, and list the
pods concerned. Pods are mapped to workloads through the inventory (``owners``): the pod's controller, and a
ReplicaSet's or Job's own controller; a pod that is gone since (an OOM-killed pod replaced by a rollout) is
mapped by its name to the ReplicaSet, Job, DaemonSet or StatefulSet that made it. The indexes are built per
namespace that has something to report, once per run, and dropped when the run moves to the next cluster.

Metrics read: kube-state-metrics (``kube_pod_container_status_restarts_total``,
``kube_pod_container_status_last_terminated_reason``, ``kube_pod_container_resource_limits``), the kubelets'
cAdvisor (``container_oom_events_total``, ``container_memory_working_set_bytes``,
``container_spec_memory_limit_bytes``, ``container_cpu_cfs_periods_total``,
``container_cpu_cfs_throttled_periods_total``), JVM exporters (Micrometer's ``jvm_memory_used_bytes`` and
``jvm_memory_max_bytes``, or the older client_java ``jvm_memory_bytes_used`` / ``jvm_memory_bytes_max``), and
for logs the log collectors' and the log store's counters (see ``log_growth``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from apps.clusters.inventory.summaries import controller_of
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.inspection.checks.base import CannotCheck, Domain, Finding, Severity, check
from apps.observability import prometheus

APPS = Domain.APPS

MAX_SERIES = 1000  # series a pod-level answer may hold (topk): a bound on the answer, not on what is judged
LISTED = 5  # pods named in a finding's sentence
FACT_PODS = 20  # pods named in a finding's facts
SEEN = "kubemate_seen"  # label of the series saying the metrics the check reads exist
VALUE = "kubemate_value"  # label naming which of several values of one pod a series carries
CONTAINERS = 'container!="",container!="POD"'  # cAdvisor's containers, not the pod's cgroup nor its pause container
MIB = 2**20


# Asking Prometheus ------------------------------------------------------------------------------------------------


def _present(metrics: Iterable[str]) -> str:
    names = "|".join(metrics)
    return f'label_replace(count({{__name__=~"{names}"}}), "{SEEN}", "1", "", "")'


def ask(ctx, cluster, promql: str, metrics: Iterable[str], missing: str) -> list[prometheus.Sample]:
    """The samples ``promql`` answers on ``cluster``'s Prometheus. CannotCheck when Prometheus is not configured or
    does not answer, and with ``missing`` (a msgid taking %(cluster)s) when it holds none of ``metrics``."""
    endpoint = ctx.prometheus(cluster)
    try:
        samples = prometheus.query(endpoint, f"({promql}) or {_present(metrics)}")
    except prometheus.PrometheusError as exc:
        raise CannotCheck(exc.stored) from None
    if not any(SEEN in s.labels for s in samples):
        raise CannotCheck(D(missing, cluster=cluster.name))
    return [s for s in samples if SEEN not in s.labels and math.isfinite(s.value)]


def pick(selection: str, on: str, **values: str) -> str:
    """PromQL answering, for each series ``selection`` keeps, one series per named value (label ``VALUE``)."""
    return " or ".join(
        f'label_replace(({expr}) and on ({on}) ({selection}), "{VALUE}", "{name}", "", "")'
        for name, expr in values.items()
    )


def num(value: float) -> str:
    """A number for a PromQL text or a sentence: 5, 0.5, 1048576 (never 1.04858e+06)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"


def mib(value: float) -> str:
    return f"{value / MIB:.0f}"


# Pods to workloads --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Workload:
    kind: str
    namespace: str
    name: str

    @property
    def subject(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass
class Owners:
    """One namespace's pods and controllers, as much as mapping a pod to its workload needs."""

    pods: dict[str, tuple[str, str]] = field(default_factory=dict)  # pod -> its controller (kind, name)
    replicasets: dict[str, str] = field(default_factory=dict)  # ReplicaSet -> its Deployment ("" for none)
    jobs: dict[str, str] = field(default_factory=dict)  # Job -> its CronJob ("" for none)
    names: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # kind -> names

    def workload(self, namespace: str, pod: str) -> Workload:
        kind, name = self.pods.get(pod) or self._by_name(pod)
        if kind == "ReplicaSet" and self.replicasets.get(name):
            kind, name = "Deployment", self.replicasets[name]
        elif kind == "Job" and self.jobs.get(name):
            kind, name = "CronJob", self.jobs[name]
        return Workload(kind, namespace, name)

    def _by_name(self, pod: str) -> tuple[str, str]:
        # A pod no longer in the inventory: controllers name their pods <controller>-<suffix>
        # (<replicaset>-x7k2p, <daemonset>-x7k2p, <job>-x7k2p, <statefulset>-0), and a Deployment its ReplicaSets
        # <deployment>-<hash>, a CronJob its Jobs <cronjob>-<minutes>.
        parent, _dash, suffix = pod.rpartition("-")
        grandparent = parent.rpartition("-")[0]
        if parent in self.replicasets:
            return "ReplicaSet", parent
        if parent in self.jobs:
            return "Job", parent
        if parent in self.names["DaemonSet"]:
            return "DaemonSet", parent
        if parent in self.names["StatefulSet"] and suffix.isdigit():
            return "StatefulSet", parent
        if grandparent in self.names["Deployment"]:
            return "Deployment", grandparent
        if grandparent in self.names["CronJob"]:
            return "CronJob", grandparent
        return "Pod", pod


def _owners(ctx, cluster, namespace: str) -> Owners:
    owners = Owners()
    for row in ctx.rows(cluster, "Pod", namespace):
        controller = controller_of(row.object) or {}
        if controller.get("kind") and controller.get("name"):
            owners.pods[row.name] = (str(controller["kind"]), str(controller["name"]))
        else:
            owners.pods[row.name] = ("Pod", row.name)
    for kind, into, parent in (("ReplicaSet", owners.replicasets, "Deployment"), ("Job", owners.jobs, "CronJob")):
        for row in ctx.rows(cluster, kind, namespace):
            controller = controller_of(row.object) or {}
            into[row.name] = str(controller.get("name") or "") if controller.get("kind") == parent else ""
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "CronJob"):
        owners.names[kind] = {row.name for row in ctx.rows(cluster, kind, namespace)}
    return owners


def owners(ctx, cluster, namespace: str) -> Owners:
    """``namespace``'s index, built once per run; the previous cluster's indexes are dropped first (the runner
    checks clusters one after another)."""
    current = ctx.once(("apps", "current cluster"), dict)
    if current.get("pk") != cluster.pk:
        ctx.forget("apps.owners")
        current["pk"] = cluster.pk
    return ctx.once(("apps.owners", cluster.pk, namespace), lambda: _owners(ctx, cluster, namespace))


def by_workload(ctx, cluster, samples: Iterable[prometheus.Sample]) -> dict[Workload, list[prometheus.Sample]]:
    """``samples`` (labelled with namespace and pod) grouped by the workload of their pod."""
    grouped: dict[Workload, list[prometheus.Sample]] = defaultdict(list)
    for sample in samples:
        namespace, pod = sample.labels.get("namespace", ""), sample.labels.get("pod", "")
        # Kubernetes names are at most 63 (namespace) and 253 (pod) characters: longer labels name no pod.
        if 0 < len(namespace) <= 63 and 0 < len(pod) <= 253:
            grouped[owners(ctx, cluster, namespace).workload(namespace, pod)].append(sample)
    return dict(sorted(grouped.items()))


def by_pod_values(
    samples: Iterable[prometheus.Sample], on: tuple[str, ...], name: str = VALUE
) -> dict[tuple, dict[str, float]]:
    """The answer of a ``pick`` query: for each (``on`` labels), its values named by label ``name``."""
    values: dict[tuple, dict[str, float]] = defaultdict(dict)
    for sample in samples:
        values[tuple(sample.labels.get(label, "") for label in on)][sample.labels.get(name, "")] = sample.value
    return values


def pod_list(pods: Iterable[str]) -> str:
    names = sorted(set(pods))
    shown = ", ".join(names[:LISTED])
    return f"{shown}, … (+{len(names) - LISTED})" if len(names) > LISTED else shown


def _finding(workload: Workload, sentence: str, pods: Iterable[str], facts: dict, **values) -> Finding:
    pods = sorted(set(pods))
    return Finding(
        subject=workload.subject,
        message=D(sentence, workload=workload.subject, pods=pod_list(pods), **values),
        namespace=workload.namespace,
        facts={"kind": workload.kind, "name": workload.name, "pods": pods[:FACT_PODS], **facts},
    )


# OOM kills --------------------------------------------------------------------------------------------------------

OOM_KILLS = (
    f"topk({MAX_SERIES}, sum by (namespace, pod) ("
    f'(sum by (namespace, pod, container) (increase(container_oom_events_total{{container!=""}}[24h])) > 0)'
    " or (max by (namespace, pod, container) (max_over_time("
    'kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}[24h])) > 0'
    " and on (namespace, pod, container)"
    " (sum by (namespace, pod, container) (increase(kube_pod_container_status_restarts_total[24h])) > 0))))"
)


@check(
    "apps.oom_kills",
    APPS,
    Severity.CRITICAL,
    _("No container was killed for lack of memory in the last 24 hours"),
    _(
        "The kernel kills a container that goes over its memory limit: requests in flight fail, and an app that "
        "is killed again and again ends in CrashLoopBackOff."
    ),
    _(
        "Read the container's memory graph: raise its memory limit to what it really uses at peak, or cap the app "
        "itself (JVM -Xmx, worker counts, caches) below the limit; a steady rise means a leak to fix in the app."
    ),
)
def oom_kills(ctx, cluster):
    """OOM kills of the last 24 h, counted by cAdvisor's ``container_oom_events_total`` where the kubelet exports
    it; else a container whose last termination (kube-state-metrics) was OOMKilled and that restarted in the 24 h
    counts as one kill."""
    missing = N_(
        "Prometheus of cluster %(cluster)s holds neither container_oom_events_total (the kubelets' cAdvisor) nor "
        "kube_pod_container_status_restarts_total (kube-state-metrics): have it scrape one of them."
    )
    samples = ask(
        ctx, cluster, OOM_KILLS, ("container_oom_events_total", "kube_pod_container_status_restarts_total"), missing
    )
    sentence = N_(
        "%(workload)s: containers were killed for lack of memory in the last 24 hours: %(count)s. Pods: %(pods)s."
    )
    for workload, items in by_workload(ctx, cluster, samples).items():
        kills = {s.labels["pod"]: max(1, round(s.value)) for s in items}
        count = sum(kills.values())
        yield _finding(
            workload, sentence, kills, {"kills": count, "per_pod": dict(sorted(kills.items())[:FACT_PODS])}, count=count
        )


# Restarts -----------------------------------------------------------------------------------------------------------

RESTARTS = f"topk({MAX_SERIES}, sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total[24h])) > 0)"


@check(
    "apps.restarts",
    APPS,
    Severity.WARNING,
    _("Workloads' containers do not keep restarting"),
    _(
        "A container that restarts drops its requests and its warm caches; many restarts in a day mean a crash, "
        "a failing liveness probe or memory kills that no one has looked at yet."
    ),
    _(
        "Read the previous container's log (kubectl logs --previous) and the pod's events: fix the crash, or "
        "give the liveness probe the time the app needs to answer."
    ),
)
def restarts(ctx, cluster):
    """Container restarts over the last 24 h (kube-state-metrics), summed over each workload's pods, those gone
    since included; above ``app.restarts_24h`` is a finding."""
    missing = N_(
        "Prometheus of cluster %(cluster)s holds no kube_pod_container_status_restarts_total series: have it "
        "scrape kube-state-metrics."
    )
    samples = ask(ctx, cluster, RESTARTS, ("kube_pod_container_status_restarts_total",), missing)
    limit = ctx.threshold("app.restarts_24h")
    sentence = N_(
        "%(workload)s: container restarts in the last 24 hours: %(count)s (limit %(limit)s); most in pod %(pod)s: "
        "%(most)s. Pods: %(pods)s."
    )
    for workload, items in by_workload(ctx, cluster, samples).items():
        count = round(sum(s.value for s in items))
        if count <= limit:
            continue
        worst = max(items, key=lambda s: (s.value, s.labels["pod"]))
        per_pod = {s.labels["pod"]: round(s.value) for s in items}
        yield _finding(
            workload,
            sentence,
            per_pod,
            {"restarts": count, "limit": limit, "per_pod": dict(sorted(per_pod.items())[:FACT_PODS])},
            count=count,
            limit=num(limit),
            pod=worst.labels["pod"],
            most=round(worst.value),
        )


# Memory growth ------------------------------------------------------------------------------------------------------

WORKING_SET = f"container_memory_working_set_bytes{{{CONTAINERS}}}"


def _hour_average(offset: str) -> str:
    return f"sum by (namespace, pod) (avg_over_time({WORKING_SET}[1h]{offset}))"


LAST_HOUR, MIDDLE_HOUR, FIRST_HOUR = _hour_average(""), _hour_average(" offset 11h30m"), _hour_average(" offset 23h")


def memory_growth_query(percent: float, min_bytes: float) -> str:
    # Steady: the average of the middle hour lies between those of the first and the last hour, so a pod that
    # jumped once (a cache filled, a batch started) is not taken for a leak; a pod started within the 24 h has no
    # first hour and is not judged.
    selection = (
        f"topk({MAX_SERIES}, ({LAST_HOUR} / {FIRST_HOUR} > {num(1 + percent / 100)})"
        f" and ({LAST_HOUR} - {FIRST_HOUR} > {num(min_bytes)})"
        f" and ({MIDDLE_HOUR} > {FIRST_HOUR}) and ({LAST_HOUR} > {MIDDLE_HOUR}))"
    )
    return pick(selection, "namespace, pod", now=LAST_HOUR, before=FIRST_HOUR)


@check(
    "apps.memory.growth",
    APPS,
    Severity.WARNING,
    _("No pod's memory grows steadily over the day"),
    _(
        "Memory that rises hour after hour and never comes back down is the sign of a leak: the pod ends killed "
        "at its limit, or starves its node, at a time no one chose."
    ),
    _(
        "Compare the pod's memory graph with its traffic; take a heap or memory profile of the app, fix the leak, "
        "and until then restart it at a quiet hour."
    ),
)
def memory_growth(ctx, cluster):
    """Working-set memory per pod (cAdvisor, its containers summed): the average of the last hour against that of
    the hour 24 h ago, above ``app.memory_growth_percent`` and by more than ``app.memory_growth_min_mib``, when the
    hour 12 h ago lies between the two (a steady rise)."""
    missing = N_(
        "Prometheus of cluster %(cluster)s holds no container_memory_working_set_bytes series: have it scrape the "
        "kubelets' cAdvisor endpoint (/metrics/cadvisor)."
    )
    percent = ctx.threshold("app.memory_growth_percent")
    min_mib = ctx.threshold("app.memory_growth_min_mib", 64)
    promql = memory_growth_query(percent, min_mib * MIB)
    samples = ask(ctx, cluster, promql, ("container_memory_working_set_bytes",), missing)
    values = by_pod_values(samples, ("namespace", "pod"))
    pods = [
        prometheus.Sample({"namespace": ns, "pod": pod}, v["now"] / v["before"] - 1)
        for (ns, pod), v in values.items()
        if v.get("before", 0) > 0 and "now" in v
    ]
    sentence = N_(
        "%(workload)s: memory of pod %(pod)s rose steadily from %(before)s MiB to %(now)s MiB in 24 hours "
        "(+%(percent)s%%, limit +%(limit)s%%). Pods: %(pods)s."
    )
    for workload, items in by_workload(ctx, cluster, pods).items():
        worst = max(items, key=lambda s: (s.value, s.labels["pod"]))
        got = values[(workload.namespace, worst.labels["pod"])]
        growth = {s.labels["pod"]: round(s.value * 100, 1) for s in items}
        yield _finding(
            workload,
            sentence,
            growth,
            {
                "growth_percent": dict(sorted(growth.items())[:FACT_PODS]),
                "before_bytes": round(got["before"]),
                "now_bytes": round(got["now"]),
                "limit_percent": percent,
            },
            pod=worst.labels["pod"],
            before=mib(got["before"]),
            now=mib(got["now"]),
            percent=f"{worst.value * 100:.0f}",
            limit=num(percent),
        )


# Log volume ---------------------------------------------------------------------------------------------------------

# Log collectors that count what they read per log file; the file's path names the pod
# (/var/log/pods/<namespace>_<pod>_<uid>/<container>/0.log).
LOG_FILES = '{__name__=~"promtail_read_bytes_total|loki_source_file_read_bytes_total",path=~"/var/log/pods/.+"}'
# Log stores that count the bytes they take in, over all tenants and streams.
LOG_STORES = {"VictoriaLogs": "vl_bytes_ingested_total", "Loki": "loki_distributor_bytes_received_total"}
WINDOWS = {"now": "", "before": " offset 1d"}


def _windowed(expr: str, window: str) -> str:
    return f'label_replace({expr}, "window", "{window}", "", "")'


def log_growth_query() -> str:
    parts = []
    for window, offset in WINDOWS.items():
        rate = f"rate({LOG_FILES}[1h]{offset})"
        rate = f'label_replace({rate}, "namespace", "$1", "path", "/var/log/pods/([^_/]+)_[^_/]+_[^/]+/.+")'
        rate = f'label_replace({rate}, "pod", "$1", "path", "/var/log/pods/[^_/]+_([^_/]+)_[^/]+/.+")'
        parts.append(_windowed(f"topk({MAX_SERIES}, sum by (namespace, pod) ({rate}))", window))
        for store, metric in LOG_STORES.items():
            total = f'label_replace(sum(rate({metric}[1h]{offset})), "store", "{store}", "", "")'
            parts.append(_windowed(total, window))
    return " or ".join(parts)


def _kib(value: float) -> str:
    return f"{value / 1024:.1f}"


@check(
    "apps.logs.growth",
    APPS,
    Severity.INFO,
    _("Log volume does not jump from one day to the next"),
    _(
        "An app that suddenly writes many times more logs is often failing in a loop or was left at debug level; "
        "the log store fills, costs more, and the lines that matter drown."
    ),
    _(
        "Look at the workload's newest log lines: fix the error repeated in them, or set the log level back to "
        "info; raise the log store's retention or disk only for real growth."
    ),
)
def log_growth(ctx, cluster):
    """Bytes of logs per second in the last hour against the same hour a day earlier (so the day's rhythm does not
    count), above ``app.log_growth_ratio`` times, when the last hour writes at least
    ``app.log_min_bytes_per_second``.

    What is measurable from Prometheus: per workload, from log collectors that count the bytes they read per log
    file (promtail's ``promtail_read_bytes_total``, Grafana Alloy's ``loki_source_file_read_bytes_total``; the
    file's path names the namespace and pod, and a workload's pods are summed, so a rollout between the two hours
    does not count as growth); for the whole cluster, from the log store's own intake (VictoriaLogs'
    ``vl_bytes_ingested_total``, Loki's ``loki_distributor_bytes_received_total``), reported on the log store
    without a namespace. Fluent Bit and Vector count per input, not per pod, and so are not read. A workload that
    wrote nothing a day earlier is new, not growing, and is not judged.
    """
    missing = N_(
        "Prometheus of cluster %(cluster)s holds no log volume metrics: neither a log collector's per-file "
        "counters (promtail_read_bytes_total, Grafana Alloy's loki_source_file_read_bytes_total) nor the log "
        "store's intake (vl_bytes_ingested_total, loki_distributor_bytes_received_total)."
    )
    metrics = ("promtail_read_bytes_total", "loki_source_file_read_bytes_total", *LOG_STORES.values())
    samples = ask(ctx, cluster, log_growth_query(), metrics, missing)
    ratio = ctx.threshold("app.log_growth_ratio")
    floor = ctx.threshold("app.log_min_bytes_per_second", 1024)

    def grown(now: float, before: float) -> bool:
        return before > 0 and now >= floor and now / before > ratio

    stores = by_pod_values((s for s in samples if "store" in s.labels), ("store",), "window")
    for (store,), got in sorted(stores.items()):
        now, before = got.get("now", 0.0), got.get("before", 0.0)
        if grown(now, before):
            sentence = N_(
                "The log store (%(store)s) took in %(now)s KiB/s in the last hour, %(ratio)s times the %(before)s "
                "KiB/s of the same hour a day earlier (limit %(limit)s times)."
            )
            yield Finding(
                subject=f"log store {store}",
                message=D(
                    sentence,
                    store=store,
                    now=_kib(now),
                    before=_kib(before),
                    ratio=f"{now / before:.1f}",
                    limit=num(ratio),
                ),
                facts={"store": store, "now_bytes_per_second": now, "before_bytes_per_second": before},
            )
    windows = {"now": [], "before": []}
    for sample in samples:
        if "store" not in sample.labels and sample.labels.get("window") in windows:
            windows[sample.labels["window"]].append(sample)
    now_by = by_workload(ctx, cluster, windows["now"])
    before_by = by_workload(ctx, cluster, windows["before"])
    sentence = N_(
        "%(workload)s wrote %(now)s KiB/s of logs in the last hour, %(ratio)s times the %(before)s KiB/s of the "
        "same hour a day earlier (limit %(limit)s times); most from pod %(pod)s. Pods: %(pods)s."
    )
    for workload, items in now_by.items():
        now = sum(s.value for s in items)
        before = sum(s.value for s in before_by.get(workload, ()))
        if not grown(now, before):
            continue
        worst = max(items, key=lambda s: (s.value, s.labels["pod"]))
        yield _finding(
            workload,
            sentence,
            (s.labels["pod"] for s in items),
            {"now_bytes_per_second": round(now, 1), "before_bytes_per_second": round(before, 1), "limit": ratio},
            now=_kib(now),
            before=_kib(before),
            ratio=f"{now / before:.1f}",
            limit=num(ratio),
            pod=worst.labels["pod"],
        )


# JVM heap -----------------------------------------------------------------------------------------------------------


def _jvm(names: str, positive: bool = False) -> str:
    # Scrape configs built on the old example relabelling name the pod kubernetes_namespace/kubernetes_pod_name.
    expr = f'avg_over_time({{__name__=~"{names}",area="heap"}}[15m])'
    expr = f'label_replace({expr}, "namespace", "$1", "kubernetes_namespace", "(.+)")'
    expr = f'label_replace({expr}, "pod", "$1", "kubernetes_pod_name", "(.+)")'
    # A pool without a maximum of its own (G1's eden and survivor spaces) answers -1: only the pools that have
    # one add up to the heap's maximum (-Xmx).
    return f"sum by (namespace, pod) ({expr}{' > 0' if positive else ''})"


HEAP_USED = _jvm("jvm_memory_used_bytes|jvm_memory_bytes_used")
HEAP_MAX = _jvm("jvm_memory_max_bytes|jvm_memory_bytes_max", positive=True)


@check(
    "apps.jvm.heap",
    APPS,
    Severity.WARNING,
    _("Java apps have room in their heap"),
    _(
        "A JVM whose heap stays nearly full spends its time collecting garbage: answers slow down, and it ends "
        "with OutOfMemoryError."
    ),
    _(
        "Raise -Xmx (or -XX:MaxRAMPercentage) together with the container's memory limit, or find what fills the "
        "heap with a heap dump (jcmd <pid> GC.heap_dump)."
    ),
)
def jvm_heap(ctx, cluster):
    """JVM heap used against its maximum per pod, averaged over 15 minutes (an instant before a collection is
    always high), above ``app.jvm_heap_percent``; only for apps that export the JVM's memory metrics."""
    missing = N_(
        "Prometheus of cluster %(cluster)s holds no JVM heap metrics (jvm_memory_used_bytes or "
        "jvm_memory_bytes_used): no Java app here exports them, or Prometheus does not scrape them."
    )
    limit = ctx.threshold("app.jvm_heap_percent")
    selection = f"topk({MAX_SERIES}, {HEAP_USED} / {HEAP_MAX} * 100 > {num(limit)})"
    promql = pick(selection, "namespace, pod", used=HEAP_USED, max=HEAP_MAX)
    samples = ask(ctx, cluster, promql, ("jvm_memory_used_bytes", "jvm_memory_bytes_used"), missing)
    values = by_pod_values(samples, ("namespace", "pod"))
    pods = [
        prometheus.Sample({"namespace": ns, "pod": pod}, v["used"] / v["max"] * 100)
        for (ns, pod), v in values.items()
        if v.get("max", 0) > 0 and "used" in v
    ]
    sentence = N_(
        "%(workload)s: the JVM of pod %(pod)s uses %(used)s MiB of its %(max)s MiB heap (%(percent)s%%, limit "
        "%(limit)s%%), on average over 15 minutes. Pods: %(pods)s."
    )
    for workload, items in by_workload(ctx, cluster, pods).items():
        worst = max(items, key=lambda s: (s.value, s.labels["pod"]))
        got = values[(workload.namespace, worst.labels["pod"])]
        per_pod = {s.labels["pod"]: round(s.value, 1) for s in items}
        yield _finding(
            workload,
            sentence,
            per_pod,
            {"heap_percent": dict(sorted(per_pod.items())[:FACT_PODS]), "limit": limit},
            pod=worst.labels["pod"],
            used=mib(got["used"]),
            max=mib(got["max"]),
            percent=f"{worst.value:.1f}",
            limit=num(limit),
        )


# Per-container pressure: CPU throttling, memory near the limit ------------------------------------------------------


def _per_container(ctx, cluster, samples, sentence: str, limit: float, fact: str, details=None) -> Iterator[Finding]:
    """One finding per workload from per-container percentages (``samples``), naming its worst container;
    ``details(worst)`` adds values to the sentence."""
    for workload, items in by_workload(ctx, cluster, samples).items():
        worst = max(items, key=lambda s: (s.value, s.labels["pod"], s.labels.get("container", "")))
        per_pod: dict[str, float] = {}
        for s in items:
            per_pod[s.labels["pod"]] = max(per_pod.get(s.labels["pod"], 0.0), round(s.value, 1))
        container = worst.labels.get("container", "")[:63]
        yield _finding(
            workload,
            sentence,
            per_pod,
            {fact: dict(sorted(per_pod.items())[:FACT_PODS]), "limit": limit, "container": container},
            pod=worst.labels["pod"],
            container=container,
            percent=f"{worst.value:.1f}",
            limit=num(limit),
            **(details(worst) if details else {}),
        )


MIN_PERIODS = 1000  # CFS periods (100 ms each) a container must have run in the 24 h for its ratio to mean much


@check(
    "apps.cpu.throttled",
    APPS,
    Severity.WARNING,
    _("Containers are not held back by their CPU limit"),
    _(
        "A container that reaches its CPU limit is paused until the next period: answers take longer although "
        "the node has CPU to spare, and health probes time out."
    ),
    _(
        "Raise the container's CPU limit (or remove it and keep the request), or give the app fewer threads; "
        "check the request matches what the app uses."
    ),
)
def cpu_throttled(ctx, cluster):
    """Share of a container's CFS periods in which it was throttled over the last 24 h (cAdvisor), above
    ``app.cpu_throttled_percent``; containers without a CPU limit are never throttled and have no such series."""
    missing = N_(
        "Prometheus of cluster %(cluster)s holds no container_cpu_usage_seconds_total series: have it scrape the "
        "kubelets' cAdvisor endpoint (/metrics/cadvisor)."
    )
    limit = ctx.threshold("app.cpu_throttled_percent", 25)
    throttled = (
        f"sum by (namespace, pod, container) (increase(container_cpu_cfs_throttled_periods_total{{{CONTAINERS}}}[24h]))"
    )
    periods = f"sum by (namespace, pod, container) (increase(container_cpu_cfs_periods_total{{{CONTAINERS}}}[24h]))"
    promql = f"topk({MAX_SERIES}, {throttled} / ({periods} > {MIN_PERIODS}) * 100 > {num(limit)})"
    samples = ask(ctx, cluster, promql, ("container_cpu_usage_seconds_total",), missing)
    sentence = N_(
        "%(workload)s: container %(container)s of pod %(pod)s was held back by its CPU limit in %(percent)s%% of "
        "its CPU periods over the last 24 hours (limit %(limit)s%%). Pods: %(pods)s."
    )
    yield from _per_container(ctx, cluster, samples, sentence, limit, "throttled_percent")


MEMORY_USED = f"max by (namespace, pod, container) ({WORKING_SET})"
MEMORY_LIMIT = (
    '(max by (namespace, pod, container) (kube_pod_container_resource_limits{resource="memory"})'
    f" or max by (namespace, pod, container) (container_spec_memory_limit_bytes{{{CONTAINERS}}} > 0))"
)


@check(
    "apps.memory.limit",
    APPS,
    Severity.WARNING,
    _("Containers stay clear of their memory limit"),
    _(
        "A container at its memory limit is one allocation away from being killed (OOMKilled), and the kernel "
        "already squeezes its page cache."
    ),
    _(
        "Raise the container's memory limit (and request) to its real peak with some room, or make the app use "
        "less (heap size, caches, workers)."
    ),
)
def memory_limit(ctx, cluster):
    """Working-set memory of each container (cAdvisor) against its memory limit (kube-state-metrics'
    ``kube_pod_container_resource_limits``, else cAdvisor's ``container_spec_memory_limit_bytes``), above
    ``app.memory_limit_percent``; containers without a limit are not judged."""
    missing = N_(
        "Prometheus of cluster %(cluster)s holds no container_memory_working_set_bytes series: have it scrape the "
        "kubelets' cAdvisor endpoint (/metrics/cadvisor)."
    )
    limit = ctx.threshold("app.memory_limit_percent", 90)
    selection = f"topk({MAX_SERIES}, {MEMORY_USED} / {MEMORY_LIMIT} * 100 > {num(limit)})"
    promql = pick(selection, "namespace, pod, container", used=MEMORY_USED, limit=MEMORY_LIMIT)
    samples = ask(ctx, cluster, promql, ("container_memory_working_set_bytes",), missing)
    values = by_pod_values(samples, ("namespace", "pod", "container"))
    containers = [
        prometheus.Sample({"namespace": ns, "pod": pod, "container": name}, v["used"] / v["limit"] * 100)
        for (ns, pod, name), v in values.items()
        if v.get("limit", 0) > 0 and "used" in v
    ]
    sentence = N_(
        "%(workload)s: container %(container)s of pod %(pod)s uses %(used)s MiB of its %(bound)s MiB memory limit, "
        "%(percent)s%% (threshold %(limit)s%%). Pods: %(pods)s."
    )

    def details(worst: prometheus.Sample) -> dict:
        got = values[(worst.labels["namespace"], worst.labels["pod"], worst.labels["container"])]
        return {"used": mib(got["used"]), "bound": mib(got["limit"])}

    yield from _per_container(ctx, cluster, containers, sentence, limit, "used_percent", details)
