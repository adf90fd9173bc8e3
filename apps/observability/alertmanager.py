"""The one door to a cluster's Alertmanager (Cluster.alertmanager_url): its API v2, with errors as sentences.

Callers give an ``Endpoint`` (``endpoints.alertmanager(cluster)``: the address and the credentials decrypted from
the cluster's row) and get typed answers: alert ``Group``s as Alertmanager groups them (``groups``), ``Alert``s
(``alerts``), ``Silence``s (``silences``, ``silence``), ``create_silence``, ``expire_silence`` and ``status``. What
can go wrong is an ``AlertmanagerError`` whose text is the translated sentence to show (and ``stored`` the form
to keep): no address, no answer, no answer in time, credentials refused, the request refused with Alertmanager's
own reason, or an answer too large or not shaped like API v2. Every answer is read up to ``MAX_BYTES`` before it
is parsed, and its structure is checked before anything is built from it. Credentials travel only in headers:
never in a sentence, a log line or a ``repr``. ``status`` leaves out the configuration Alertmanager shows in its
status, which can hold the SMTP and webhook secrets of its receivers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.observability import fetching
from apps.observability.endpoints import Endpoint

TIMEOUT = 5
MAX_BYTES = 8 * 1024 * 1024  # thousands of alerts with their labels and annotations fit in a few MiB
REASON_MAX = 300  # characters of Alertmanager's own reason kept in a sentence
SILENCE_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
STATES = ("active", "suppressed", "unprocessed")
SILENCE_STATES = ("active", "pending", "expired")


class AlertmanagerError(Failure):
    """Alertmanager gave no usable answer; the message is the sentence to show, ``stored`` the one to keep."""


class NotConfigured(AlertmanagerError):
    """The cluster has no Alertmanager address."""


class Unreachable(AlertmanagerError):
    """Alertmanager did not answer, not in time, or refused Kubemate's credentials: asking again now is no use."""


class Refused(AlertmanagerError):
    """Alertmanager answered, and refused the request (its reason is in the sentence)."""


class Unreadable(AlertmanagerError):
    """The answer was too large, or not shaped as API v2 answers are."""


# --- what the door answers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Matcher:
    """One matcher of a silence: ``name`` = / != / =~ / !~ ``value`` (regular expressions are anchored)."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    OPERATORS = ("=", "!=", "=~", "!~")

    @property
    def operator(self) -> str:
        return ("=" if self.is_equal else "!=") + ("~" if self.is_regex else "")

    @classmethod
    def of(cls, name: str, operator: str, value: str) -> Matcher:
        if operator not in cls.OPERATORS:
            raise ValueError(operator)
        return cls(name=name, value=value, is_regex=operator.endswith("~"), is_equal=operator.startswith("="))

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether an alert with ``labels`` matches, as Alertmanager decides (a missing label is "")."""
        value = labels.get(self.name, "")
        if self.is_regex:
            try:
                found = re.fullmatch(self.value, value) is not None
            except re.error:
                found = False
        else:
            found = value == self.value
        return found == self.is_equal

    def as_api(self) -> dict:
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex, "isEqual": self.is_equal}

    def __str__(self) -> str:
        return f'{self.name}{self.operator}"{self.value}"'


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    updated_at: datetime | None
    state: str  # active, suppressed, unprocessed
    silenced_by: tuple[str, ...]
    inhibited_by: tuple[str, ...]
    receivers: tuple[str, ...]
    generator_url: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def namespace(self) -> str:
        return self.labels.get("namespace", "")

    @property
    def summary(self) -> str:
        return self.annotations.get("summary", "") or self.annotations.get("message", "")

    @property
    def description(self) -> str:
        return self.annotations.get("description", "")

    @property
    def silenced(self) -> bool:
        return bool(self.silenced_by)

    @property
    def inhibited(self) -> bool:
        return bool(self.inhibited_by)


