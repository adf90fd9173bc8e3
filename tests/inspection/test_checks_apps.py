"""The apps checks (apps/inspection/checks/apps.py) against a real Prometheus holding 26 hours of history.

Real workloads run in the sandbox (kwok plays the kubelets): Deployments ``web`` (two pods) and ``api``, the
StatefulSet ``db`` and the bare pod ``tool``; the inventory lists them (``full_resync``). What only the kubelets'
cAdvisor, kube-state-metrics, a JVM and the log collectors would have said over the last day about those very pods
is written as OpenMetrics (one sample a minute, from 26 hours ago to 2 hours ahead, so the last samples stay fresh
however long the tests run), turned into TSDB blocks by Debian's ``promtool tsdb create-blocks-from openmetrics``
(as bench/metrics_charts.py does) and served by Debian's Prometheus. A pod of ``web`` that is gone since (its
restarts and logs are in the history, not in the inventory) is mapped to ``web`` by its name.

Each check fails on the workloads the history makes unhealthy, with their subject, namespace and measured values,
passes when its threshold is raised above what was measured, and passes on a healthy cluster that a live
Prometheus scrapes (``metrics``). A cluster without Prometheus, a Prometheus that does not answer and one that
holds none of a check's metrics leave every check "not checked", with a sentence saying why.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as k8s

from apps.clusters.inventory.sync import full_resync
from apps.clusters.kinds import BY_KIND
from apps.core.deferred import render
from apps.inspection import runner
from apps.inspection.catalogue import CATALOGUE
from apps.inspection.checks.base import Domain
from apps.inspection.checks.context import Context
from apps.inspection.models import Finding, Outcome, Run, Template
from tests.factories import ClusterFactory
from tests.helpers import unique, wait_for
from tests.plugins.served import free_port

pytestmark = [pytest.mark.django_db]

PASSED, FAILED, NOT_CHECKED = Outcome.Status.PASSED, Outcome.Status.FAILED, Outcome.Status.NOT_CHECKED
APP_CHECKS = sorted(k for k in CATALOGUE if k.startswith("apps."))
KINDS = ("Pod", "ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
HOUR, MIB, STEP = 3600, 2**20, 60
IMAGE = "registry.bank.example/app:1.0"


# The history -------------------------------------------------------------------------------------------------------


@dataclass
class Pods:
    namespace: str
    web_a: str
    web_b: str
    gone: str  # a pod of web's ReplicaSet, deleted 11 hours ago: in the history, not in the inventory
    api: str
    db: str
    tool: str
    uids: dict


def steps(*ages_hours: float) -> Callable[[float], float]:
    """A counter that went up by one at each of these ages (hours before now)."""
    return lambda age: float(sum(1 for event in ages_hours if age <= event * HOUR))


def plateaus(*points: tuple[float, float]) -> Callable[[float], float]:
    """A gauge through (age in hours, value) points, oldest first, straight lines between them."""

    def value(age: float) -> float:
        hours = age / HOUR
        if hours >= points[0][0]:
            return points[0][1]
        for (old, old_value), (new, new_value) in itertools.pairwise(points):
            if new <= hours <= old:
                return old_value + (new_value - old_value) * (old - hours) / (old - new)
        return points[-1][1]

    return value


def rates(*spans: tuple[float, float, float]) -> Callable[[float], float | None]:
    """Per-second rates of a counter by (from age, to age, rate) spans in hours; None where the series is absent."""

    def rate(age: float) -> float | None:
        hours = age / HOUR
        for older, newer, per_second in spans:
            if newer < hours <= older:
                return per_second
        return None

    return rate


class History:
    """OpenMetrics text of gauges (``gauge``: value by age) and counters (``counter``: rate by age, summed)."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.families: dict[str, list[tuple[dict, Callable, bool]]] = defaultdict(list)

    def gauge(self, name: str, labels: dict, value: Callable[[float], float | None]) -> None:
        self.families[name].append((labels, value, False))

    def counter(self, name: str, labels: dict, rate: Callable[[float], float | None]) -> None:
        self.families[name].append((labels, rate, True))

    def write(self, path: Path) -> None:
        with path.open("w") as out:
            for name, series in self.families.items():
                out.write(f"# TYPE {name} gauge\n")  # promtool keeps a gauge's name as it is (_total included)
                for labels, value_of, summed in series:
                    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                    total = 1e6
                    for t in range(self.now - 26 * HOUR, self.now + 2 * HOUR, STEP):
                        value = value_of(self.now - t)
                        if value is None:
                            continue
                        if summed:
                            total += value * STEP
                            value = total
                        out.write(f"{name}{{{inner}}} {value!r} {t}\n")
            out.write("# EOF\n")


