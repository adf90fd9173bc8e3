"""Charts of one place for one person: the time window, the queries they may run, the answers as chart data.

``board`` takes the catalogue's charts of a place, leaves out the cluster-wide ones for people who do not see the
whole cluster (``places.sees_whole_cluster``), fills the placeholders, passes every query through the PromQL
tenancy rewrite (``promql.for_user``, capability ``metrics.view``), asks Prometheus through its one door
(``prometheus.query_range``) a few queries at a time, and gives each chart either its series (named, cut to
``prometheus.MAX_SERIES`` with a sentence, shifted to the reader's time zone for ECharts) or a sentence saying
why there is nothing to draw. A Prometheus that is missing or does not answer is one sentence for the whole board.
``explore`` does the same for one typed query.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.accounts.capabilities import METRICS_VIEW
from apps.clusters.inventory.words import duration_words
from apps.core.deferred import N_, render
from apps.core.deferred import text as D
from apps.observability import endpoints, prometheus, promql
from apps.observability.metrics import catalogue, places

RANGES = {
    "15m": (15 * 60, gettext_lazy("15 min")),
    "1h": (3600, gettext_lazy("1 h")),
    "6h": (6 * 3600, gettext_lazy("6 h")),
    "24h": (24 * 3600, gettext_lazy("24 h")),
    "7d": (7 * 86400, gettext_lazy("7 d")),
}
DEFAULT_RANGE = "1h"
CUSTOM = "custom"
REFRESH = {
    "off": (0, gettext_lazy("Off")),
    "30s": (30, gettext_lazy("30 s")),
    "1m": (60, gettext_lazy("1 min")),
    "5m": (300, gettext_lazy("5 min")),
}
CUSTOM_MIN = timedelta(minutes=1)
CUSTOM_MAX = timedelta(days=31)
LOCAL_INPUT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends, in the reader's time zone
QUERY_MAX_CHARS = promql.MAX_CHARS  # a typed query longer than this is refused before anything parses it
EXPLORE_MAX_SERIES = 50
PARALLEL = 4  # queries of one board asked at once

SOURCES = {
    "cadvisor": "cAdvisor",
    "kube-state-metrics": "kube-state-metrics",
    "node-exporter": "node-exporter",
    "apiserver": "kube-apiserver",
}


def scrape_seconds() -> int:
    return int(getattr(settings, "KUBEMATE_PROMETHEUS_SCRAPE_SECONDS", 30))


# The time window ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The range a board shows: one of RANGES up to now, or custom; the step keeps every series within
    ``prometheus.MAX_POINTS`` points."""

    key: str
    start: datetime
    end: datetime
    step: int
    refresh: str = "off"
    problem: str = ""  # why the custom range asked for was not taken

    @property
    def refresh_seconds(self) -> int:
        return REFRESH[self.refresh][0]

    @property
    def points(self) -> int:
        return prometheus.points_in(self.start, self.end, self.step)

    @property
    def start_input(self) -> str:
        return timezone.localtime(self.start).strftime(LOCAL_INPUT)

    @property
    def end_input(self) -> str:
        return timezone.localtime(self.end).strftime(LOCAL_INPUT)

    def params(self) -> dict[str, str]:
        """The request parameters that give this window again (a relative range moves on with time)."""
        values = {"range": self.key, "refresh": self.refresh}
        if self.key == CUSTOM and not self.problem:
            values.update({"from": self.start_input, "to": self.end_input})
        return values


