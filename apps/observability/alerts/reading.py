"""Alerts and silences of the clusters a person may see, read from each cluster's Alertmanager through the door
(apps/observability/alertmanager.py), and the firing counts of the dashboard and the cluster overview.

Tenancy. Whoever holds ``alerts.view`` for a whole cluster sees all its alerts and silences. Someone who holds it
in some namespaces only (a project) sees the alerts whose ``namespace`` label is one of them, and the silences
pinned to one of them by an equality matcher ``namespace="…"``; an alert without a namespace label, or a silence
not pinned so, is for whole-cluster holders only. Several clusters are asked at once (threads), each answer bounded
by the door. The counts come from ``firing_counts``, cached for ``COUNT_CACHE_SECONDS`` per cluster and asked with
a short timeout, so an Alertmanager that is down costs a page at most ``COUNT_TIMEOUT`` seconds once per cache
period (and the cards load after the page, htmx).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.core.cache import cache
from django.db.models import Q
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from apps.accounts import access
from apps.accounts.capabilities import ALERTS_SILENCE, ALERTS_VIEW
from apps.clusters.kinds import BY_KIND, InvalidName, check_name, check_namespace
from apps.clusters.models import Cluster, Resource
from apps.core.deferred import N_, render
from apps.core.deferred import text as D
from apps.observability import alertmanager as door
from apps.observability import endpoints
from apps.observability.alertmanager import Matcher

COUNT_CACHE_SECONDS = 20
COUNT_TIMEOUT = 2  # seconds the dashboard waits for one Alertmanager
PARALLEL = 8  # Alertmanagers asked at once
MAX_LINKED = 500  # objects looked up in the inventory for one page
SEVERITIES = ("critical", "warning", "info")
# Labels that name the object an alert is about, most precise first: the page links to that object.
OBJECT_LABELS = (
    ("pod", "Pod"),
    ("deployment", "Deployment"),
    ("statefulset", "StatefulSet"),
    ("daemonset", "DaemonSet"),
    ("job_name", "Job"),
    ("service", "Service"),
    ("persistentvolumeclaim", "PersistentVolumeClaim"),
    ("node", "Node"),
    ("namespace", "Namespace"),
)


# --- who sees what ------------------------------------------------------------------------------------------------


def clusters(user, code: str = ALERTS_VIEW) -> list[Cluster]:
    """The clusters where ``user`` holds ``code`` somewhere, by name."""
    return [
        c
        for c in access.clusters(user).order_by("name")
        if access.visible_namespaces(user, code, cluster=c) != frozenset()
    ]


def cluster(user, cluster_id: int, code: str = ALERTS_VIEW) -> Cluster:
    """The cluster, or 404 when it is missing or ``user`` holds ``code`` nowhere in it."""
    found = access.cluster(user, cluster_id)
    if access.visible_namespaces(user, code, cluster=found) == frozenset():
        raise Http404
    return found


def alert_visible(labels: dict[str, str], namespaces: frozenset[str] | None) -> bool:
    """An alert is seen by whole-cluster holders (``namespaces`` None), or in one of ``namespaces``."""
    return namespaces is None or labels.get("namespace", "") in namespaces


def pinned_namespaces(matchers) -> set[str]:
    """The namespaces a silence is pinned to by equality matchers (``namespace="…"``)."""
    return {m.value for m in matchers if m.name == "namespace" and m.is_equal and not m.is_regex and m.value}


def silence_visible(silence: door.Silence, namespaces: frozenset[str] | None) -> bool:
    return namespaces is None or bool(pinned_namespaces(silence.matchers) & namespaces)


def may_expire(user, cluster: Cluster, silence: door.Silence) -> bool:
    return silence.state != "expired" and silence_visible(
        silence, access.visible_namespaces(user, ALERTS_SILENCE, cluster=cluster)
    )


# --- asking every cluster at once ---------------------------------------------------------------------------------


def _ask_all(targets: list[Cluster], ask) -> dict[int, tuple[object, str]]:
    """``ask(endpoint)`` for each cluster in parallel: {cluster pk: (answer, "")} or (None, stored sentence)."""
    calls = [(c.pk, endpoints.alertmanager(c)) for c in targets]  # decrypted here, in the request's thread

    def one(call):
        pk, endpoint = call
        try:
            return pk, (ask(endpoint), "")
        except door.AlertmanagerError as exc:
            return pk, (None, exc.stored)

    if len(calls) <= 1:
        return dict(map(one, calls))
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(calls))) as pool:
        return dict(pool.map(one, calls))


# --- alerts -------------------------------------------------------------------------------------------------------


@dataclass
class AlertRow:
    alert: door.Alert
    link: tuple[str, str, str] | None  # (url, kind label, name) of the object the alert is about
    may_silence: bool
    silences: list[str] = field(default_factory=list)

    @property
    def severity_class(self) -> str:
        return severity_class(self.alert.severity)

    @property
    def runbook(self) -> str:
        return web_url(self.alert.annotations.get("runbook_url", ""))

    @property
    def source(self) -> str:
        """Where the alert came from (Prometheus's graph of the rule), when it is a web address."""
        return web_url(self.alert.generator_url)

    @property
    def other_annotations(self) -> list[tuple[str, str]]:
        shown = {"summary", "description", "message", "runbook_url"}
        return sorted((k, v) for k, v in self.alert.annotations.items() if k not in shown)


@dataclass
class GroupRow:
    cluster: Cluster
    labels: dict[str, str]
    receiver: str
    alerts: list[AlertRow]

    @property
    def worst(self) -> str:
        found = {a.alert.severity for a in self.alerts}
        return next((s for s in SEVERITIES if s in found), "")


@dataclass
class ClusterState:
    cluster: Cluster
    problem: str = ""  # the stored sentence when its Alertmanager gave no answer
    configured: bool = True


def web_url(value: str) -> str:
    """``value`` when it is an http(s) address (a link never runs script), else ""."""
    return value if re.match(r"^https?://[^\s\"'<>]+$", value or "") else ""


def severity_class(severity: str) -> str:
    return {"critical": "bg-red-lt", "warning": "bg-yellow-lt", "info": "bg-blue-lt"}.get(severity, "bg-secondary-lt")


def _named_objects(user, cluster: Cluster, labels: dict[str, str]) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of the objects an alert's labels name that ``user`` may see, most precise first."""
    namespace = labels.get("namespace", "")
    found = []
    for label, kind_name in OBJECT_LABELS:
        name = labels.get(label, "")
        kind = BY_KIND.get(kind_name)
        if not name or kind is None or not kind.synced:
            continue
        try:
            check_name(name)
            if kind.namespaced:
                check_namespace(namespace)
        except InvalidName:
            continue
        place = name if kind_name == "Namespace" else (namespace if kind.namespaced else None)
        if access.may(user, kind.capability, cluster=cluster, namespace=place):
            found.append((kind_name, namespace if kind.namespaced else "", name))
    return found


def object_links(user, cluster: Cluster, alerts: list[door.Alert]) -> dict[str, tuple[str, str, str]]:
    """For each alert (by fingerprint), the inventory page of the most precise object its labels name that exists
    in the inventory and ``user`` may open: (url, kind label, name). One query for all of them."""
    named = {a.fingerprint: _named_objects(user, cluster, a.labels) for a in alerts}
    wanted = {key for keys in named.values() for key in keys}
    if not wanted:
        return {}
    terms = [Q(kind=k, namespace=ns, name=n) for k, ns, n in sorted(wanted)[:MAX_LINKED]]
    known = set(
        Resource.objects.filter(cluster=cluster).filter(reduce(or_, terms)).values_list("kind", "namespace", "name")
    )
    links = {}
    for fingerprint, keys in named.items():
        for kind_name, namespace, name in keys:
            if (kind_name, namespace, name) in known:
                kind = BY_KIND[kind_name]
                url = reverse("clusters:resource_detail", args=[cluster.pk, kind.plural, namespace or "_", name])
                links[fingerprint] = (url, str(kind.label or kind.kind), name)
                break
    return links


def read_alerts(user, targets: list[Cluster]) -> tuple[list[GroupRow], list[ClusterState]]:
    """The alert groups of ``targets`` that ``user`` may see (groups left empty are dropped), and each cluster's
    state (the sentence when its Alertmanager gave no answer)."""
    answers = _ask_all([c for c in targets if c.alertmanager_url], door.groups)
    groups, states = [], []
    for c in targets:
        if not c.alertmanager_url:
            states.append(ClusterState(c, D(N_("No Alertmanager URL is set for this cluster.")), configured=False))
            continue
        found, problem = answers[c.pk]
        states.append(ClusterState(c, problem))
        if found is None:
            continue
        namespaces = access.visible_namespaces(user, ALERTS_VIEW, cluster=c)
        silencing = access.visible_namespaces(user, ALERTS_SILENCE, cluster=c)
        seen = {a.fingerprint: a for g in found for a in g.alerts if alert_visible(a.labels, namespaces)}
        links = object_links(user, c, list(seen.values()))
        for group in found:
            rows = [
                AlertRow(alert=a, link=links.get(a.fingerprint), may_silence=alert_visible(a.labels, silencing))
                for a in group.alerts
                if a.fingerprint in seen
            ]
            if rows:
                groups.append(GroupRow(c, group.labels, group.receiver, rows))
    groups.sort(key=lambda g: (SEVERITIES.index(g.worst) if g.worst in SEVERITIES else 9, g.cluster.name, _key(g)))
    return groups, states


def _key(group: GroupRow) -> list:
    return sorted(group.labels.items())


@dataclass(frozen=True)
class AlertFilter:
    cluster: int | None = None
    namespace: str = ""
    severity: str = ""  # critical, warning, info, other
    state: str = ""  # active, suppressed, unprocessed
    text: str = ""

    def keeps(self, cluster: Cluster, alert: door.Alert) -> bool:
        if self.cluster and cluster.pk != self.cluster:
            return False
        if self.namespace and alert.namespace != self.namespace:
            return False
        if self.severity == "other":
            if alert.severity in SEVERITIES:
                return False
        elif self.severity and alert.severity != self.severity:
            return False
        if self.state and alert.state != self.state:
            return False
        if self.text:
            words = " ".join([alert.name, alert.summary, *alert.labels.values()]).lower()
            if self.text.lower() not in words:
                return False
        return True


def filtered(groups: list[GroupRow], chosen: AlertFilter) -> list[GroupRow]:
    kept = []
    for group in groups:
        rows = [r for r in group.alerts if chosen.keeps(group.cluster, r.alert)]
        if rows:
            kept.append(GroupRow(group.cluster, group.labels, group.receiver, rows))
    return kept


def tally(groups: list[GroupRow]) -> dict[str, int]:
    """Alerts shown, counted once each (an alert routed to two receivers is in two groups): firing by severity,
    and suppressed."""
    seen: dict[tuple[int, str], door.Alert] = {}
    for group in groups:
        for row in group.alerts:
            seen[(group.cluster.pk, row.alert.fingerprint)] = row.alert
    counts = Counter()
    for alert in seen.values():
        if alert.state == "active":
            counts[alert.severity if alert.severity in SEVERITIES else "other"] += 1
            counts["firing"] += 1
        elif alert.state == "suppressed":
            counts["suppressed"] += 1
    return {k: counts[k] for k in ("firing", *SEVERITIES, "other", "suppressed")}


def find_alert(user, cluster: Cluster, fingerprint: str) -> tuple[door.Alert | None, str]:
    """The alert with ``fingerprint`` if ``user`` may see it, and the sentence when Alertmanager gave no answer."""
    try:
        found = door.alerts(endpoints.alertmanager(cluster))
    except door.AlertmanagerError as exc:
        return None, str(exc)
    namespaces = access.visible_namespaces(user, ALERTS_VIEW, cluster=cluster)
    alert = next((a for a in found if a.fingerprint == fingerprint and alert_visible(a.labels, namespaces)), None)
    return alert, ""


def matching(user, cluster: Cluster, matchers: list[Matcher]) -> tuple[list[door.Alert], str]:
    """The alerts ``user`` may see that ``matchers`` would silence now (the form's preview)."""
    try:
        found = door.alerts(endpoints.alertmanager(cluster))
    except door.AlertmanagerError as exc:
        return [], str(exc)
    namespaces = access.visible_namespaces(user, ALERTS_VIEW, cluster=cluster)
    return [a for a in found if alert_visible(a.labels, namespaces) and all(m.matches(a.labels) for m in matchers)], ""


# --- counts for the dashboard and the cluster overview -----------------------------------------------------------


@dataclass
class Counts:
    cluster: Cluster
    critical: int = 0
    warning: int = 0
    other: int = 0
    problem: str = ""

    @property
    def firing(self) -> int:
        return self.critical + self.warning + self.other


def _cache_key(c: Cluster) -> str:
    where = hashlib.sha256(c.alertmanager_url.encode()).hexdigest()[:12]
    return f"observability:alerts:firing:{c.pk}:{where}"


def _firing(endpoint) -> list[list[str]]:
    """(namespace, severity) of each alert firing now (neither silenced nor inhibited)."""
    return [[a.namespace, a.severity] for a in door.alerts(endpoint, timeout=COUNT_TIMEOUT) if a.state == "active"]


def firing_counts(user, targets: list[Cluster]) -> list[Counts]:
    """Firing alerts by severity in each of ``targets`` with an Alertmanager, as ``user`` may see them."""
    configured = [c for c in targets if c.alertmanager_url]
    cached = cache.get_many([_cache_key(c) for c in configured])
    missing = [c for c in configured if _cache_key(c) not in cached]
    if missing:
        fresh = {}
        for pk, (found, problem) in _ask_all(missing, _firing).items():
            c = next(c for c in missing if c.pk == pk)
            fresh[_cache_key(c)] = {"firing": found} if found is not None else {"problem": problem}
        cache.set_many(fresh, COUNT_CACHE_SECONDS)
        cached.update(fresh)
    result = []
    for c in configured:
        entry = cached[_cache_key(c)]
        counts = Counts(c, problem=render(entry.get("problem", "")))
        namespaces = access.visible_namespaces(user, ALERTS_VIEW, cluster=c)
        for namespace, severity in entry.get("firing") or []:
            if alert_visible({"namespace": namespace} if namespace else {}, namespaces):
                name = severity if severity in ("critical", "warning") else "other"
                setattr(counts, name, getattr(counts, name) + 1)
        result.append(counts)
    return result


def forget_counts(c: Cluster) -> None:
    """A silence changes what fires: the next dashboard asks Alertmanager again."""
    cache.delete(_cache_key(c))


# --- silences -----------------------------------------------------------------------------------------------------


@dataclass
class SilenceRow:
    cluster: Cluster
    silence: door.Silence
    may_expire: bool
    silencing: int = 0  # alerts it silences now


def read_silences(user, targets: list[Cluster]) -> tuple[list[SilenceRow], list[ClusterState]]:
    """The silences of ``targets`` that ``user`` may see, newest first, with the number of alerts each silences
    now, and each cluster's state."""

    def both(endpoint):
        return door.silences(endpoint), door.alerts(endpoint)

    answers = _ask_all([c for c in targets if c.alertmanager_url], both)
    rows, states = [], []
    for c in targets:
        if not c.alertmanager_url:
            states.append(ClusterState(c, D(N_("No Alertmanager URL is set for this cluster.")), configured=False))
            continue
        found, problem = answers[c.pk]
        states.append(ClusterState(c, problem))
        if found is None:
            continue
        silences, alerts = found
        namespaces = access.visible_namespaces(user, ALERTS_VIEW, cluster=c)
        silenced = Counter(i for a in alerts for i in a.silenced_by)
        for s in silences:
            if silence_visible(s, namespaces):
                rows.append(SilenceRow(c, s, may_expire(user, c, s), silenced[s.id]))
    rows.sort(key=lambda r: r.silence.updated_at or r.silence.starts_at or timezone.now(), reverse=True)
    return rows, states
