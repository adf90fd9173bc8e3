"""Instant PromQL queries against a cluster's Prometheus (Cluster.prometheus_url), with errors as sentences.

The one door to Prometheus's HTTP API (``GET /api/v1/query``) through
prometheus-api-client. Callers get ``Sample`` values or a ``PrometheusError``
whose text is the translated sentence to show: not configured, did not answer,
refused the query (with Prometheus's own parse error), or answered with no data.
URLs carry no credentials (the cluster registry refuses them); one that did is
still shown and used without its user:password part.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.observability.endpoints import Endpoint, shown_url  # noqa: F401 (shown_url: the door's callers use it)

TIMEOUT = 5


class PrometheusError(Failure):
    """The query gave no usable answer; the message is the sentence to show, ``stored`` the one to keep in a row
    (a canary check's detail is read later, in its reader's language)."""


class NoData(PrometheusError):
    """Prometheus answered, but the query matched no series."""


@dataclass(frozen=True)
class Sample:
    labels: dict
    value: float


Source = str | Endpoint  # an address alone (no credentials), or a cluster's endpoint (endpoints.prometheus)


def _endpoint(source: Source) -> Endpoint:
    return source if isinstance(source, Endpoint) else Endpoint(url=source or "")


def _connect(endpoint: Endpoint) -> PrometheusConnect:
    # Credentials come from the cluster's encrypted row, never from the URL (the registry refuses URLs carrying
    # them: they would be stored and shown in clear). One attempt: an analysis runs again on its own schedule, a
    # page should not hang on a dead Prometheus.
    return PrometheusConnect(
        url=endpoint.base,
        headers=endpoint.headers or None,
        auth=endpoint.auth,
        retry=Retry(total=0),
        timeout=TIMEOUT,
    )


def _status(exc: PrometheusApiClientException) -> int | None:
    match = re.match(r"HTTP Status Code (\d{3})", str(exc))
    return int(match.group(1)) if match else None


def _refusal(exc: PrometheusApiClientException) -> str:
    """Prometheus's own error text out of 'HTTP Status Code 400 (b'{"status":"error",...}')'."""
    text = str(exc)
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        try:
            body = json.loads(text[start : end + 1].encode().decode("unicode_escape"))
            return str(body.get("error") or text)
        except ValueError:
            pass
    return text


def query(source: Source, promql: str) -> list[Sample]:
    """Run ``promql`` now; every series of the answer as a Sample (a scalar answer is one Sample without labels)."""
    endpoint = _endpoint(source)
    if not endpoint.url:
        raise PrometheusError(D(N_("No Prometheus URL is set for this cluster.")))
    values = {"url": endpoint.shown}
    try:
        with _connect(endpoint) as prom:
            result = prom.custom_query(promql)
    except PrometheusApiClientException as exc:
        if _status(exc) in (401, 403):
            if endpoint.auth or endpoint.token:
                sentence = N_(
                    "Prometheus at %(url)s refused Kubemate's credentials (HTTP %(status)s); check them in the "
                    "cluster's settings."
                )
            else:
                sentence = N_(
                    "Prometheus at %(url)s asks for credentials (HTTP %(status)s); set them in the cluster's settings."
                )
            raise PrometheusError(D(sentence, status=_status(exc), **values)) from None
        values["error"] = _refusal(exc)
        raise PrometheusError(D(N_("Prometheus at %(url)s refused the query: %(error)s"), **values)) from None
    except requests.Timeout:
        raise PrometheusError(
            D(N_("Prometheus at %(url)s did not answer within %(seconds)s seconds."), seconds=TIMEOUT, **values)
        ) from None
    except (requests.RequestException, ValueError, KeyError):
        raise PrometheusError(D(N_("Prometheus at %(url)s could not be reached."), **values)) from None
    samples = []
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        result = [{"metric": {}, "value": result}]  # a scalar or string answer
    for series in result or []:
        try:
            value = float(series["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        samples.append(Sample(labels=series.get("metric") or {}, value=value))
    return samples


def worst_value(source: Source, promql: str) -> float:
    """The highest value of the answer (every series must stay below a limit, so the highest is the one to judge).

    NaN (for example 0/0 when no request was made) counts as no data.
    """
    values = [s.value for s in query(source, promql) if not math.isnan(s.value)]
    if not values:
        raise NoData(D(N_("Prometheus returned no data for the query.")))
    return max(values)


def probe(source: Source) -> str | None:
    """None when Prometheus at ``source`` answers a trivial query; the sentence saying why not otherwise."""
    try:
        query(source, "vector(1)")
    except PrometheusError as exc:
        return str(exc)
    return None
