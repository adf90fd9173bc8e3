"""Log lines as the pages show them: time in the reader's zone to the millisecond, a level badge, where the line
comes from (with a link to the pod's page for those who may open it), the text escaped with its matches marked,
parsed fields, a trace link; and the volume histogram as stacked bars by level for static/kubemate/logs.js.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

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

    @property
    def level_label(self) -> str:
        return str(dict(forms.LEVEL_CHOICES).get(self.level, ""))

    @property
    def time_iso(self) -> str:
        return self.time.isoformat() if self.time else ""


def level_of(value) -> str:
    """error, warn, info, debug or "" (the door normalises levels already; Kubernetes' lines have none)."""
    return logstore.normalise_level(value)


def time_text(moment: datetime | None) -> str:
    if moment is None:
        return ""
    local = timezone.localtime(moment)
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
    """Shapes the lines of one answer: highlighting with one time budget, links decided once per namespace."""

    def __init__(self, user, cluster, *, keyword: str = "", pattern: str = ""):
        self.user, self.cluster, self.keyword, self.pattern = user, cluster, keyword, pattern
        self.marker = Marker.for_search(keyword, pattern)
        self._pods: dict[str, bool] = {}
        self._traces = _traces_routed(self.cluster)
        self.count = 0
        self.prefix = uuid.uuid4().hex[:6]  # row ids stay unique when pages of lines are added to the page

    def pod_url(self, namespace: str, pod: str) -> str:
        if not (namespace and pod):
            return ""
        if namespace not in self._pods:
            self._pods[namespace] = access.may(
                self.user, access.capability_for("Pod"), cluster=self.cluster, namespace=namespace
            )
        if not self._pods[namespace]:
            return ""
        try:
            return reverse("clusters:resource_detail", args=[self.cluster.pk, "pods", namespace, pod])
        except NoReverseMatch:
            return ""

    def trace_url(self, trace_id: str) -> str:
        if not (trace_id and self._traces):
            return ""
        try:
            return reverse("observability:trace_detail", args=[self.cluster.pk, trace_id])
        except NoReverseMatch:
            return ""

    def shape(self, line) -> Shown:
        self.count += 1
        stream = dict(getattr(line, "stream", None) or {})
        namespace, pod = stream_value(stream, "namespace"), stream_value(stream, "pod")
        container = stream_value(stream, "container")
        fields = getattr(line, "fields", None) or {}
        trace_id = str(getattr(line, "trace_id", "") or "")
        context = [
            ("cluster", str(self.cluster.pk)),
            ("stream_id", str(getattr(line, "stream_id", "") or "")),
            ("time", line.time.isoformat() if line.time else ""),
            ("cursor", str(getattr(line, "cursor", "") or "")),
            *[(k, v) for k, v in (("namespace", namespace), ("pod", pod), ("container", container)) if v],
            *[("q", self.keyword)] * bool(self.keyword),
            *[("regex", self.pattern)] * bool(self.pattern),
        ]
        return Shown(
            key=f"l{self.prefix}{self.count}",
            time=line.time,
            time_text=time_text(line.time),
            level=level_of(getattr(line, "level", "")),
            namespace=namespace,
            pod=pod,
            container=container,
            html=self.marker.mark(str(line.line)),
            fields=[(str(k), _field_text(v)) for k, v in sorted(fields.items())] if isinstance(fields, dict) else [],
            pod_url=self.pod_url(namespace, pod),
            trace_id=trace_id,
            trace_url=self.trace_url(trace_id),
            context_query=urlencode(context),
            cursor=str(getattr(line, "cursor", "") or ""),
        )


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
