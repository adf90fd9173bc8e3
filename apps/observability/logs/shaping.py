"""Log lines as the pages show them: time in the reader's zone to the millisecond, a level badge, where the line
comes from (with a link to the pod's page for those who may open it), the text escaped with its matches marked,
parsed fields, a trace link; and the volume histogram as stacked bars by level for static/kubemate/logs.js.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from html import escape as _escape
from urllib.parse import quote_plus, urlencode

from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.accounts import access
from apps.observability import logstore
from apps.observability.logs import forms
from apps.observability.logs.highlight import Marker

# Where a stream names its namespace, pod and container, by the shippers' usual field names.
STREAM_KEYS = {
    "namespace": ("namespace", "kubernetes.pod_namespace", "k8s.namespace.name", "kubernetes_namespace_name"),
    "pod": ("pod", "kubernetes.pod_name", "k8s.pod.name", "kubernetes_pod_name"),
    "container": ("container", "kubernetes.container_name", "k8s.container.name", "kubernetes_container_name"),
}


_HEX = re.compile(r"[0-9a-f]{1,64}")
_UNSAFE = re.compile(r"[&<>\"']")
_PLAIN = re.compile(r"[0-9A-Za-z_.\-]*")  # what quote_plus() leaves as it is


def escape(text: str) -> str:
    """html.escape() (what the template's autoescape did), skipped for the many values with nothing to escape."""
    return _escape(text) if _UNSAFE.search(text) else text


def _quoted(text: str) -> str:
    return text if _PLAIN.fullmatch(text) else quote_plus(text)


_TRACE_SLOT = "0traceslot0"


# Lines as shown ------------------------------------------------------------------------------------------------


@dataclass
class Shown:
    """One line as the page shows it."""

    key: str
    time: datetime | None
    time_text: str
    level: str
    namespace: str
    pod: str
    container: str
    html: str
    fields: list[tuple[str, str]]
    pod_url: str = ""
    trace_id: str = ""
    trace_url: str = ""
    context_query: str = ""
    cursor: str = ""
    anchor: bool = False  # the line a context was asked around
    time_iso: str = ""

    @property
    def level_label(self) -> str:
        return str(dict(forms.LEVEL_CHOICES).get(self.level, ""))


def level_of(value) -> str:
    """error, warn, info, debug or "" (the door normalises levels already; Kubernetes' lines have none)."""
    return logstore.normalise_level(value)


def time_text(moment: datetime | None, zone=None) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(zone) if zone is not None else timezone.localtime(moment)
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def stream_value(stream: dict, what: str) -> str:
    for key in STREAM_KEYS[what]:
        if stream.get(key):
            return str(stream[key])
    return ""


def _field_text(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class Shaper:
    """Shapes the lines of one answer: highlighting with one time budget, links decided once per namespace (and
    built once per pod), the parts of the context address that do not change from line to line quoted once."""

    def __init__(self, user, cluster, *, keyword: str = "", pattern: str = ""):
        self.user, self.cluster, self.keyword, self.pattern = user, cluster, keyword, pattern
        self.marker = Marker.for_search(keyword, pattern)
        self._pods: dict[str, bool] = {}
        self._pod_urls: dict[tuple[str, str], str] = {}
        self._places: dict[tuple[str, str, str], str] = {}
        self._traces = _traces_routed(self.cluster)
        self._trace_link = _trace_link(self.cluster) if self._traces else ""
        self._zone = timezone.get_current_timezone()
        self._cluster_part = urlencode([("cluster", str(cluster.pk))])
        self._search_part = "".join(
            f"&{urlencode([(name, value)])}" for name, value in (("q", keyword), ("regex", pattern)) if value
        )
        self.count = 0
        self.prefix = uuid.uuid4().hex[:6]  # row ids stay unique when pages of lines are added to the page

    def pod_url(self, namespace: str, pod: str) -> str:
        if not (namespace and pod):
            return ""
        found = self._pod_urls.get((namespace, pod))
        if found is not None:
            return found
        if namespace not in self._pods:
            self._pods[namespace] = access.may(
                self.user, access.capability_for("Pod"), cluster=self.cluster, namespace=namespace
            )
        found = ""
        if self._pods[namespace]:
            try:
                found = reverse("clusters:resource_detail", args=[self.cluster.pk, "pods", namespace, pod])
            except NoReverseMatch:
                found = ""
        self._pod_urls[(namespace, pod)] = found
        return found

    def trace_url(self, trace_id: str) -> str:
        if not (trace_id and self._traces):
            return ""
        if self._trace_link and _HEX.fullmatch(trace_id):  # what the door finds: reverse() would give the same
            return self._trace_link.replace(_TRACE_SLOT, trace_id)
        try:
            return reverse("observability:trace_detail", args=[self.cluster.pk, trace_id])
        except NoReverseMatch:
            return ""

    def _place(self, namespace: str, pod: str, container: str) -> str:
        """The context address's namespace, pod and container, quoted once per stream."""
        key = (namespace, pod, container)
        found = self._places.get(key)
        if found is None:
            pairs = [(k, v) for k, v in (("namespace", namespace), ("pod", pod), ("container", container)) if v]
            found = self._places[key] = f"&{urlencode(pairs)}" if pairs else ""
        return found

    def shape(self, line) -> Shown:
        self.count += 1
        stream = getattr(line, "stream", None) or {}
        namespace, pod = stream_value(stream, "namespace"), stream_value(stream, "pod")
        container = stream_value(stream, "container")
        fields = getattr(line, "fields", None) or {}
        trace_id = str(getattr(line, "trace_id", "") or "")
        cursor = str(getattr(line, "cursor", "") or "")
        moment = line.time
        iso = moment.isoformat() if moment else ""
        # The same text as urlencode() of (cluster, stream_id, time, cursor, namespace, pod, container, q, regex).
        stream_id = str(getattr(line, "stream_id", "") or "")
        context = (
            f"{self._cluster_part}&stream_id={_quoted(stream_id)}&time={_quoted(iso)}"
            f"&cursor={_quoted(cursor)}{self._place(namespace, pod, container)}{self._search_part}"
        )
        return Shown(
            key=f"l{self.prefix}{self.count}",
            time=moment,
            time_text=time_text(moment, self._zone),
            level=level_of(getattr(line, "level", "")),
            namespace=namespace,
            pod=pod,
            container=container,
            html=self.marker.mark(str(line.line)),
            fields=[(str(k), _field_text(v)) for k, v in sorted(fields.items())] if isinstance(fields, dict) else [],
            pod_url=self.pod_url(namespace, pod),
            trace_id=trace_id,
            trace_url=self.trace_url(trace_id),
            context_query=context,
            cursor=cursor,
            time_iso=iso,
        )


# Lines as HTML -------------------------------------------------------------------------------------------------

_BADGES = {"error": "bg-red-lt", "warn": "bg-orange-lt", "info": "bg-blue-lt"}


class Rows:
    """Lines as the rows of templates/observability/logs/search.html, one string a line built here: a template
    include a line cost a page of 200 lines 25-30 ms, these cost a few. Everything a line brings is escaped here as
    the template escaped it (the text arrives escaped and marked from highlight.py); the words are translated once
    a page. ``in_context``: rows under a line (the context partial) have no "Show context" of their own."""

    def __init__(self, *, in_context: bool = False):
        self.in_context = in_context
        self.context_url = escape(reverse("observability:logs_context"))
        self.levels = {key: escape(str(label)) for key, label in forms.LEVEL_CHOICES}
        self.trace = _("Trace")
        self.trace_title = _("Trace id")
        self.show_context = _("Show context")
        self._counts: dict[int, str] = {}

    def _fields_label(self, n: int) -> str:
        found = self._counts.get(n)
        if found is None:
            found = self._counts[n] = ngettext("%(n)s field", "%(n)s fields", n) % {"n": n}
        return found

    def row(self, line: Shown) -> str:
        level = line.level
        parts = [
            '<div class="list-group-item py-1 px-3',
            " bg-yellow-lt" if line.anchor else "",
            f'" data-testid="log-line" data-level="{escape(level)}" data-time="{escape(line.time_iso)}" '
            f'data-cursor="{escape(line.cursor)}"',
            ' data-anchor="1">' if line.anchor else ">",
            '\n<div class="d-flex flex-wrap flex-md-nowrap gap-2 align-items-baseline">'
            '<span class="font-monospace small text-secondary text-nowrap flex-shrink-0" data-testid="log-time">',
            escape(line.time_text),
            "</span>",
        ]
        if level:
            parts.append(
                f'<span class="badge flex-shrink-0 {_BADGES.get(level, "bg-secondary-lt")}" data-testid="log-level">'
                f"{self.levels.get(level, '')}</span>"
            )
        parts += [
            '<span class="small text-secondary text-nowrap flex-shrink-0" translate="no" data-testid="log-source">',
            escape(line.namespace),
            "/",
            f'<a href="{escape(line.pod_url)}" data-testid="log-pod">{escape(line.pod)}</a>'
            if line.pod_url
            else escape(line.pod),
            f"/{escape(line.container)}" if line.container else "",
            '</span><span class="font-monospace small flex-fill text-break" style="white-space: pre-wrap" '
            'translate="no" data-testid="log-text">',
            conditional_escape(line.html),
            '</span><span class="text-nowrap small flex-shrink-0">',
        ]
        if line.trace_url:
            parts.append(
                f'<a href="{escape(line.trace_url)}" class="me-2" data-testid="log-trace">'
                f'<i class="ti ti-route me-1"></i>{self.trace}</a>'
            )
        elif line.trace_id:
            parts.append(
                f'<span class="text-secondary me-2" translate="no" title="{self.trace_title}">'
                f"{escape(Truncator(line.trace_id).chars(12))}</span>"
            )
        if line.context_query and not self.in_context:
            parts.append(
                f' <button type="button" class="btn btn-sm btn-ghost-secondary py-0" '
                f'hx-get="{self.context_url}?{escape(line.context_query)}" hx-target="#ctx-{escape(line.key)}" '
                f'hx-swap="innerHTML" data-testid="log-context-button">{self.show_context}</button>'
            )
        parts.append("</span></div>")
        if line.fields:
            parts.append(
                '\n<details class="ms-md-5 mt-1" data-testid="log-fields"><summary class="small text-secondary">'
                f"{self._fields_label(len(line.fields))}</summary>"
                '<table class="table table-sm table-borderless mb-1 small w-auto"><tbody>'
            )
            parts += [
                '<tr data-testid="log-field"><th class="text-secondary fw-normal font-monospace pe-3" translate="no">'
                f'{escape(key)}</th><td class="font-monospace text-break" translate="no">{escape(value)}</td></tr>'
                for key, value in line.fields
            ]
            parts.append("</tbody></table></details>")
        if not self.in_context:
            parts.append(f'\n<div id="ctx-{escape(line.key)}"></div>')
        parts.append("</div>\n")
        return "".join(parts)

    def html(self, lines: list[Shown]) -> SafeString:
        return mark_safe("".join(self.row(line) for line in lines))  # noqa: S308 -- each piece escaped in row()


def rows_html(lines: list[Shown], *, in_context: bool = False) -> SafeString:
    """The rows of ``lines`` (see ``Rows``); "" for none."""
    return Rows(in_context=in_context).html(lines) if lines else mark_safe("")


def _trace_link(cluster) -> str:
    """The trace page's address with ``_TRACE_SLOT`` where the trace id goes (one reverse() a page, not a line)."""
    try:
        link = reverse("observability:trace_detail", args=[cluster.pk, _TRACE_SLOT])
    except NoReverseMatch:
        return ""
    return link if link.count(_TRACE_SLOT) == 1 else ""


def _traces_routed(cluster) -> bool:
    """The trace page exists (another part of the console builds it): until then trace ids are not links."""
    try:
        reverse("observability:trace_detail", args=[cluster.pk, "0"])
    except NoReverseMatch:
        return False
    return True


def _shifted_ms(moment: datetime) -> int:
    """A time as ECharts draws it in UTC mode: shifted to the reader's time zone (not the browser's)."""
    local = timezone.localtime(moment)
    return int((moment.timestamp() + local.utcoffset().total_seconds()) * 1000)


def chart_data(histogram, start: datetime, end: datetime) -> tuple[dict, int]:
    """The histogram as stacked bars by level, for static/kubemate/logs.js; and the number of lines it counts."""
    names = dict(forms.LEVEL_CHOICES) | {"other": _("Other")}
    series: dict[str, list] = {key: [] for key in (*forms.LEVELS, "other")}
    hits = 0
    half = int(histogram.step_seconds * 500)
    for moment, counts in histogram.buckets:
        at = _shifted_ms(moment) + half  # a bar is drawn centred on its time: the middle of its bucket
        totals = dict.fromkeys(series, 0)
        for level, count in (counts or {}).items():
            totals[level_of(level) or "other"] += int(count or 0)
        for key, count in totals.items():
            series[key].append([at, count or None])  # an empty bucket draws no bar
            hits += count
    drawn = [{"key": k, "name": str(names[k]), "data": v} for k, v in series.items() if any(p[1] for p in v)]
    data = {
        "start": _shifted_ms(start),
        "end": _shifted_ms(end),
        "step": int(histogram.step_seconds * 1000),
        "series": drawn,
        "labels": {"lines": _("lines")},
    }
    return data, hits