def history_of(pods: Pods, now: int) -> History:
    h = History(now)
    ns = pods.namespace
    containers = {pods.web_a: "web", pods.web_b: "web", pods.gone: "web", pods.api: "api", pods.db: "db"}
    containers[pods.tool] = "tool"

    def at(pod: str, **extra) -> dict:
        return {"namespace": ns, "pod": pod, "container": containers[pod], **extra}

    # OOM kills: web_a twice (cAdvisor); db-0 once, its last termination OOMKilled and a restart within the day
    # (kube-state-metrics). web_b's last termination was an OOM kill too, but it has not restarted within the day:
    # an old kill.
    h.gauge("container_oom_events_total", at(pods.web_a), steps(5, 2))
    h.gauge("container_oom_events_total", at(pods.api), steps())
    for pod in (pods.db, pods.web_b):
        h.gauge("kube_pod_container_status_last_terminated_reason", at(pod, reason="OOMKilled"), lambda age: 1.0)
    # Restarts: web 3 + 4 (its gone pod) = 7, tool 6: above 5; api 2, db 1.
    h.gauge("kube_pod_container_status_restarts_total", at(pods.web_a), steps(20, 10, 4))
    h.gauge("kube_pod_container_status_restarts_total", at(pods.web_b), steps())
    gone = steps(22, 18, 14, 12)
    h.gauge(
        "kube_pod_container_status_restarts_total", at(pods.gone), lambda age: gone(age) if age > 11 * HOUR else None
    )
    h.gauge("kube_pod_container_status_restarts_total", at(pods.api), steps(15, 6))
    h.gauge("kube_pod_container_status_restarts_total", at(pods.db), steps(3))
    h.gauge("kube_pod_container_status_restarts_total", at(pods.tool), steps(23, 19, 15, 11, 7, 3))
    # Memory: api rises steadily 200 -> 350 -> 500 MiB; web_b jumped once 3 hours ago (not a leak); the pod-level
    # cgroup series of api (container="") grows too but is no container.
    working_set = "container_memory_working_set_bytes"
    h.gauge(working_set, at(pods.api), plateaus((22, 200 * MIB), (14, 350 * MIB), (10, 350 * MIB), (3, 500 * MIB)))
    h.gauge(working_set, {**at(pods.api), "container": ""}, plateaus((24, 100 * MIB), (0, 2000 * MIB)))
    h.gauge(working_set, at(pods.web_a), lambda age: 300.0 * MIB)
    h.gauge(working_set, at(pods.web_b), lambda age: (200.0 if age > 3 * HOUR else 400.0) * MIB)
    h.gauge(working_set, at(pods.db), lambda age: 1000.0 * MIB)
    h.gauge(working_set, at(pods.tool), lambda age: 50.0 * MIB)
    # Memory limits: db 1050 MiB and api 1024 MiB (kube-state-metrics); tool 52 MiB (cAdvisor only); web none.
    limits = "kube_pod_container_resource_limits"
    h.gauge(limits, at(pods.db, resource="memory", unit="byte"), lambda age: 1050.0 * MIB)
    h.gauge(limits, at(pods.api, resource="memory", unit="byte"), lambda age: 1024.0 * MIB)
    h.gauge(limits, at(pods.api, resource="cpu", unit="core"), lambda age: 0.001)
    h.gauge("container_spec_memory_limit_bytes", at(pods.tool), lambda age: 52.0 * MIB)
    h.gauge("container_spec_memory_limit_bytes", at(pods.web_a), lambda age: 0.0)
    # JVM heap: api 900 of 1000 MiB (Micrometer; G1's eden has no maximum of its own); web_b 950 of 1000 MiB and
    # web_a 300 (the old client_java names, pods named by the old relabelling).
    for pool, used, most in (("G1 Old Gen", 800, 1000), ("G1 Eden Space", 100, -1)):
        h.gauge(
            "jvm_memory_used_bytes",
            {"namespace": ns, "pod": pods.api, "area": "heap", "id": pool},
            lambda a, u=used: u * MIB,
        )
        h.gauge(
            "jvm_memory_max_bytes",
            {"namespace": ns, "pod": pods.api, "area": "heap", "id": pool},
            lambda a, m=most: m * MIB if m > 0 else -1.0,
        )
    h.gauge(
        "jvm_memory_used_bytes",
        {"namespace": ns, "pod": pods.api, "area": "nonheap", "id": "Metaspace"},
        lambda a: 990.0 * MIB,
    )
    for pod, used in ((pods.web_a, 300), (pods.web_b, 950)):
        old = {"kubernetes_namespace": ns, "kubernetes_pod_name": pod, "area": "heap"}
        h.gauge("jvm_memory_bytes_used", old, lambda a, u=used: u * MIB)
        h.gauge("jvm_memory_bytes_max", old, lambda a: 1000.0 * MIB)
    # CPU: web_a throttled in 40% of its periods, web_b 5%, api never; tool 100% but too few periods to judge.
    for pod, periods, throttled in (
        (pods.web_a, 100, 40),
        (pods.web_b, 100, 5),
        (pods.api, 100, 0),
        (pods.tool, 0.5, 0.5),
    ):
        h.counter("container_cpu_cfs_periods_total", at(pod), lambda a, p=periods: p / 60)
        h.counter("container_cpu_cfs_throttled_periods_total", at(pod), lambda a, t=throttled: t / 60)
    h.counter("container_cpu_usage_seconds_total", at(pods.api), lambda a: 0.2)

    # Logs (bytes/s): web wrote 1 KiB/s from web_a and 1 KiB/s from its gone pod a day ago, now 10 KiB/s from web_a
    # and 1 KiB/s from web_b (the gone pod's replacement); db 0.5 -> 5 KiB/s (read by Alloy); api steady; tool
    # grew tenfold but writes too little to matter. Loki took in 10 KiB/s, now 50; VictoriaLogs steady.
    def log_file(pod: str) -> dict:
        uid = pods.uids.get(pod, "f0e1d2c3-0000-4000-8000-000000000000")  # the gone pod's
        path = f"/var/log/pods/{ns}_{pod}_{uid}/{containers[pod]}/0.log"
        return {"path": path, "namespace": "logging", "pod": "promtail-x7k2p", "job": "promtail"}

    h.counter("promtail_read_bytes_total", log_file(pods.web_a), rates((27, 3, 1024), (3, -3, 10240)))
    h.counter("promtail_read_bytes_total", log_file(pods.gone), rates((27, 11, 1024)))
    h.counter("promtail_read_bytes_total", log_file(pods.web_b), rates((11, -3, 1024)))
    h.counter("promtail_read_bytes_total", log_file(pods.api), rates((27, -3, 2048)))
    h.counter("promtail_read_bytes_total", log_file(pods.tool), rates((27, 3, 10), (3, -3, 100)))
    h.counter(
        "loki_source_file_read_bytes_total",
        {**log_file(pods.db), "component_id": "loki.source.file.pods"},
        rates((27, 3, 512), (3, -3, 5120)),
    )
    h.counter("loki_distributor_bytes_received_total", {"tenant": "fake"}, rates((27, 3, 10240), (3, -3, 51200)))
    h.counter("vl_bytes_ingested_total", {"type": "loki"}, rates((27, -3, 102400)))
    return h


