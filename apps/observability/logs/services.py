"""Log search for one person: the request read as a ``LogQuery``, the answer shaped for the page, and Kubernetes
when the cluster has no log store.

``search_from`` reads the parameters (``forms.LogSearchForm``) into a ``Search``: the cluster among those whose
logs the person may read (``logs.view``), the time window in the reader's time zone, the filters. ``query_of``
turns it into a ``LogQuery`` and passes it through ``logstore.for_user``, which narrows it to the namespaces the
person may read and refuses what they may not (a foreign namespace, a raw query that escapes them); a raw query
is only taken from holders of ``logs.query``. ``results`` asks the store for the lines (and, for a whole page,
the volume histogram at once; the results partial leaves the histogram to its own request, ``histogram``, so the
lines do not wait for it); ``live`` reads around a line and follows new lines, ``download`` writes a file.
Whatever the store says goes wrong is a sentence on a page that still answers 200. Without a log store
(``cluster.logs_url`` empty) ``fallback`` reads a chosen pod's recent lines from the Kubernetes API as the person
(``pods.logs``) and filters them here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts import access
from apps.accounts.capabilities import CLUSTERS_MANAGE, LOGS_QUERY, LOGS_VIEW, PODS_LOGS
from apps.clusters import kube
from apps.clusters.actions import services as pod_logs
from apps.clusters.actions.targets import ActionError, Target
from apps.clusters.models import Cluster, Resource
from apps.core.deferred import Failure, render
from apps.observability import logstore
from apps.observability.logs import forms
from apps.observability.logs.shaping import Shaper, Shown, chart_data
from apps.observability.logstore.query import LogQuery, for_user

RANGES = {"15m": 15 * 60, "1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600, "7d": 7 * 86400}
DEFAULT_RANGE = "1h"
CUSTOM = "custom"
CUSTOM_MIN = timedelta(seconds=1)  # a histogram bar of a 15-minute window is 15 s wide, and zooms to it
CUSTOM_MAX = timedelta(days=31)
TIME_INPUT = "%Y-%m-%dT%H:%M:%S"  # <input type="datetime-local" step="1">, in the reader's time zone
HISTOGRAM_BUCKETS = 60
# What ``results`` does about the volume histogram: ask it beside the lines (a whole page), leave an address to
# ask it from afterwards (the results partial: the lines come without waiting for it), or nothing (older lines).
HISTOGRAM_INLINE, HISTOGRAM_LATER, HISTOGRAM_NONE = "inline", "later", "none"
FALLBACK_TAIL = 500  # lines read from Kubernetes when the cluster has no log store
NAMES_MAX = 300  # pods and workloads offered in the form's lists


class SearchRefused(Failure):
    """What the person asked for is not theirs to ask (a namespace, the raw query box): the sentence says so."""


# The time window -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One of RANGES up to now, or a custom range; ``problem`` says why a custom range asked for was not taken."""

    key: str
    start: datetime
    end: datetime
    problem: str = ""

    @property
    def start_input(self) -> str:
        return timezone.localtime(self.start).strftime(TIME_INPUT)

    @property
    def end_input(self) -> str:
        return timezone.localtime(self.end).strftime(TIME_INPUT)

    def params(self) -> list[tuple[str, str]]:
        if self.key != CUSTOM or self.problem:
            return [("window", self.key if self.key in RANGES else DEFAULT_RANGE)]
        return [("window", CUSTOM), ("start", self.start.isoformat()), ("end", self.end.isoformat())]


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time (links from other pages) or a datetime-local value (the form, in the reader's zone), UTC."""
    text = str(text or "").strip()[:40]
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment.astimezone(UTC)


def window_from(data: dict, now: datetime | None = None) -> Window:
    now = now or timezone.now()
    key = data.get("window") or ""
    start_text, end_text = data.get("start") or "", data.get("end") or ""
    if not key:
        key = CUSTOM if start_text or end_text else DEFAULT_RANGE
    if key in RANGES:
        return Window(key, now - timedelta(seconds=RANGES[key]), now)
    start, end = parse_time(start_text), parse_time(end_text)
    problem = ""
    if (start_text and start is None) or (end_text and end is None) or not (start_text or end_text):
        problem = _("Choose a start and an end for the custom range.")
    else:
        end = min(end or now, now)
        start = start or end - timedelta(seconds=RANGES[DEFAULT_RANGE])
        if end - start < CUSTOM_MIN:
            problem = _("The custom range must end after it starts, and not in the future.")
        elif end - start > CUSTOM_MAX:
            problem = _("The custom range may cover at most 31 days.")
    if problem:
        return Window(CUSTOM, now - timedelta(seconds=RANGES[DEFAULT_RANGE]), now, problem)
    return Window(CUSTOM, start, end)


# What the person asked for -------------------------------------------------------------------------------------


@dataclass
class Search:
    cluster: Cluster
    window: Window
    namespace: str = ""
    workload: str = ""
    pod: str = ""
    container: str = ""
    levels: tuple[str, ...] = ()
    keyword: str = ""
    pattern: str = ""
    raw: str = ""
    trace_id: str = ""
    limit: int = forms.DEFAULT_LIMIT
    problems: list[str] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)  # the clusters the person may choose from

    @property
    def text(self) -> str:
        """What the search box shows: the pattern when the box is in regular expression mode."""
        return self.keyword or self.pattern

    @property
    def regex_mode(self) -> bool:
        return bool(self.pattern) and not self.keyword

    def params(self, *, window: bool = True) -> list[tuple[str, str]]:
        """The parameters that give this search again (for the results, tail, context and download addresses)."""
        found = [("cluster", str(self.cluster.pk))]
        for name in ("namespace", "workload", "pod", "container"):
            if getattr(self, name):
                found.append((name, getattr(self, name)))
        found += [("level", level) for level in self.levels]
        if self.regex_mode:
            found += [("q", self.pattern), ("regex", "1")]
        else:
            found += [("q", self.keyword)] if self.keyword else []
            found += [("regex", self.pattern)] if self.pattern else []
        for name in ("raw", "trace_id"):
            if getattr(self, name):
                found.append((name, getattr(self, name)))
        if self.limit != forms.DEFAULT_LIMIT:
            found.append(("limit", str(self.limit)))
        return found + (self.window.params() if window else [])

    def query_string(self, **extra) -> str:
        return urlencode(self.params() + list(extra.items()))

    def filters(self) -> dict:
        """The filters, for the audit event and the first line of a download."""
        words = {
            "cluster": self.cluster.name,
            "namespace": self.namespace,
            "workload": self.workload,
            "pod": self.pod,
            "container": self.container,
            "levels": list(self.levels),
            "text": self.keyword,
            "regex": self.pattern,
            "raw": self.raw,
            "trace_id": self.trace_id,
        }
        return {
            **{k: v for k, v in words.items() if v},
            "start": self.window.start.isoformat(),
            "end": self.window.end.isoformat(),
        }