def _window(key: str, start: datetime, end: datetime, refresh: str, problem: str = "") -> Window:
    """The window with its step. The points fall back from the end, as Prometheus's own graph places them (not on
    a grid from the start, as Grafana does): the newest scrape is always the last point, even over 7 days."""
    step = prometheus.choose_step(start, end, min_step=max(1, scrape_seconds() // 2))
    return Window(key, start, end, step, refresh, problem)


def _local(text: str) -> datetime | None:
    try:
        naive = datetime.strptime(str(text or "")[:32].strip(), LOCAL_INPUT)
    except ValueError:
        return None
    return timezone.make_aware(naive, timezone.get_current_timezone())


def window_from(params, now: datetime | None = None) -> Window:
    """The window a request asks for (``range``, ``from`` and ``to`` in the reader's time zone, ``refresh``);
    anything unreadable falls back to the last hour, a custom range that cannot be shown says why."""
    now = (now or timezone.now()).replace(microsecond=0) + timedelta(seconds=1)  # the newest scrape counts
    key = str(params.get("range") or DEFAULT_RANGE)
    refresh = str(params.get("refresh") or "off")
    refresh = refresh if refresh in REFRESH else "off"
    if key == CUSTOM:
        start, end = _local(params.get("from")), _local(params.get("to"))
        problem = ""
        if start is None or end is None:
            problem = _("Choose a start and an end for the custom range.")
        else:
            end = min(end, now)
            if end - start < CUSTOM_MIN:
                problem = _("The custom range must end at least a minute after it starts, and not in the future.")
            elif end - start > CUSTOM_MAX:
                problem = _("The custom range may cover at most 31 days.")
        if not problem:
            return _window(CUSTOM, start, end, refresh)
        return _window(CUSTOM, now - timedelta(seconds=RANGES[DEFAULT_RANGE][0]), now, refresh, problem)
    if key not in RANGES:
        key = DEFAULT_RANGE
    return _window(key, now - timedelta(seconds=RANGES[key][0]), now, refresh)


def step_words(seconds: int) -> str:
    return duration_words(seconds)


# Boards ------------------------------------------------------------------------------------------------------


@dataclass
class Drawn:
    """One chart as shown: its series for ECharts, the queries as run, or the sentence said instead."""

    key: str
    title: str
    unit: str
    stack: bool = False
    series: list[dict] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    sentence: str = ""
    shown: int = 0
    total: int = 0
    warnings: list[str] = field(default_factory=list)
    last: list[tuple[str, float | None]] = field(default_factory=list)  # the explorer's table

    @property
    def cut(self) -> bool:
        return self.total > self.shown


@dataclass
class Board:
    place: str
    window: Window
    charts: list[Drawn] = field(default_factory=list)
    sentence: str = ""  # the whole board: Prometheus missing or not answering
    missing: bool = False  # no Prometheus address: those who manage the cluster get a link to its settings
    left_out: int = 0  # cluster-wide charts the reader does not see

    def chart_data(self) -> dict:
        """What static/kubemate/charts.js draws: each chart's series by its key, and the words of the units."""
        span = self._span()
        data = {d.key: {"unit": d.unit, "stack": d.stack, "series": d.series, **span} for d in self.charts if d.series}
        return {**data, "labels": unit_labels()}

    def _span(self) -> dict:
        return {"start": _shifted_ms(self.window.start.timestamp()), "end": _shifted_ms(self.window.end.timestamp())}


def unit_labels() -> dict:
    return {
        "cores": _("cores"),
        "per_second": _("req/s"),
    }


def _offset(seconds: float) -> float:
    moment = datetime.fromtimestamp(seconds, tz=timezone.get_current_timezone())
    return moment.utcoffset().total_seconds()


def _shifted_ms(seconds: float, offsets: dict | None = None) -> int:
    """A time as ECharts draws it in UTC mode: shifted to the reader's time zone (not the browser's)."""
    if offsets is None:
        return int((seconds + _offset(seconds)) * 1000)
    if seconds not in offsets:
        offsets[seconds] = _offset(seconds)
    return int((seconds + offsets[seconds]) * 1000)


def _value(value: float) -> float | None:
    return float(f"{value:.10g}") if math.isfinite(value) else None


def _points(points: list[tuple[float, float]], step: int, offsets: dict) -> list[list]:
    """Points for ECharts, with a gap (null) where Prometheus had no sample for more than a step."""
    drawn: list[list] = []
    previous = None
    for t, v in points:
        if previous is not None and t - previous > step * 1.5:
            drawn.append([_shifted_ms(previous + step, offsets), None])
        drawn.append([_shifted_ms(t, offsets), _value(v)])
        previous = t
    return drawn


def _series_name(query: catalogue.Query, labels: dict) -> str:
    if query.by:
        return str(labels.get(query.by) or "—")
    if query.name:
        return str(query.name)
    return labels_text(labels)


def labels_text(labels: dict) -> str:
    name = labels.get("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{inner}}}" if inner or not name else name


def _ask(endpoint, text: str, window: Window, max_series: int):
    try:
        return prometheus.query_range(endpoint, text, window.start, window.end, window.step, max_series=max_series)
    except prometheus.PrometheusError as exc:
        return exc


def _run(endpoint, texts: list[str], window: Window, max_series: int) -> list:
    if len(texts) <= 1:
        return [_ask(endpoint, t, window, max_series) for t in texts]
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(texts))) as pool:
        return list(pool.map(lambda t: _ask(endpoint, t, window, max_series), texts))


NO_DATA = N_("No data in this time range.")
NO_DATA_FROM = N_("No data in this time range: this chart reads %(source)s metrics; check that Prometheus scrapes it.")


def board(user, cluster, place: str, window: Window, *, namespace: str = "", name: str = "") -> Board:
    """The charts of ``place`` (a key of ``catalogue.CHARTS``) for ``namespace``/``name`` as ``user`` may see them."""
    result = Board(place=place, window=window)
    endpoint = endpoints.prometheus(cluster)
    if not endpoint.url:
        result.sentence, result.missing = _("No Prometheus is set for this cluster, so there are no charts."), True
        return result
    whole = places.sees_whole_cluster(user, cluster)
    rate_window = catalogue.window(window.step, scrape_seconds())
    planned: list[tuple[catalogue.Chart, list[catalogue.Query], list[str], str]] = []
    for chart in catalogue.CHARTS[place]:
        queries = [q for q in chart.queries if whole or not q.cluster_wide]
        if not queries:
            result.left_out += 1
            continue
        try:
            texts = [
                promql.for_user(
                    user,
                    cluster,
                    catalogue.fill(q.promql, rate_window=rate_window, namespace=namespace, name=name, place=place),
                    capability=METRICS_VIEW,
                )
                for q in queries
            ]
        except catalogue.BadName:
            planned.append((chart, queries, [], _("This object's name cannot be used in a query.")))
            continue
        except promql.PromQLError as exc:
            planned.append((chart, queries, [], render(exc.stored)))
            continue
        planned.append((chart, queries, texts, ""))
    asked = [text for _chart, _queries, texts, _sentence in planned for text in texts]
    answers = iter(_run(endpoint, asked, window, prometheus.MAX_SERIES))
    offsets: dict = {}
    for chart, queries, texts, sentence in planned:
        drawn = Drawn(key=chart.key, title=str(chart.title), unit=chart.unit, stack=chart.stack, queries=texts)
        drawn.sentence = sentence
        refusals = []
        for query, _text in zip(queries, texts, strict=False):
            answer = next(answers)
            if isinstance(answer, prometheus.Unreachable | prometheus.NotConfigured):
                result.sentence, result.charts = render(answer.stored), []
                return result
            if isinstance(answer, prometheus.PrometheusError):
                refusals.append(render(answer.stored))
                continue
            _add(drawn, query, answer, window, offsets)
        if not drawn.sentence and not drawn.series:
            drawn.sentence = refusals[0] if refusals else _no_data(chart)
        result.charts.append(drawn)
    return result


def _no_data(chart: catalogue.Chart) -> str:
    source = _source_of(chart)
    return render(D(NO_DATA_FROM, source=source)) if source else _(NO_DATA)


def _source_of(chart: catalogue.Chart) -> str:
    """The exporter the chart's first query reads, named for the sentence that says there is no data."""
    text = chart.queries[0].promql
    for needle, source in (
        ("kube_", "kube-state-metrics"),
        ("container_", "cadvisor"),
        ("node_", "node-exporter"),
        ("apiserver_", "apiserver"),
    ):
        if needle in text:
            return SOURCES[source]
    return ""


def _add(drawn: Drawn, query: catalogue.Query | None, answer: prometheus.Range, window: Window, offsets) -> None:
    drawn.total += answer.total
    drawn.warnings += answer.warnings
    for series in answer.series:
        name = _series_name(query, series.labels) if query else labels_text(series.labels)
        points = _points(series.points, answer.step, offsets)
        if not points:
            continue
        drawn.series.append({"name": name, "data": points, **({"dashed": True} if query and query.reference else {})})
        drawn.shown += 1
        last = next((v for _t, v in reversed(series.points) if math.isfinite(v)), None)
        drawn.last.append((name, last))


# The explorer ------------------------------------------------------------------------------------------------


def explore(user, cluster, text: str, window: Window) -> Board:
    """One typed query over the window, rewritten for the user's namespaces, as a chart and a table."""
    result = Board(place="explore", window=window)
    endpoint = endpoints.prometheus(cluster)
    if not endpoint.url:
        result.sentence, result.missing = _("No Prometheus is set for this cluster, so there are no charts."), True
        return result
    drawn = Drawn(key="explore", title=_("Result"), unit="")
    try:
        # Bounded (length, characters, nesting) before anything parses it, then narrowed to the user's namespaces.
        safe = promql.for_user(user, cluster, text.strip(), capability=METRICS_VIEW)
    except promql.PromQLError as exc:
        drawn.sentence = render(exc.stored)
    else:
        drawn.queries = [safe]
        answer = _ask(endpoint, safe, window, EXPLORE_MAX_SERIES)
        if isinstance(answer, prometheus.Unreachable | prometheus.NotConfigured):
            result.sentence = render(answer.stored)
            return result
        if isinstance(answer, prometheus.PrometheusError):
            drawn.sentence = render(answer.stored)
        else:
            _add(drawn, None, answer, window, {})
            if not drawn.series:
                drawn.sentence = _(NO_DATA)
    result.charts.append(drawn)
    return result
