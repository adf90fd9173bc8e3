"""PromQL queries against a cluster's Prometheus (Cluster.prometheus_url), with errors as sentences.

The one door to Prometheus's HTTP API (``GET /api/v1/query`` and ``/api/v1/query_range``) through
prometheus-api-client. Callers get ``Sample`` values (``query``), a ``Range`` of series (``query_range``: the step
chosen by ``choose_step`` so that no series carries more than ``MAX_POINTS`` points, at most ``MAX_SERIES`` series
kept, answers over ``MAX_RANGE_BYTES`` refused, a Thanos Querier asked with ``dedup`` and ``partial_response`` and
its warnings kept) or a ``PrometheusError`` whose text is the translated sentence to show: not configured
(``NotConfigured``), did not answer or refused Kubemate's credentials (``Unreachable``), refused the query (with
Prometheus's own parse error), or answered with no data (``NoData``).
URLs carry no credentials (the cluster registry refuses them); one that did is
still shown and used without its user:password part.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from urllib3.util.retry import Retry

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.observability.endpoints import Endpoint, shown_url  # noqa: F401 (shown_url: the door's callers use it)

if TYPE_CHECKING:  # requests and prometheus-api-client are imported when a query is made, not with the module
    import requests
    from prometheus_api_client import PrometheusConnect
    from prometheus_api_client.exceptions import PrometheusApiClientException

TIMEOUT = 5


class PrometheusError(Failure):
    """The query gave no usable answer; the message is the sentence to show, ``stored`` the one to keep in a row
    (a canary check's detail is read later, in its reader's language)."""


class NoData(PrometheusError):
    """Prometheus answered, but the query matched no series."""


class NotConfigured(PrometheusError):
    """The cluster has no Prometheus address."""


class Unreachable(PrometheusError):
    """Prometheus did not answer, or refused Kubemate itself (credentials): asking again now is no use."""


@dataclass(frozen=True)
class Sample:
    labels: dict
    value: float


Source = str | Endpoint  # an address alone (no credentials), or a cluster's endpoint (endpoints.prometheus)


def _endpoint(source: Source) -> Endpoint:
    return source if isinstance(source, Endpoint) else Endpoint(url=source or "")


def _connect(endpoint: Endpoint, session: requests.Session | None = None) -> PrometheusConnect:
    from prometheus_api_client import PrometheusConnect

    # Credentials come from the cluster's encrypted row, never from the URL (the registry refuses URLs carrying
    # them: they would be stored and shown in clear). One attempt: an analysis runs again on its own schedule, a
    # page should not hang on a dead Prometheus.
    return PrometheusConnect(
        url=endpoint.base,
        headers=endpoint.headers or None,
        auth=endpoint.auth,
        retry=Retry(total=0),
        timeout=TIMEOUT,
        session=session,
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


@contextlib.contextmanager
def _asking(endpoint: Endpoint):
    """Turn what can go wrong while asking ``endpoint`` into the door's sentences."""
    if not endpoint.url:
        raise NotConfigured(D(N_("No Prometheus URL is set for this cluster.")))
    import requests
    from prometheus_api_client.exceptions import PrometheusApiClientException

    values = {"url": endpoint.shown}
    try:
        yield
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
            raise Unreachable(D(sentence, status=_status(exc), **values)) from None
        values["error"] = _refusal(exc)
        raise PrometheusError(D(N_("Prometheus at %(url)s refused the query: %(error)s"), **values)) from None
    except requests.Timeout:
        raise Unreachable(
            D(N_("Prometheus at %(url)s did not answer within %(seconds)s seconds."), seconds=TIMEOUT, **values)
        ) from None
    except (requests.RequestException, ValueError, KeyError, TypeError):
        raise Unreachable(D(N_("Prometheus at %(url)s could not be reached."), **values)) from None


def query(source: Source, promql: str) -> list[Sample]:
    """Run ``promql`` now; every series of the answer as a Sample (a scalar answer is one Sample without labels)."""
    endpoint = _endpoint(source)
    with _asking(endpoint), _connect(endpoint) as prom:
        result = prom.custom_query(promql)
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