def clusters_for(user) -> list[Cluster]:
    """Clusters whose logs the person may read somewhere (``logs.view``), those with a log store first."""
    held = access.scope(user, LOGS_VIEW)
    rows = access.clusters(user).order_by("name")
    if not held.everywhere:
        rows = rows.filter(pk__in=set(held.clusters) | {pk for pk, names in held.namespaces.items() if names})
    found = list(rows)
    return [c for c in found if c.logs_url] + [c for c in found if not c.logs_url]


def namespaces_for(user, cluster) -> list[str]:
    """The namespaces the form offers: the person's, or every namespace of the inventory for whole-cluster holders."""
    held = access.visible_namespaces(user, LOGS_VIEW, cluster=cluster)
    if held is None:
        rows = Resource.objects.filter(cluster=cluster, kind="Namespace").order_by("name")
        return list(rows.values_list("name", flat=True))
    return sorted(held)


def sees_whole_cluster(user, cluster) -> bool:
    return access.visible_namespaces(user, LOGS_VIEW, cluster=cluster) is None


def may_query(user, cluster) -> bool:
    """Writes LogsQL or LogQL by hand in this cluster: ``logs.query`` somewhere in it."""
    held = access.scope(user, LOGS_QUERY)
    return held.everywhere or cluster.pk in held.clusters or bool(held.namespaces.get(cluster.pk))


def search_from(user, params, clusters: list[Cluster], now: datetime | None = None) -> Search:
    """The search a request asks for; what cannot be read is in ``problems`` (and nothing is asked then)."""
    form = forms.LogSearchForm(params)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {k: v for k, v in form.cleaned_data.items() if k not in form.errors}
    chosen = data.get("cluster")
    cluster = next((c for c in clusters if c.pk == chosen), clusters[0])
    search = Search(
        cluster=cluster,
        window=window_from({k: data.get(k) for k in ("window", "start", "end")}, now),
        namespace=data.get("namespace") or "",
        workload=data.get("workload") or "",
        pod=data.get("pod") or "",
        container=data.get("container") or "",
        levels=tuple(level for level in forms.LEVELS if level in (data.get("level") or ())),
        keyword=data.get("keyword") or "",
        pattern=data.get("pattern") or "",
        raw=data.get("raw") or "",
        trace_id=data.get("trace_id") or "",
        limit=data.get("limit") or forms.DEFAULT_LIMIT,
        clusters=clusters,
    )
    search.problems = form.sentences()
    if chosen and chosen != cluster.pk:
        search.problems.append(
            _("You may not read the logs of this cluster; showing %(name)s.") % {"name": cluster.name}
        )
    if search.window.problem:
        search.problems.append(search.window.problem)
    return search