@dataclass(frozen=True)
class Group:
    """Alerts as one route of Alertmanager groups them: the group's labels (the route's ``group_by``) and its
    receiver."""

    labels: dict[str, str]
    receiver: str
    alerts: tuple[Alert, ...]


@dataclass(frozen=True)
class Silence:
    id: str
    state: str  # active, pending, expired
    matchers: tuple[Matcher, ...]
    starts_at: datetime | None
    ends_at: datetime | None
    updated_at: datetime | None
    created_by: str
    comment: str

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


@dataclass(frozen=True)
class Status:
    """What Alertmanager says of itself, without its configuration (which holds receivers' secrets)."""

    version: str
    uptime: datetime | None
    cluster_status: str  # ready, settling, disabled
    peers: int = 0


# --- asking -------------------------------------------------------------------------------------------------------


class _Shape(Exception):
    """The answer is not shaped as API v2 answers are; the argument says what was expected."""


def _reason(body: bytes) -> str:
    """Alertmanager's own reason: a JSON string, or an object with a message, or plain text; one line, cut."""
    text = body[:4000].decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    if isinstance(parsed, dict):
        parsed = parsed.get("message") or parsed.get("error") or text
    line = " ".join(str(parsed).split())
    return line[:REASON_MAX] + ("…" if len(line) > REASON_MAX else "")


def _call(
    endpoint: Endpoint,
    method: str,
    path: str,
    *,
    params: dict | None = None,
    body: dict | list | None = None,
    timeout: float = TIMEOUT,
    not_found: str | None = None,
):
    """The parsed JSON answer of ``method`` ``/api/v2/<path>``, or the sentence saying why there is none."""
    if not endpoint.url:
        raise NotConfigured(D(N_("No Alertmanager URL is set for this cluster.")))
    values = {"url": endpoint.shown}
    slow = Unreachable(
        D(N_("Alertmanager at %(url)s did not answer within %(seconds)s seconds."), seconds=timeout, **values)
    )
    try:
        answer = fetching.fetch(
            method,
            f"{endpoint.base}/api/v2/{path}",
            limit=MAX_BYTES,
            timeout=timeout,
            params=params,
            json=body,
            headers={"Accept": "application/json", **endpoint.headers},
            auth=endpoint.auth,
        )
    except fetching.Late:
        raise slow from None
    except fetching.Failed:
        raise Unreachable(D(N_("Alertmanager at %(url)s could not be reached."), **values)) from None
    status, raw = answer.status, answer.body
    if status in (401, 403):
        if endpoint.auth or endpoint.token:
            sentence = N_(
                "Alertmanager at %(url)s refused Kubemate's credentials (HTTP %(status)s); check them in the "
                "cluster's settings."
            )
        else:
            sentence = N_(
                "Alertmanager at %(url)s asks for credentials (HTTP %(status)s); set them in the cluster's settings."
            )
        raise Unreachable(D(sentence, status=status, **values))
    if status == 404:
        if not_found:
            raise Refused(not_found)
        raise Refused(
            D(
                N_(
                    "Alertmanager at %(url)s has no API v2 at this address (HTTP 404); check the address in the "
                    "cluster's settings (it may need a path, such as /alertmanager)."
                ),
                **values,
            )
        )
    if not 200 <= status < 300:
        raise Refused(
            D(
                N_("Alertmanager at %(url)s refused the request (HTTP %(status)s): %(error)s"),
                status=status,
                error=_reason(raw) or "—",
                **values,
            )
        )
    if len(raw) > MAX_BYTES:
        raise Unreadable(
            D(
                N_("Alertmanager at %(url)s answered more than %(mib)s MiB; Kubemate reads no more than that."),
                mib=MAX_BYTES // 2**20,
                **values,
            )
        )
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise _unreadable(endpoint, "JSON") from None


def _unreadable(endpoint: Endpoint, what: str) -> Unreadable:
    return Unreadable(
        D(
            N_(
                "Alertmanager at %(url)s gave an answer Kubemate cannot read (%(what)s); check that the address is "
                "an Alertmanager with API v2."
            ),
            url=endpoint.shown,
            what=what,
        )
    )


