"""Range queries through the Prometheus door and the ready-made charts, against a real Prometheus scraping series
the test writes (cAdvisor-like and kube-state-metrics-like), and a small local server where only the query
string matters (Thanos's parameters, cut answers, answers too large)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from apps.observability import prometheus as prom
from apps.observability.endpoints import Endpoint
from apps.observability.metrics import services
from tests.factories import AdminFactory, ClusterFactory
from tests.observability.metrics_helpers import Counters, series_of, suffix, workload_name

MiB = 2**20


@pytest.fixture
def fast_scrapes(settings):
    """The test Prometheus scrapes every second: steps and rate windows follow."""
    settings.KUBEMATE_PROMETHEUS_SCRAPE_SECONDS = 1


@pytest.fixture
def counters(metrics):
    running = Counters(metrics.exporter)
    yield running
    running.close()


# The step bound ---------------------------------------------------------------------------------------------

RANGES = {
    "15 min": timedelta(minutes=15),
    "1 h": timedelta(hours=1),
    "6 h": timedelta(hours=6),
    "24 h": timedelta(hours=24),
    "7 d": timedelta(days=7),
    "5 min custom": timedelta(minutes=5),
    "3 h 17 min custom": timedelta(hours=3, minutes=17),
    "2 d custom": timedelta(days=2),
    "31 d custom": timedelta(days=31),
    "1 year": timedelta(days=365),
}


def test_no_range_gives_a_series_more_than_250_points_and_every_step_is_round():
    end = timezone.now()

    chosen = {name: prom.choose_step(end - span, end) for name, span in RANGES.items()}
    points = {name: prom.points_in(end - RANGES[name], end, step) for name, step in chosen.items()}

    assert max(points.values()) <= prom.MAX_POINTS <= 300
    assert chosen == {
        "15 min": 5,
        "1 h": 15,
        "6 h": 120,
        "24 h": 600,
        "7 d": 3600,
        "5 min custom": 2,
        "3 h 17 min custom": 60,
        "2 d custom": 900,
        "31 d custom": 10800,
        "1 year": 2 * 86400,
    }
    # The smallest round step that fits: one step finer would carry too many points.
    finer = {name: prom.STEPS[prom.STEPS.index(step) - 1] for name, step in chosen.items() if step in prom.STEPS[1:]}
    assert all(prom.points_in(end - RANGES[n], end, s) > prom.MAX_POINTS for n, s in finer.items())


@pytest.mark.parametrize("key", ["15m", "1h", "6h", "24h", "7d"])
def test_each_range_of_the_picker_keeps_the_bound_at_the_default_scrape_interval(key):
    window = services.window_from({"range": key})

    assert window.key == key
    assert window.end - window.start == timedelta(seconds=services.RANGES[key][0])
    assert window.points <= prom.MAX_POINTS
    assert window.step >= 15  # never finer than half the scrape interval (30 s)


def test_seven_days_from_prometheus_hold_at_most_250_points_a_series(metrics):
    end = timezone.now()

    answer = prom.query_range(metrics.url, "vector(1)", end - timedelta(days=7), end)

    assert answer.step == 3600
    assert [len(s.points) for s in answer.series] == [169]
    # A step asked for that is too fine is widened to keep the bound.
    finer = prom.query_range(metrics.url, "vector(1)", end - timedelta(days=7), end, step=60)
    assert finer.step == 3600 and len(finer.series[0].points) <= prom.MAX_POINTS


# A pod and a workload, read back ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_pods_charts_carry_the_series_the_exporter_wrote(metrics, fast_scrapes):
    namespace, pod = "shop", f"{workload_name()}-{suffix(8)}-{suffix()}"
    where = {"namespace": namespace, "pod": pod}
    exporter = metrics.exporter
    exporter.set("container_memory_working_set_bytes", {**where, "container": "web"}, 200 * MiB)
    exporter.set("container_memory_working_set_bytes", {**where, "container": "sidecar"}, 50 * MiB)
    exporter.set("container_memory_working_set_bytes", {**where, "container": ""}, 250 * MiB)  # the pod's cgroup
    exporter.set("container_memory_working_set_bytes", {**where, "namespace": "other", "container": "web"}, 9e9)
    exporter.set("kube_pod_container_resource_requests", {**where, "container": "web", "resource": "memory"}, 256 * MiB)
    exporter.set("kube_pod_container_resource_limits", {**where, "container": "web", "resource": "memory"}, 512 * MiB)
    exporter.set("kube_pod_container_status_restarts_total", {**where, "container": "web"}, 3)
    metrics.wait_for(f'sum(container_memory_working_set_bytes{{pod="{pod}",namespace="{namespace}"}})', 500 * MiB)
    metrics.wait_for(f'count(kube_pod_container_status_restarts_total{{pod="{pod}"}})', 1)
    cluster = ClusterFactory(prometheus_url=metrics.url)

    window = services.window_from({"range": "15m"})
    board = services.board(AdminFactory(), cluster, "pod", window, namespace=namespace, name=pod)

    memory = series_of(board, "memory")
    assert {name: set(values) for name, values in memory.items()} == {
        "web": {200 * MiB},
        "sidecar": {50 * MiB},
        "requested": {256 * MiB},
        "limit": {512 * MiB},
    }
    assert {name: set(values) for name, values in series_of(board, "restarts").items()} == {"web": {3}}
    assert board.sentence == "" and board.left_out == 0
    assert next(d for d in board.charts if d.key == "network").sentence == (
        "No data in this time range: this chart reads cAdvisor metrics; check that Prometheus scrapes it."
    )


@pytest.mark.django_db
def test_a_pods_cpu_is_the_rate_of_its_counter(metrics, counters, fast_scrapes):
    namespace, pod = "shop", f"{workload_name()}-{suffix(8)}-{suffix()}"
    counters.grow("container_cpu_usage_seconds_total", {"namespace": namespace, "pod": pod, "container": "web"}, 0.25)
    metrics.wait_for(f'count(container_cpu_usage_seconds_total{{pod="{pod}"}})', 1)
    cluster = ClusterFactory(prometheus_url=metrics.url)
    time.sleep(8)  # a rate window of samples (6 s over 15 minutes: a 5 s step and a 1 s scrape)

    board = services.board(
        AdminFactory(), cluster, "pod", services.window_from({"range": "15m"}), namespace=namespace, name=pod
    )

    cpu = series_of(board, "cpu")
    assert list(cpu) == ["web"]
    assert cpu["web"][-1] == pytest.approx(0.25, rel=0.2)  # rate() extrapolates by up to a scrape in 6 s


@pytest.mark.django_db
def test_a_deployments_charts_count_its_pods_only_and_its_replicas(metrics, fast_scrapes):
    namespace, name = "shop", workload_name()
    template = suffix(9)
    first, second = (f"{name}-{template}-{suffix()}" for _ in range(2))
    pods = {first: 120 * MiB, second: 140 * MiB}
    strangers = {
        f"{name}-db-0": 1 * 2**30,  # a StatefulSet "<name>-db"
        f"{name}-api-{template}-{suffix()}": 2 * 2**30,  # a Deployment "<name>-api"
        f"{name}-{suffix()}": 3 * 2**30,  # a DaemonSet "<name>"
    }
    for pod, value in {**pods, **strangers}.items():
        where = {"namespace": namespace, "pod": pod, "container": "web"}
        metrics.exporter.set("container_memory_working_set_bytes", where, value)
        metrics.exporter.set("kube_pod_container_status_restarts_total", where, 1)
    metrics.exporter.set(
        "container_memory_working_set_bytes", {"namespace": "other", "pod": first, "container": "w"}, 9e9
    )
    for metric, value in (
        ("kube_deployment_spec_replicas", 3),
        ("kube_deployment_status_replicas_available", 2),
        ("kube_deployment_status_replicas_updated", 3),
    ):
        metrics.exporter.set(metric, {"namespace": namespace, "deployment": name}, value)
    metrics.wait_for(f'count(container_memory_working_set_bytes{{pod=~"{name}.*"}})', 6)
    metrics.wait_for(f'kube_deployment_status_replicas_available{{deployment="{name}"}}', 2)
    cluster = ClusterFactory(prometheus_url=metrics.url)

    board = services.board(
        AdminFactory(), cluster, "deployment", services.window_from({"range": "15m"}), namespace=namespace, name=name
    )

    assert {pod: set(values) for pod, values in series_of(board, "memory").items()} == {
        pod: {value} for pod, value in pods.items()
    }
    assert {pod: set(values) for pod, values in series_of(board, "restarts").items()} == {pod: {1} for pod in pods}
    assert {line: set(values) for line, values in series_of(board, "replicas").items()} == {
        "desired": {3},
        "available": {2},
        "up to date": {3},
    }
    statefulset = services.board(
        AdminFactory(),
        cluster,
        "statefulset",
        services.window_from({"range": "15m"}),
        namespace=namespace,
        name=f"{name}-db",
    )
    assert {pod: set(v) for pod, v in series_of(statefulset, "memory").items()} == {f"{name}-db-0": {2**30}}


# Thanos, cut answers and errors -----------------------------------------------------------------------------


class Recorder:
    """A stand-in for a Prometheus API that records each query string and answers ``answer``."""

    def __init__(self, answer: dict, status: int = 200) -> None:
        self.asked: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                recorder.asked.append({"path": parts.path, **parse_qs(parts.query)})
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def matrix(series: list[tuple[dict, list[float]]], warnings=None) -> dict:
    body = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": labels, "values": [[1_700_000_000 + 15 * i, str(v)] for i, v in enumerate(values)]}
                for labels, values in series
            ],
        },
    }
    return {**body, "warnings": warnings} if warnings else body


@pytest.fixture
def recorder():
    made = []

    def make(answer: dict, status: int = 200) -> Recorder:
        made.append(Recorder(answer, status))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_a_thanos_querier_is_asked_to_deduplicate_and_answer_in_part_and_its_warnings_are_kept(recorder):
    thanos = recorder(matrix([({"pod": "a"}, [1, 2])], warnings=["store eu-1 did not answer"]))
    end = timezone.now()

    answer = prom.query_range(
        Endpoint(url=f"http://127.0.0.1:{thanos.port}/thanos"), "up", end - timedelta(hours=1), end
    )

    assert answer.warnings == ["store eu-1 did not answer"]
    assert [s.points for s in answer.series] == [[(1_700_000_000.0, 1.0), (1_700_000_015.0, 2.0)]]
    (asked,) = thanos.asked
    assert asked["path"] == "/thanos/api/v1/query_range"
    assert asked["dedup"] == ["true"] and asked["partial_response"] == ["true"]
    assert asked["step"] == ["15s"] and asked["query"] == ["up"]


def test_a_plain_prometheus_is_not_sent_thanos_parameters(recorder):
    plain = recorder(matrix([({"pod": "a"}, [1])]))
    end = timezone.now()

    answer = prom.query_range(f"http://127.0.0.1:{plain.port}", "up", end - timedelta(days=7), end)

    (asked,) = plain.asked
    assert "dedup" not in asked and "partial_response" not in asked
    assert asked["step"] == ["1h"] and answer.warnings == []


def test_an_answer_of_many_series_keeps_the_highest_and_counts_them_all(recorder):
    many = recorder(matrix([({"pod": f"p{i:02}"}, [i, i / 2, float("nan")]) for i in range(57)]))
    end = timezone.now()

    answer = prom.query_range(f"http://127.0.0.1:{many.port}", "x", end - timedelta(hours=1), end)

    assert answer.total == 57 and answer.cut
    assert [s.labels["pod"] for s in answer.series] == [f"p{i:02}" for i in range(56, 36, -1)]


def test_an_answer_too_large_is_refused_with_a_sentence(recorder, monkeypatch):
    monkeypatch.setattr(prom, "MAX_RANGE_BYTES", 2 * 2**20)
    large = recorder(matrix([({"pod": f"pod-{i}-" + "x" * 200}, [1.0] * 250) for i in range(400)]))
    end = timezone.now()

    with pytest.raises(prom.PrometheusError) as refused:
        prom.query_range(f"http://127.0.0.1:{large.port}", "x", end - timedelta(hours=1), end)

    assert str(refused.value) == (
        f"Prometheus at http://127.0.0.1:{large.port} answered more than 2 MiB for this query; ask for fewer series "
        "(sum by a label, or topk)."
    )


def test_a_range_query_prometheus_cannot_parse_is_refused_with_its_reason(metrics):
    end = timezone.now()

    with pytest.raises(prom.PrometheusError) as refused:
        prom.query_range(metrics.url, "sum(rate(x[5m])", end - timedelta(hours=1), end)

    assert not isinstance(refused.value, prom.Unreachable)
    assert "parse error" in str(refused.value)


def test_an_unreachable_prometheus_is_unreachable():
    end = timezone.now()

    with pytest.raises(prom.Unreachable, match=r"could not be reached"):
        prom.query_range("http://127.0.0.1:9", "up", end - timedelta(hours=1), end)