def build_version(source: Source, *, timeout: float = 3) -> str:
    """Prometheus's version (``GET /api/v1/status/buildinfo``; a Thanos Querier or another store that does not
    serve it answers ""). Errors are the door's sentences."""
    import requests
    from prometheus_api_client.exceptions import PrometheusApiClientException

    endpoint = _endpoint(source)
    with _asking(endpoint):
        answer = requests.get(
            f"{endpoint.base}/api/v1/status/buildinfo",
            headers=endpoint.headers or None,
            auth=endpoint.auth,
            timeout=timeout,
            stream=True,
        )
        try:
            if answer.status_code == 404:
                return ""
            if answer.status_code in (401, 403):
                raise PrometheusApiClientException(f"HTTP Status Code {answer.status_code} (b'')")
            body = answer.raw.read(64 * 1024, decode_content=True)
        finally:
            answer.close()
        data = json.loads(body or b"{}").get("data") or {}
        return str(data.get("version", ""))[:64] if isinstance(data, dict) else ""


def scrape_lag(source: Source) -> float | None:
    """Seconds since Prometheus's newest scrape of any target (``time() - max(timestamp(up))``); None with no
    targets."""
    samples = query(source, "time() - max(timestamp(up))")
    return samples[0].value if samples and math.isfinite(samples[0].value) else None


# --- range queries (charts) ------------------------------------------------------------------------------------

MAX_POINTS = 250  # points a series may carry: a chart's width in pixels gains nothing from more
MAX_SERIES = 20  # series a chart draws; the rest are counted and named in a sentence
MAX_RANGE_BYTES = 8 * 1024 * 1024  # a range answer larger than this is refused before it is parsed
# Round steps, so that points fall on whole minutes and hours and two charts of one range line up.
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True)
class Series:
    """One series of a range answer: its labels and its (unix seconds, value) points; NaN and ±Inf stay as floats."""

    labels: dict
    points: list[tuple[float, float]]

    @property
    def peak(self) -> float:
        finite = [v for _t, v in self.points if math.isfinite(v)]
        return max(finite) if finite else -math.inf


@dataclass(frozen=True)
class Range:
    """A range answer: the series kept (the ``MAX_SERIES`` highest), how many there were, the step and warnings
    (a Thanos Querier's partial answers say which store did not answer)."""

    series: list[Series]
    total: int
    step: int
    warnings: list[str]

    @property
    def cut(self) -> bool:
        return self.total > len(self.series)


def choose_step(start: datetime, end: datetime, max_points: int = MAX_POINTS, min_step: int = 1) -> int:
    """The smallest round step (seconds, at least ``min_step``) that gives no series more than ``max_points``."""
    span = max(int((end - start).total_seconds()), 0)
    for step in STEPS:
        if step >= min_step and span // step + 1 <= max_points:
            return step
    days = math.ceil(span / max(max_points - 1, 1) / 86400)  # beyond 250 days of range: whole days
    return max(days * 86400, min_step)


def points_in(start: datetime, end: datetime, step: int) -> int:
    """How many points Prometheus answers per series for this range and step."""
    return max(int((end - start).total_seconds()), 0) // step + 1


