"""A vLLM server's traffic from the test Prometheus: its exporter serves vLLM's metric names for the server's pods
(and for another namespace's, which must not count), Prometheus scrapes them every second, and the page shows the
request rate, latency p95 and tokens per second. Ollama exports none; without Prometheus the page says so."""

import re
import threading
import time

import pytest
from django.urls import reverse

from apps.accounts.models import Project
from apps.ai.models import Endpoint
from apps.ai.servers import spec as server_spec
from apps.releases.models import Release
from tests.factories import ClusterFactory, UserFactory
from tests.helpers import free_port, grant, login, wait_for

REQUESTS_PER_SECOND = 20
TOKENS_PER_SECOND = 500


def _server(cluster, kind: str, name: str) -> Endpoint:
    project = Project.objects.create(cluster=cluster, slug=f"p-{name}", name=name, namespaces=["ai"])
    settings = server_spec.ServerSettings(
        name=name,
        kind=kind,
        image=server_spec.KINDS[kind].image,
        models=("Qwen/Qwen2.5-0.5B-Instruct",),
        gpus=1,
        gpu_resource=server_spec.GPU_RESOURCE,
        node_selector={},
        tolerations=(),
        volume=server_spec.Volume(mode="none"),
        cpu_request="2",
        cpu_limit="8",
        memory_request="8Gi",
        memory_limit="32Gi",
        port=server_spec.KINDS[kind].port,
    )
    release = Release.objects.create(
        project=project, namespace="ai", name=name, spec=server_spec.release_spec(settings)
    )
    url = server_spec.base_url(kind, name, "ai", settings.port)
    return Endpoint.objects.create(name=name, kind=kind, project=project, release=release, base_url=url)


class Traffic(threading.Thread):
    """vLLM's counters and latency histogram for one pod, growing at a steady pace, every 0.1 s."""

    def __init__(self, exporter, labels: dict, pace: float = 1.0):
        super().__init__(daemon=True)
        self.exporter, self.labels, self.pace = exporter, labels, pace
        self.stopping = threading.Event()

    def run(self):
        requests, tokens = 1000.0, 50000.0  # well above zero: Prometheus's extrapolation stops at zero otherwise
        while not self.stopping.is_set():
            requests += REQUESTS_PER_SECOND * self.pace / 10
            tokens += TOKENS_PER_SECOND * self.pace / 10
            self.exporter.set("vllm:request_success_total", {**self.labels, "finished_reason": "stop"}, requests)
            self.exporter.set("vllm:generation_tokens_total", self.labels, tokens)
            # Every request took between 1 s and 2.5 s: p95 interpolates to 1 + 1.5 × 0.95 = 2.425 s.
            for bound, count in (("0.5", 0.0), ("1.0", 0.0), ("2.5", requests), ("+Inf", requests)):
                self.exporter.set("vllm:e2e_request_latency_seconds_bucket", {**self.labels, "le": bound}, count)
            time.sleep(0.1)


@pytest.fixture
def traffic(metrics):
    threads = []

    def start(labels: dict, pace: float = 1.0):
        thread = Traffic(metrics.exporter, labels, pace)
        thread.start()
        threads.append(thread)

    yield start
    for thread in threads:
        thread.stopping.set()
        thread.join(2)


def _value(html: str, testid: str) -> float:
    match = re.search(rf'data-testid="{testid}">([0-9.]+)', html)
    assert match, html
    return float(match.group(1))


def test_a_vllm_servers_rate_latency_and_tokens_per_second_come_from_prometheus(client, db, metrics, traffic, settings):
    # Rates are averaged over the window (5 minutes by default): a 10 s window is full after 10 s of traffic.
    settings.KUBEMATE_AI_METRICS_WINDOW = "10s"
    endpoint = _server(ClusterFactory(prometheus_url=metrics.url), "vllm", "llm-vllm")
    model = {"model_name": "Qwen/Qwen2.5-0.5B-Instruct", "job": "vllm"}
    traffic({**model, "namespace": "ai", "pod": "llm-vllm-7d9f8c6b5d-x2x4q"})
    traffic({**model, "namespace": "other", "pod": "llm-vllm-7d9f8c6b5d-zzzzz"}, pace=50)  # not this server
    traffic({**model, "namespace": "ai", "pod": "llm-vllm-canary-6c8d9f7b4-abcde"}, pace=50)  # its canary
    query = 'sum(rate(vllm:request_success_total{namespace="ai"}[10s]))'
    assert wait_for(lambda: len(metrics.query(query)) and float(metrics.query(query)[0]["value"][1]) > 0, 30)
    time.sleep(11)  # the window fills
    user = UserFactory()
    grant(user, "viewer", project=endpoint.project)

    response = login(client, user).get(reverse("ai:server_live", args=[endpoint.pk]) + "?part=metrics")

    html = response.content.decode()
    assert response.status_code == 200
    assert REQUESTS_PER_SECOND * 0.6 < _value(html, "metric-request-rate") < REQUESTS_PER_SECOND * 1.6
    assert _value(html, "metric-latency-p95") == pytest.approx(2.425, abs=0.01)
    assert TOKENS_PER_SECOND * 0.6 < _value(html, "metric-tokens") < TOKENS_PER_SECOND * 1.6


def test_a_vllm_server_prometheus_has_no_series_of_is_a_sentence(client, admin_user, metrics):
    endpoint = _server(ClusterFactory(prometheus_url=metrics.url), "vllm", "llm-quiet")

    response = login(client, admin_user).get(reverse("ai:server_live", args=[endpoint.pk]) + "?part=metrics")

    assert response.status_code == 200
    assert "Prometheus has no vLLM metrics of this server yet" in response.content.decode()


def test_ollama_exports_no_metrics_and_a_cluster_without_prometheus_says_so(client, admin_user):
    ollama = _server(ClusterFactory(), "ollama", "llm-ollama")
    vllm = _server(ClusterFactory(), "vllm", "llm-vllm")
    login(client, admin_user)

    said_ollama = client.get(reverse("ai:server_live", args=[ollama.pk]) + "?part=metrics")
    said_vllm = client.get(reverse("ai:server_live", args=[vllm.pk]) + "?part=metrics")

    assert "Ollama exports no metrics" in said_ollama.content.decode()
    assert "No Prometheus URL is set for this cluster." in said_vllm.content.decode()


def test_an_unreachable_prometheus_is_a_sentence(client, admin_user):
    endpoint = _server(ClusterFactory(prometheus_url=f"http://127.0.0.1:{free_port()}"), "vllm", "llm-vllm")

    response = login(client, admin_user).get(reverse("ai:server_live", args=[endpoint.pk]) + "?part=metrics")

    assert response.status_code == 200
    assert "could not be reached" in response.content.decode()