def query_of(user, search: Search, *, limit: int | None = None) -> LogQuery:
    """The ``LogQuery`` of a search as the person may run it; ``SearchRefused`` or ``LogStoreError`` otherwise."""
    cluster = search.cluster
    held = access.visible_namespaces(user, LOGS_VIEW, cluster=cluster)
    if search.namespace and held is not None and search.namespace not in held:
        raise SearchRefused(
            _("You may not read the logs of namespace %(namespace)s in cluster %(cluster)s.")
            % {"namespace": search.namespace, "cluster": cluster.name}
        )
    if search.raw.strip() and not may_query(user, cluster):
        raise SearchRefused(
            _("Only people allowed to write log queries may use the query box; your search was not run.")
        )
    text = search.keyword
    if search.trace_id and not text:
        text = search.trace_id
    query = LogQuery(
        start=search.window.start,
        end=search.window.end,
        namespaces=(search.namespace,) if search.namespace else (),
        pod=search.pod,
        workload=search.workload,
        container=search.container,
        levels=search.levels,
        text=text,
        regex=search.pattern,
        raw=search.raw.strip() if may_query(user, cluster) else "",
        limit=limit or search.limit,
    )
    return for_user(user, cluster, query, capability=LOGS_VIEW)


# Search results ------------------------------------------------------------------------------------------------


@dataclass
class Results:
    search: Search
    lines: list[Shown] = field(default_factory=list)
    sentence: str = ""  # why there are no lines (the store refused or did not answer, or a refusal)
    missing: bool = False  # no log store on the cluster: Kubernetes' lines, or a sentence asking for a pod
    fallback: bool = False  # the lines are Kubernetes' own
    settings_url: str = ""
    more: bool = False
    older_query: str = ""
    chart: dict = field(default_factory=dict)  # the histogram for static/kubemate/logs.js
    hits: int = 0
    backend: str = ""
    histogram_query: str = ""  # the histogram's own request (HISTOGRAM_LATER): the parameters, window pinned

    @property
    def show_list(self) -> bool:
        """The card of lines: when something was asked and answered (even with no line), not over a sentence."""
        if self.search.problems or (self.missing and not self.fallback):
            return False
        return bool(self.lines) or not self.sentence


def shaper_for(user, search: Search) -> Shaper:
    return Shaper(user, search.cluster, keyword=search.keyword or search.trace_id, pattern=search.pattern)


def _settings_url(user, cluster) -> str:
    if not access.may(user, CLUSTERS_MANAGE):
        return ""
    return reverse("clusters:registry_settings", args=[cluster.pk])


def results(user, search: Search, *, histogram: str = HISTOGRAM_INLINE) -> Results:
    """The lines of a search, newest first, and the volume histogram over its window (``HISTOGRAM_INLINE``: both
    asked at once), or the address to ask the histogram from afterwards (``HISTOGRAM_LATER``), or no histogram."""
    answer = Results(search=search)
    cluster = search.cluster
    if search.problems:
        return answer
    if not cluster.logs_url:
        return fallback(user, search)
    try:
        query = query_of(user, search)
    except (SearchRefused, logstore.LogStoreError) as exc:
        answer.sentence = str(exc)
        return answer
    answer.backend = _backend(cluster)
    if histogram == HISTOGRAM_INLINE:
        asked = [lambda: logstore.search(cluster, query)]
        asked.append(lambda: logstore.histogram(cluster, query, buckets=HISTOGRAM_BUCKETS))
        with ThreadPoolExecutor(max_workers=len(asked)) as pool:
            outcomes = list(pool.map(_outcome, asked))
    else:
        outcomes = [_outcome(lambda: logstore.search(cluster, query))]  # in this thread: no pool to start
    page = outcomes[0]
    if isinstance(page, logstore.LogStoreError):
        # Raised in a worker thread, whose language is not the reader's: the sentence is worded here.
        answer.sentence = render(page.stored)
        return answer
    shaper = shaper_for(user, search)
    answer.lines = [shaper.shape(line) for line in page.lines]
    answer.more = bool(page.more and page.older_than)
    if answer.more:
        older = replace(search, window=Window(CUSTOM, search.window.start, page.older_than))
        answer.older_query = older.query_string(older="1")
    if histogram == HISTOGRAM_INLINE and not isinstance(outcomes[1], Exception):
        answer.chart, answer.hits = chart_data(outcomes[1], search.window.start, search.window.end)
    elif histogram == HISTOGRAM_LATER and answer.lines:  # no line, no bar: nothing to ask
        # The very window of these lines ("the last hour" read a moment later would be another hour).
        pinned = replace(search, window=Window(CUSTOM, search.window.start, search.window.end))
        answer.histogram_query = pinned.query_string()
    return answer


