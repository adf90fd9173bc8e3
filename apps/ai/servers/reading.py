"""What the model server pages read: each server's state (ready pods, from the inventory), the models it serves
(asked live through apps/ai/llm.py) and its traffic (vLLM's metrics through apps/observability/prometheus.py). No
writes; every failure is a sentence for the page, never an exception.

vLLM exports Prometheus metrics at ``/metrics``; the queries keep the series of the release's namespace and of the
pods of its Deployment (``<name>-<replica set hash>-<suffix>``, so a canary's pods are not counted):

- requests per second: ``sum(rate(vllm:request_success_total[5m]))`` (the window: ``window()``)
- latency p95: ``histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket[5m])))``
- generated tokens per second: ``sum(rate(vllm:generation_tokens_total[5m]))``

Ollama exports no metrics; external endpoints are not in a cluster Kubemate knows the Prometheus of.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext as _

from apps.ai import llm
from apps.ai.models import Endpoint
from apps.clusters.models import Resource
from apps.observability import endpoints as observability_endpoints
from apps.observability import prometheus
from apps.releases import services as release_services


def window() -> str:
    """The range the rates are taken over (a PromQL duration; 5m unless settings.KUBEMATE_AI_METRICS_WINDOW)."""
    return str(getattr(settings, "KUBEMATE_AI_METRICS_WINDOW", "5m"))


QUERIES = {
    "request_rate": "sum(rate(vllm:request_success_total{%(selector)s}[%(window)s]))",
    "latency_p95": (
        "histogram_quantile(0.95, sum by (le) "
        "(rate(vllm:e2e_request_latency_seconds_bucket{%(selector)s}[%(window)s])))"
    ),
    "tokens_per_second": "sum(rate(vllm:generation_tokens_total{%(selector)s}[%(window)s]))",
}


@dataclass
class State:
    """An in-cluster server's Deployment as the inventory last saw it."""

    word: str = ""  # Available, Progressing, Degraded, ScaledDown; "" before the inventory saw it
    ready: int = 0
    desired: int = 0
    seen: bool = False


@dataclass
class Models:
    models: list[llm.ModelInfo] = field(default_factory=list)
    sentence: str = ""  # why the models could not be listed, in the reader's language


@dataclass
class Metrics:
    request_rate: float | None = None  # requests per second
    latency_p95: float | None = None  # seconds
    tokens_per_second: float | None = None
    sentence: str = ""  # why there are none, in the reader's language
    window: str = ""

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.request_rate, self.latency_p95, self.tokens_per_second))


def states(endpoints: list[Endpoint]) -> dict[int, State]:
    """The state of each in-cluster server of ``endpoints`` (by endpoint id), in one query."""
    places = {
        (e.release.project.cluster_id, e.release.namespace, e.release.name): e.pk for e in endpoints if e.release_id
    }
    found = {pk: State() for pk in places.values()}
    if not places:
        return found
    where = reduce(or_, (Q(cluster_id=cluster, namespace=namespace, name=name) for cluster, namespace, name in places))
    rows = Resource.objects.filter(where, kind="Deployment").only(
        "cluster_id", "namespace", "name", "status", "summary"
    )
    for row in rows:
        summary = row.summary or {}
        found[places[(row.cluster_id, row.namespace, row.name)]] = State(
            word=row.status or "",
            ready=int(summary.get("ready") or 0),
            desired=int(summary.get("desired") or 0),
            seen=True,
        )
    return found


def pods(endpoint: Endpoint) -> list[Resource]:
    """The server's pods as the inventory holds them (with the node each runs on)."""
    return release_services.pod_rows(endpoint.release) if endpoint.release_id else []


def models(endpoint: Endpoint) -> Models:
    """The models the server lists now; an in-cluster server the console cannot reach (it runs outside the
    cluster's network, or the server is not up) is a sentence saying so."""
    try:
        return Models(models=llm.list_models(endpoint))
    except llm.LLMError as exc:
        if endpoint.release_id:
            return Models(
                sentence=_(
                    "Not reachable from the console: %(reason)s Pods in the cluster reach it at %(url)s; the "
                    "console lists its models when it runs inside the cluster's network."
                )
                % {"reason": exc.sentence, "url": endpoint.base_url}
            )
        return Models(sentence=str(exc.sentence))


def selector(endpoint: Endpoint) -> str:
    release = endpoint.release
    # Both are DNS labels (the release's check constraint): nothing to escape in a PromQL string.
    return f'namespace="{release.namespace}",pod=~"{release.name}-[a-z0-9]+-[a-z0-9]+"'


def metrics(endpoint: Endpoint) -> Metrics:
    """Request rate, latency p95 and tokens per second of a vLLM server, from its cluster's Prometheus."""
    if endpoint.release_id is None:
        return Metrics(sentence=_("An external endpoint: Kubemate does not read its metrics."))
    if endpoint.kind != Endpoint.Kind.VLLM:
        return Metrics(sentence=_("Ollama exports no metrics: no request rate, latency or tokens per second."))
    source = observability_endpoints.prometheus(endpoint.release.project.cluster)
    values = {"selector": selector(endpoint), "window": window()}
    found = Metrics(window=values["window"])
    for name, query in QUERIES.items():
        try:
            samples = prometheus.query(source, query % values)
        except prometheus.PrometheusError as exc:
            return Metrics(sentence=str(exc))  # not configured or unreachable: the next queries would say the same
        finite = [s.value for s in samples if math.isfinite(s.value)]
        setattr(found, name, finite[0] if finite else None)
    if not found.any:
        found.sentence = _(
            "Prometheus has no vLLM metrics of this server yet: it exports them at /metrics once it serves; make "
            "sure Prometheus scrapes its pods."
        )
    return found