def duration(seconds: int) -> str:
    """Seconds as a PromQL duration: 15s, 2m, 1h, 1d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@functools.cache
def _bounded_session_class() -> type[requests.Session]:
    """``_BoundedSession``, made on first use: it subclasses ``requests.Session``, and requests is not imported with
    this module."""
    import requests

    class _BoundedSession(requests.Session):
        """A session that reads at most MAX_RANGE_BYTES of an answer and keeps the last answer's ``warnings``.

        prometheus-api-client returns only ``data.result``; the warnings a Thanos Querier adds to a partial answer
        are read here, from the same answer, instead of asking twice.
        """

        def __init__(self, limit: int) -> None:
            super().__init__()
            self.limit = limit
            self.warnings: list[str] = []
            self.too_large = False

        def request(self, method, url, **kwargs):
            kwargs["stream"] = True
            response = super().request(method, url, **kwargs)
            body = response.raw.read(self.limit + 1, decode_content=True)
            response.close()
            if len(body) > self.limit:
                self.too_large = True
                body = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'
            elif b'"warnings"' in body:
                with contextlib.suppress(ValueError, AttributeError):
                    self.warnings = [str(w) for w in json.loads(body).get("warnings") or []]
            response._content = body
            response._content_consumed = True
            return response

    return _BoundedSession


def thanos_params(endpoint: Endpoint) -> dict[str, str]:
    """What a Thanos Querier is asked besides the query: merge the replicas of an HA pair (``dedup``), and answer
    with what the stores that did answer hold, with a warning, rather than nothing (``partial_response``)."""
    return {"dedup": "true", "partial_response": "true"} if endpoint.is_thanos else {}


def query_range(
    source: Source,
    promql: str,
    start: datetime,
    end: datetime,
    step: int | None = None,
    *,
    max_series: int = MAX_SERIES,
    max_points: int = MAX_POINTS,
) -> Range:
    """Run ``promql`` over ``start``..``end`` every ``step`` seconds (chosen by ``choose_step`` when None, and
    widened when a given step would give a series more than ``max_points``); the ``max_series`` series with the
    highest peaks, the rest counted in ``Range.total``."""
    endpoint = _endpoint(source)
    chosen = choose_step(start, end, max_points)
    step = max(step or chosen, chosen)
    session = _bounded_session_class()(MAX_RANGE_BYTES)
    with _asking(endpoint), _connect(endpoint, session=session) as prom:
        result = prom.custom_query_range(
            promql, start_time=start, end_time=end, step=duration(step), params=thanos_params(endpoint)
        )
    if session.too_large:
        raise PrometheusError(
            D(
                N_(
                    "Prometheus at %(url)s answered more than %(mib)s MiB for this query; ask for fewer series "
                    "(sum by a label, or topk)."
                ),
                url=endpoint.shown,
                mib=MAX_RANGE_BYTES // 2**20,
            )
        )
    series = []
    for item in result or []:
        points = []
        for pair in item.get("values") or []:
            try:
                points.append((float(pair[0]), float(pair[1])))
            except (IndexError, TypeError, ValueError):
                continue
        series.append(Series(labels=item.get("metric") or {}, points=points))
    kept = sorted(series, key=lambda s: (-s.peak, sorted(s.labels.items())))[:max_series]
    return Range(series=kept, total=len(series), step=step, warnings=session.warnings)


# --- alerting rules ---------------------------------------------------------------------------------------------

RULES_MAX_BYTES = 8 * 1024 * 1024  # a Prometheus with thousands of rules answers a few MiB


@dataclass(frozen=True)
class RuleState:
    """One alerting rule as Prometheus evaluates it (``GET /api/v1/rules?type=alert``)."""

    group: str
    file: str
    name: str
    state: str  # inactive, pending, firing
    health: str  # ok, err, unknown
    last_error: str
    firing: int  # alerts of the rule now pending or firing
    expr: str


def rules(source: Source) -> list[RuleState]:
    """Every alerting rule Prometheus has loaded, with its state; answers over RULES_MAX_BYTES are refused."""
    from prometheus_api_client.exceptions import PrometheusApiClientException

    endpoint = _endpoint(source)
    with _asking(endpoint), _connect(endpoint) as prom:
        response = prom._session.request(  # the client has no call for /api/v1/rules; same session, auth, timeout
            "GET",
            f"{prom.url}/api/v1/rules",
            params={"type": "alert"},
            headers=prom.headers,
            auth=prom.auth,
            timeout=TIMEOUT,
            stream=True,
        )
        if response.status_code != 200:
            raise PrometheusApiClientException(f"HTTP Status Code {response.status_code} ({response.content[:2000]!r})")
        body = response.raw.read(RULES_MAX_BYTES + 1, decode_content=True)
        if len(body) > RULES_MAX_BYTES:
            raise PrometheusError(
                D(N_("Prometheus at %(url)s answered more than %(mib)s MiB of rules."), url=endpoint.shown, mib=8)
            )
        groups = json.loads(body)["data"]["groups"]
        found = []
        for group in groups:
            for rule in group.get("rules") or []:
                if rule.get("type") != "alerting":
                    continue
                found.append(
                    RuleState(
                        group=str(group.get("name", "")),
                        file=str(group.get("file", "")),
                        name=str(rule.get("name", "")),
                        state=str(rule.get("state", "inactive")),
                        health=str(rule.get("health", "unknown")),
                        last_error=str(rule.get("lastError", "")),
                        firing=len(rule.get("alerts") or []),
                        expr=str(rule.get("query", "")),
                    )
                )
        return found