def _checked(endpoint: Endpoint, build, data):
    try:
        return build(data)
    except _Shape as exc:
        raise _unreadable(endpoint, str(exc)) from None


# --- reading the answers ------------------------------------------------------------------------------------------


def _list(value, what: str) -> list:
    if not isinstance(value, list):
        raise _Shape(what)
    return value


def _dict(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise _Shape(what)
    return value


def _labels(value, what: str) -> dict[str, str]:
    found = _dict(value if value is not None else {}, what)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in found.items()):
        raise _Shape(what)
    return dict(found)


def _text(value, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Shape(what)
    return value


def _time(value, what: str) -> datetime | None:
    text = _text(value, what)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Shape(what) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return None if moment.year <= 1 else moment  # Go's zero time: not set


def _ids(value, what: str) -> tuple[str, ...]:
    return tuple(_text(v, what) for v in _list(value if value is not None else [], what))


def _alert(data) -> Alert:
    data = _dict(data, "alert")
    status = _dict(data.get("status") or {}, "alert status")
    state = _text(status.get("state"), "alert state") or "unprocessed"
    if state not in STATES:
        raise _Shape("alert state")
    receivers = []
    for receiver in _list(data.get("receivers") or [], "alert receivers"):
        receivers.append(_text(_dict(receiver, "alert receiver").get("name"), "alert receiver"))
    return Alert(
        fingerprint=_text(data.get("fingerprint"), "alert fingerprint"),
        labels=_labels(data.get("labels"), "alert labels"),
        annotations=_labels(data.get("annotations"), "alert annotations"),
        starts_at=_time(data.get("startsAt"), "alert startsAt"),
        ends_at=_time(data.get("endsAt"), "alert endsAt"),
        updated_at=_time(data.get("updatedAt"), "alert updatedAt"),
        state=state,
        silenced_by=_ids(status.get("silencedBy"), "alert silencedBy"),
        inhibited_by=_ids(status.get("inhibitedBy"), "alert inhibitedBy"),
        receivers=tuple(receivers),
        generator_url=_text(data.get("generatorURL"), "alert generatorURL"),
    )


def _group(data) -> Group:
    data = _dict(data, "alert group")
    receiver = _dict(data.get("receiver") or {}, "group receiver")
    return Group(
        labels=_labels(data.get("labels"), "group labels"),
        receiver=_text(receiver.get("name"), "group receiver"),
        alerts=tuple(_alert(a) for a in _list(data.get("alerts"), "group alerts")),
    )


def _matcher(data) -> Matcher:
    data = _dict(data, "matcher")
    is_regex, is_equal = data.get("isRegex", False), data.get("isEqual", True)
    if not isinstance(is_regex, bool) or not isinstance(is_equal, bool):
        raise _Shape("matcher")
    return Matcher(
        name=_text(data.get("name"), "matcher name"),
        value=_text(data.get("value"), "matcher value"),
        is_regex=is_regex,
        is_equal=is_equal,
    )


def _silence(data) -> Silence:
    data = _dict(data, "silence")
    status = _dict(data.get("status") or {}, "silence status")
    state = _text(status.get("state"), "silence state")
    if state not in SILENCE_STATES:
        raise _Shape("silence state")
    return Silence(
        id=_text(data.get("id"), "silence id"),
        state=state,
        matchers=tuple(_matcher(m) for m in _list(data.get("matchers"), "silence matchers")),
        starts_at=_time(data.get("startsAt"), "silence startsAt"),
        ends_at=_time(data.get("endsAt"), "silence endsAt"),
        updated_at=_time(data.get("updatedAt"), "silence updatedAt"),
        created_by=_text(data.get("createdBy"), "silence createdBy"),
        comment=_text(data.get("comment"), "silence comment"),
    )


def _status(data) -> Status:
    data = _dict(data, "status")
    version = _dict(data.get("versionInfo") or {}, "versionInfo")
    cluster = _dict(data.get("cluster") or {}, "cluster")
    return Status(
        version=_text(version.get("version"), "version"),
        uptime=_time(data.get("uptime"), "uptime"),
        cluster_status=_text(cluster.get("status"), "cluster status"),
        peers=len(_list(cluster.get("peers") or [], "cluster peers")),
    )


# --- the calls ----------------------------------------------------------------------------------------------------

ALL_ALERTS = {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"}


def groups(endpoint: Endpoint, *, timeout: float = TIMEOUT) -> list[Group]:
    """Every alert (silenced, inhibited and unprocessed included) grouped as Alertmanager's routes group them."""
    data = _call(endpoint, "GET", "alerts/groups", params=ALL_ALERTS, timeout=timeout)
    return _checked(endpoint, lambda d: [_group(g) for g in _list(d, "a list of alert groups")], data)


def alerts(endpoint: Endpoint, *, timeout: float = TIMEOUT) -> list[Alert]:
    """Every alert Alertmanager holds now, each once."""
    data = _call(endpoint, "GET", "alerts", params=ALL_ALERTS, timeout=timeout)
    return _checked(endpoint, lambda d: [_alert(a) for a in _list(d, "a list of alerts")], data)


def silences(endpoint: Endpoint, *, timeout: float = TIMEOUT) -> list[Silence]:
    data = _call(endpoint, "GET", "silences", timeout=timeout)
    return _checked(endpoint, lambda d: [_silence(s) for s in _list(d, "a list of silences")], data)


def _no_silence(endpoint: Endpoint, silence_id: str) -> str:
    return D(N_("Alertmanager at %(url)s has no silence %(id)s."), url=endpoint.shown, id=silence_id)


def silence(endpoint: Endpoint, silence_id: str) -> Silence:
    if not SILENCE_ID.match(silence_id or ""):
        raise Refused(_no_silence(endpoint, silence_id))
    data = _call(endpoint, "GET", f"silence/{silence_id}", not_found=_no_silence(endpoint, silence_id))
    return _checked(endpoint, _silence, data)


def create_silence(
    endpoint: Endpoint,
    *,
    matchers: list[Matcher],
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    comment: str,
) -> str:
    """Create a silence; its id."""
    body = {
        "matchers": [m.as_api() for m in matchers],
        "startsAt": starts_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "endsAt": ends_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "createdBy": created_by,
        "comment": comment,
    }
    data = _call(endpoint, "POST", "silences", body=body)

    def silence_id(d) -> str:
        found = _text(_dict(d, "a silence id").get("silenceID"), "a silence id")
        if not SILENCE_ID.match(found):
            raise _Shape("a silence id")
        return found

    return _checked(endpoint, silence_id, data)


def expire_silence(endpoint: Endpoint, silence_id: str) -> None:
    if not SILENCE_ID.match(silence_id or ""):
        raise Refused(_no_silence(endpoint, silence_id))
    _call(endpoint, "DELETE", f"silence/{silence_id}", not_found=_no_silence(endpoint, silence_id))


def post_alerts(endpoint: Endpoint, alerts: list[dict]) -> None:
    """Hand ``alerts`` (API v2 postable alerts: labels, annotations, startsAt, endsAt) to Alertmanager, as
    Prometheus does; used to send a test notification through a receiver's route."""
    _call(endpoint, "POST", "alerts", body=alerts)


def status(endpoint: Endpoint, *, timeout: float = TIMEOUT) -> Status:
    return _checked(endpoint, _status, _call(endpoint, "GET", "status", timeout=timeout))


def probe(endpoint: Endpoint) -> str | None:
    """None when Alertmanager at ``endpoint`` answers its status; the sentence saying why not otherwise."""
    try:
        status(endpoint)
    except AlertmanagerError as exc:
        return str(exc)
    return None