def histogram(user, search: Search) -> Results:
    """The volume histogram alone (the results partial asks it after its lines); no chart when the search has a
    problem, is refused, or the store fails: the lines above say so already."""
    answer = Results(search=search)
    cluster = search.cluster
    if search.problems or not cluster.logs_url:
        return answer
    try:
        query = query_of(user, search)
        found = logstore.histogram(cluster, query, buckets=HISTOGRAM_BUCKETS)
    except (SearchRefused, logstore.LogStoreError):
        return answer
    answer.chart, answer.hits = chart_data(found, search.window.start, search.window.end)
    return answer


def _outcome(ask):
    try:
        return ask()
    except logstore.LogStoreError as exc:
        return exc


def _backend(cluster) -> str:
    try:
        return logstore.backend_name(cluster)
    except logstore.LogStoreError:
        return ""


# Without a log store: the pod's recent lines from Kubernetes ---------------------------------------------------


@dataclass(frozen=True)
class _KubeLine:
    time: datetime | None
    line: str
    stream: dict
    stream_id: str = ""
    level: str = ""
    fields: dict = field(default_factory=dict)
    trace_id: str = ""
    cursor: str = ""


def fallback(user, search: Search) -> Results:
    """No log store: a chosen pod's recent lines read from Kubernetes as the person, filtered and marked here."""
    cluster = search.cluster
    answer = Results(search=search, missing=True, settings_url=_settings_url(user, cluster))
    if not (search.namespace and search.pod):
        return answer  # the page asks for a namespace and a pod
    held = access.visible_namespaces(user, LOGS_VIEW, cluster=cluster)
    if (held is not None and search.namespace not in held) or not access.may(
        user, PODS_LOGS, cluster=cluster, namespace=search.namespace
    ):
        answer.sentence = _("You may not read the logs of namespace %(namespace)s in cluster %(cluster)s.") % {
            "namespace": search.namespace,
            "cluster": cluster.name,
        }
        return answer
    answer.fallback = True
    target = Target(cluster, "Pod", search.namespace, search.pod)
    try:
        containers = pod_logs.pod_containers(user=user, target=target)
        container = search.container or (containers[0] if containers else "")
        if container not in containers:
            answer.sentence = _("Pod %(pod)s has no container %(container)s.") % {
                "pod": search.pod,
                "container": container,
            }
            return answer
        page = pod_logs.read_log(user=user, target=target, container=container, tail=FALLBACK_TAIL)
    except kube.NotFound:
        answer.sentence = _("Pod %(pod)s is not in namespace %(namespace)s.") % {
            "pod": search.pod,
            "namespace": search.namespace,
        }
        return answer
    except ActionError as exc:
        answer.sentence = str(exc)
        return answer
    stream = {"namespace": search.namespace, "pod": search.pod, "container": container}
    shaper = shaper_for(user, search)
    kept = []
    for line in reversed(page.lines):
        if not shaper.marker.matches(line.text):
            continue
        kept.append(
            _KubeLine(time=parse_time(line.timestamp) if line.timestamp else None, line=line.text, stream=stream)
        )
        if len(kept) >= search.limit:
            break
    answer.lines = [shaper.shape(line) for line in kept]
    for shown in answer.lines:
        shown.context_query = ""  # Kubernetes keeps no stream to read around a line
    return answer


# The form's lists ----------------------------------------------------------------------------------------------


def name_choices(user, cluster, namespace: str) -> dict[str, list[str]]:
    """Pod and workload names from the inventory the form suggests (the person's namespaces only)."""
    held = access.visible_namespaces(user, LOGS_VIEW, cluster=cluster)
    if namespace:
        places = [namespace] if held is None or namespace in held else []
    else:
        places = None if held is None else sorted(held)
    found = {}
    for key, kinds in (("pods", ("Pod",)), ("workloads", ("Deployment", "StatefulSet", "DaemonSet"))):
        rows = Resource.objects.filter(cluster=cluster, kind__in=kinds)
        if places is not None:
            rows = rows.filter(namespace__in=places)
        found[key] = sorted(set(rows.order_by("name").values_list("name", flat=True)[:NAMES_MAX]))
    return found