# Prometheus on the history --------------------------------------------------------------------------------------


def serve_history(folder: Path, history: History) -> tuple[subprocess.Popen, str]:
    history.write(folder / "history.om")
    subprocess.run(
        [
            "/usr/bin/promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "-q",
            str(folder / "history.om"),
            str(folder / "data"),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    (folder / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
    with (folder / "prometheus.log").open("wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [
                "/usr/bin/prometheus",
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=30d",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:  # noqa: S310 (loopback URL built here)
                return answer.status == 200
        except OSError:
            return process.poll() is not None

    wait_for(ready, 60, 0.2)
    if process.poll() is not None:
        raise RuntimeError(f"Prometheus did not start: {(folder / 'prometheus.log').read_text()[-2000:]}")
    return process, url


def container(app: str) -> dict:
    return {"name": app, "image": IMAGE}


def workload(app: str, replicas: int, **spec) -> dict:
    """A Deployment's or StatefulSet's body: ``replicas`` pods labelled app=<app>, one container named <app>."""
    template = {"metadata": {"labels": {"app": app}}, "spec": {"containers": [container(app)]}}
    selector = {"matchLabels": {"app": app}}
    return {
        "metadata": {"name": app},
        "spec": {"replicas": replicas, "selector": selector, "template": template, **spec},
    }


@dataclass
class World:
    pods: Pods
    url: str


@pytest.fixture(scope="module")
def appchecks_world(sandbox):
    """The sandbox namespace with the workloads, and a Prometheus holding their last 26 hours."""
    core, apps = k8s.CoreV1Api(sandbox.api_client), k8s.AppsV1Api(sandbox.api_client)
    ns = unique("appchk")
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns)))
    folder = Path(tempfile.mkdtemp(prefix="kubemate-appchecks-"))
    process = None
    try:
        apps.create_namespaced_deployment(ns, workload("web", 2))
        apps.create_namespaced_deployment(ns, workload("api", 1))
        apps.create_namespaced_stateful_set(ns, workload("db", 1, serviceName="db"))
        core.create_namespaced_pod(ns, {"metadata": {"name": "tool"}, "spec": {"containers": [container("tool")]}})

        def listed() -> dict[str, list]:
            found = defaultdict(list)
            for pod in core.list_namespaced_pod(ns).items:
                found[(pod.metadata.labels or {}).get("app", pod.metadata.name)].append(pod)
            return found

        assert wait_for(lambda: [len(listed()[a]) for a in ("web", "api", "db", "tool")] == [2, 1, 1, 1], 60)
        found = listed()
        web_a, web_b = sorted(found["web"], key=lambda p: p.metadata.name)
        replicaset = web_a.metadata.owner_references[0].name
        every = [*found["web"], *found["api"], *found["db"], *found["tool"]]
        pods = Pods(
            namespace=ns,
            web_a=web_a.metadata.name,
            web_b=web_b.metadata.name,
            gone=f"{replicaset}-zq9xk",
            api=found["api"][0].metadata.name,
            db=found["db"][0].metadata.name,
            tool="tool",
            uids={p.metadata.name: p.metadata.uid for p in every},
        )
        process, url = serve_history(folder, history_of(pods, int(time.time())))
        yield World(pods=pods, url=url)
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
        core.delete_namespace(ns)


# The checks ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def watched(appchecks_world, registered_cluster):
    """The sandbox registered with the history's Prometheus, its workloads in the inventory."""
    registered_cluster.prometheus_url = appchecks_world.url
    registered_cluster.save(update_fields=["prometheus_url"])
    full_resync(registered_cluster, [BY_KIND[kind] for kind in KINDS])
    assert registered_cluster.resources.filter(kind="Pod", namespace=appchecks_world.pods.namespace).count() == 5
    return registered_cluster


def run(check_id: str, cluster, thresholds: dict | None = None) -> runner.Result:
    return runner.run_one(Context(thresholds=thresholds), CATALOGUE[check_id], cluster)


def failing(check_id: str, cluster) -> dict[str, tuple[str, str]]:
    """subject -> (namespace, sentence) of each finding of a check that must fail."""
    result = run(check_id, cluster)
    assert result.status == FAILED, (result.status, render(result.reason))
    return {f.subject: (f.namespace, render(f.message)) for f in result.findings}


def facts(check_id: str, cluster) -> dict[str, dict]:
    return {f.subject: f.facts for f in run(check_id, cluster).findings}


def passes(check_id: str, cluster, thresholds: dict) -> None:
    result = run(check_id, cluster, thresholds)
    assert (result.status, render(result.reason), result.findings) == (PASSED, "", [])


def test_the_catalogue_holds_the_apps_checks_each_run_against_clusters():
    assert len(APP_CHECKS) >= 7
    for check_id in APP_CHECKS:
        check = CATALOGUE[check_id]
        assert (check.target, check.domain) == ("cluster", Domain.APPS)
        assert str(check.title) and str(check.why) and str(check.fix)


@pytest.mark.sandbox
def test_oom_kills_of_the_day_per_workload_from_cadvisor_and_kube_state_metrics(watched, appchecks_world):
    p = appchecks_world.pods
    ns = p.namespace
    assert failing("apps.oom_kills", watched) == {
        f"Deployment {ns}/web": (
            ns,
            f"Deployment {ns}/web: containers were killed for lack of memory in the last 24 hours: 2. Pods: {p.web_a}.",
        ),
        f"StatefulSet {ns}/db": (
            ns,
            f"StatefulSet {ns}/db: containers were killed for lack of memory in the last 24 hours: 1. Pods: {p.db}.",
        ),
    }
    assert facts("apps.oom_kills", watched)[f"Deployment {ns}/web"] == {
        "kind": "Deployment",
        "name": "web",
        "pods": [p.web_a],
        "kills": 2,
        "per_pod": {p.web_a: 2},
    }


@pytest.mark.sandbox
def test_restarts_of_the_day_are_summed_per_workload_with_its_gone_pods(watched, appchecks_world):
    p = appchecks_world.pods
    ns = p.namespace
    web_pods = ", ".join(sorted([p.web_a, p.gone]))
    assert failing("apps.restarts", watched) == {
        f"Deployment {ns}/web": (
            ns,
            f"Deployment {ns}/web: container restarts in the last 24 hours: 7 (limit 5); most in pod {p.gone}: 4. "
            f"Pods: {web_pods}.",
        ),
        f"Pod {ns}/tool": (
            ns,
            f"Pod {ns}/tool: container restarts in the last 24 hours: 6 (limit 5); most in pod tool: 6. Pods: tool.",
        ),
    }
    assert facts("apps.restarts", watched)[f"Deployment {ns}/web"]["per_pod"] == {p.web_a: 3, p.gone: 4}
    passes("apps.restarts", watched, {"app.restarts_24h": 7})


@pytest.mark.sandbox
def test_memory_that_rose_steadily_over_the_day_and_not_a_single_jump(watched, appchecks_world):
    p = appchecks_world.pods
    ns = p.namespace
    assert failing("apps.memory.growth", watched) == {
        f"Deployment {ns}/api": (
            ns,
            f"Deployment {ns}/api: memory of pod {p.api} rose steadily from 200 MiB to 500 MiB in 24 hours "
            f"(+150%, limit +50%). Pods: {p.api}.",
        )
    }
    found = facts("apps.memory.growth", watched)[f"Deployment {ns}/api"]
    assert (found["before_bytes"], found["now_bytes"], found["growth_percent"]) == (
        200 * MIB,
        500 * MIB,
        {p.api: 150.0},
    )
    passes("apps.memory.growth", watched, {"app.memory_growth_percent": 150})
    # web_b doubled (200 -> 400 MiB) in one jump three hours ago: not steady, even with the bar lowered.
    low = run("apps.memory.growth", watched, {"app.memory_growth_percent": 10})
    assert {f.subject for f in low.findings} == {f"Deployment {ns}/api"}


@pytest.mark.sandbox
def test_log_volume_per_workload_across_a_rollout_and_the_log_store_intake(watched, appchecks_world):
    p = appchecks_world.pods
    ns = p.namespace
    web_pods = ", ".join(sorted([p.web_a, p.web_b]))
    assert failing("apps.logs.growth", watched) == {
        "log store Loki": (
            "",
            "The log store (Loki) took in 50.0 KiB/s in the last hour, 5.0 times the 10.0 KiB/s of the same hour a "
            "day earlier (limit 3 times).",
        ),
        f"Deployment {ns}/web": (
            ns,
            f"Deployment {ns}/web wrote 11.0 KiB/s of logs in the last hour, 5.5 times the 2.0 KiB/s of the same "
            f"hour a day earlier (limit 3 times); most from pod {p.web_a}. Pods: {web_pods}.",
        ),
        f"StatefulSet {ns}/db": (
            ns,
            f"StatefulSet {ns}/db wrote 5.0 KiB/s of logs in the last hour, 10.0 times the 0.5 KiB/s of the same hour "
            f"a day earlier (limit 3 times); most from pod {p.db}. Pods: {p.db}.",
        ),
    }
    found = facts("apps.logs.growth", watched)[f"Deployment {ns}/web"]
    assert (found["now_bytes_per_second"], found["before_bytes_per_second"]) == (11264.0, 2048.0)
    passes("apps.logs.growth", watched, {"app.log_growth_ratio": 10})
    # tool grew tenfold too, but to 100 bytes a second: under the floor until the floor is lowered.
    low = run("apps.logs.growth", watched, {"app.log_min_bytes_per_second": 50})
    assert f"Pod {ns}/tool" in {f.subject for f in low.findings}


@pytest.mark.sandbox
def test_jvm_heap_near_its_maximum_from_both_generations_of_jvm_metrics(watched, appchecks_world):
    p = appchecks_world.pods
    ns = p.namespace
    assert failing("apps.jvm.heap", watched) == {
        f"Deployment {ns}/api": (
            ns,
            f"Deployment {ns}/api: the JVM of pod {p.api} uses 900 MiB of its 1000 MiB heap (90.0%, limit 85%), on "
            f"average over 15 minutes. Pods: {p.api}.",
        ),
        f"Deployment {ns}/web": (
            ns,
            f"Deployment {ns}/web: the JVM of pod {p.web_b} uses 950 MiB of its 1000 MiB heap (95.0%, limit 85%), on "
            f"average over 15 minutes. Pods: {p.web_b}.",
        ),
    }
    passes("apps.jvm.heap", watched, {"app.jvm_heap_percent": 95})


@pytest.mark.sandbox
def test_cpu_throttling_names_the_container_and_ignores_containers_that_hardly_ran(watched, appchecks_world):
    p = appchecks_world.pods
    ns = p.namespace
    assert failing("apps.cpu.throttled", watched) == {
        f"Deployment {ns}/web": (
            ns,
            f"Deployment {ns}/web: container web of pod {p.web_a} was held back by its CPU limit in 40.0% of its "
            f"CPU periods over the last 24 hours (limit 25%). Pods: {p.web_a}.",
        )
    }
    lowered = run("apps.cpu.throttled", watched, {"app.cpu_throttled_percent": 1})
    assert {f.subject: f.facts["throttled_percent"] for f in lowered.findings} == {
        f"Deployment {ns}/web": {p.web_a: 40.0, p.web_b: 5.0}
    }
    passes("apps.cpu.throttled", watched, {"app.cpu_throttled_percent": 40})


@pytest.mark.sandbox
def test_containers_near_their_memory_limit_from_kube_state_metrics_or_cadvisor(watched, appchecks_world):
    p = appchecks_world.pods
    ns = p.namespace
    assert failing("apps.memory.limit", watched) == {
        f"StatefulSet {ns}/db": (
            ns,
            f"StatefulSet {ns}/db: container db of pod {p.db} uses 1000 MiB of its 1050 MiB memory limit, 95.2% "
            f"(threshold 90%). Pods: {p.db}.",
        ),
        f"Pod {ns}/tool": (
            ns,
            f"Pod {ns}/tool: container tool of pod tool uses 50 MiB of its 52 MiB memory limit, 96.2% (threshold "
            "90%). Pods: tool.",
        ),
    }
    passes("apps.memory.limit", watched, {"app.memory_limit_percent": 97})


@pytest.mark.sandbox
def test_an_inspection_run_keeps_the_apps_findings_and_sees_them_fixed(watched, appchecks_world):
    ns = appchecks_world.pods.namespace
    template = Template.objects.create(slug="apps-test", name="Apps", checks=["apps."])

    def inspect() -> Run:
        run_row = Run.objects.create(template=template)
        run_row.clusters.add(watched)
        return runner.execute(run_row, lambda percent, sentence: None)

    first = inspect()
    assert dict(Outcome.objects.filter(run=first).values_list("check_id", "status")) == dict.fromkeys(
        APP_CHECKS, FAILED
    )
    assert first.scores == {"apps": 0}
    stored = Finding.objects.filter(run=first).exclude(subject__startswith="log store")
    assert set(stored.values_list("namespace", flat=True)) == {ns}
    assert Finding.objects.filter(run=first, subject="log store Loki", namespace="").count() == 1

    template.thresholds = {
        "app.restarts_24h": 10,
        "app.memory_growth_percent": 200,
        "app.log_growth_ratio": 20,
        "app.jvm_heap_percent": 99,
        "app.cpu_throttled_percent": 50,
        "app.memory_limit_percent": 99,
    }
    template.save()
    second = inspect()
    statuses = dict(Outcome.objects.filter(run=second).values_list("check_id", "status"))
    assert statuses == {**dict.fromkeys(APP_CHECKS, PASSED), "apps.oom_kills": FAILED}
    fixed = Finding.objects.filter(run=second, change=Finding.Change.FIXED)
    assert fixed.count() == Finding.objects.filter(run=first).exclude(check_id="apps.oom_kills").count()
    assert set(Finding.objects.filter(run=second, check_id="apps.oom_kills").values_list("change", flat=True)) == {
        Finding.Change.UNCHANGED
    }


# Healthy, and not checked ------------------------------------------------------------------------------------------


def test_a_healthy_cluster_passes_every_apps_check(metrics):
    at = {"namespace": "shop", "pod": "web-7d9f-x7k2p", "container": "web"}
    exporter = metrics.exporter
    exporter.set("container_oom_events_total", at, 0)
    exporter.set("kube_pod_container_status_restarts_total", at, 0)
    exporter.set("container_memory_working_set_bytes", at, 100 * MIB)
    exporter.set("kube_pod_container_resource_limits", {**at, "resource": "memory", "unit": "byte"}, 512 * MIB)
    exporter.set("jvm_memory_used_bytes", {"namespace": "shop", "pod": at["pod"], "area": "heap"}, 100 * MIB)
    exporter.set("jvm_memory_max_bytes", {"namespace": "shop", "pod": at["pod"], "area": "heap"}, 1000 * MIB)
    exporter.set("container_cpu_usage_seconds_total", at, 10)
    exporter.set("container_cpu_cfs_periods_total", at, 5000)
    exporter.set("container_cpu_cfs_throttled_periods_total", at, 0)
    path = "/var/log/pods/shop_web-7d9f-x7k2p_f0e1d2c3-0000-4000-8000-000000000000/web/0.log"
    exporter.set("promtail_read_bytes_total", {"path": path}, 4096)
    metrics.wait_for("sum(promtail_read_bytes_total)", 4096)
    cluster = ClusterFactory(prometheus_url=metrics.url)
    for check_id in APP_CHECKS:
        result = run(check_id, cluster)
        assert (check_id, result.status, render(result.reason), result.findings) == (check_id, PASSED, "", [])


def test_no_prometheus_or_none_that_answers_leaves_the_apps_checks_not_checked():
    nowhere = ClusterFactory(name="no-metrics")
    gone = ClusterFactory(name="gone-metrics", prometheus_url=f"http://127.0.0.1:{free_port()}")
    for check_id in APP_CHECKS:
        result = run(check_id, nowhere)
        assert (result.status, render(result.reason)) == (
            NOT_CHECKED,
            "No Prometheus is configured for cluster no-metrics.",
        )
        result = run(check_id, gone)
        assert result.status == NOT_CHECKED
        assert render(result.reason) == f"Prometheus at {gone.prometheus_url} could not be reached."


def test_a_prometheus_without_the_metrics_of_a_check_leaves_it_not_checked(metrics):
    metrics.wait_for('count({__name__=~"container_.+|kube_.+|jvm_.+|promtail_.+|loki_.+|vl_.+"})', None)
    cluster = ClusterFactory(name="bare-prometheus", prometheus_url=metrics.url)
    reasons = {}
    for check_id in APP_CHECKS:
        result = run(check_id, cluster)
        assert (result.status, result.findings) == (NOT_CHECKED, [])
        reasons[check_id] = render(result.reason)
    assert reasons["apps.restarts"] == (
        "Prometheus of cluster bare-prometheus holds no kube_pod_container_status_restarts_total series: have it "
        "scrape kube-state-metrics."
    )
    assert reasons["apps.jvm.heap"].startswith("Prometheus of cluster bare-prometheus holds no JVM heap metrics")
    assert all(reason.startswith("Prometheus of cluster bare-prometheus holds ") for reason in reasons.values())
