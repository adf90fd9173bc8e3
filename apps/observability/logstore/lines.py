"""The log store's answers as Kubemate reads them: ``LogLine``, ``Page`` and ``Histogram``, whatever the backend.

Both backends hand their rows to ``make_line``, so a line looks the same from VictoriaLogs and from Loki: its time
(stores count nanoseconds, Python's datetime only microseconds, so the exact time stays in the ``cursor``), its text
cut to ``MAX_LINE_CHARS``, its stream labels, its level normalised to error/warn/info/debug, the fields of a JSON or
logfmt line (bounded: a line is outside input, and a person's browser shows the fields), and a trace id when the
line carries one, so the pages can link a line to its trace.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

MAX_LINE_CHARS = 64 * 1024  # a longer line is cut: nobody reads more, and a page of 5000 lines stays bounded
MAX_FIELDS = 64  # fields kept of one line (JSON keys, logfmt pairs, store fields)
MAX_FIELD_CHARS = 1024  # a field's value is cut beyond this
MAX_FIELD_DEPTH = 4  # JSON objects nested deeper than this are kept as text
LEVELS = ("error", "warn", "info", "debug")
# What applications write for each level, lower-cased (Go's zap and logrus, Java's log4j, Python's logging, syslog).
LEVEL_WORDS = {
    "error": ("error", "err", "fatal", "critical", "crit", "panic", "emerg", "emergency", "alert", "severe", "e"),
    "warn": ("warn", "warning", "w"),
    "info": ("info", "information", "informational", "notice", "i"),
    "debug": ("debug", "trace", "dbg", "verbose", "d"),
}
_LEVEL_OF = {word: level for level, words in LEVEL_WORDS.items() for word in words}
_LEVEL_KEYS = ("level", "lvl", "severity", "loglevel", "log.level", "detected_level")
_TRACE_KEYS = ("trace_id", "traceID", "traceId", "traceid", "trace.id")
_TRACE_IN_LINE = re.compile(r"""["']?trace_?id["']?\s*[=:]\s*["']?([0-9a-fA-F]{16,32})\b""", re.IGNORECASE)
_HEX_ID = re.compile(r"[0-9a-fA-F]{16,32}")
_LOGFMT = re.compile(r'([A-Za-z_][A-Za-z0-9_.\-/]{0,127})=("(?:[^"\\]|\\.)*"|[^\s"]*)')
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class LogLine:
    """One log line. ``cursor`` is opaque to callers: it identifies the line (its exact time, its stream and text)
    for the live tail's "already seen" set and for the context of a line."""

    time: datetime
    line: str
    stream: dict[str, str]
    stream_id: str
    level: str
    fields: dict[str, str]
    trace_id: str
    cursor: str


@dataclass
class Page:
    """Lines newest first; ``more`` when older lines matched too, found by asking again with ``end=older_than``."""

    lines: list[LogLine]
    more: bool
    older_than: datetime | None


@dataclass
class Histogram:
    """Lines per bucket of ``step_seconds``, counted by level ("" for lines without a known level), oldest first."""

    step_seconds: int
    buckets: list[tuple[datetime, dict[str, int]]] = field(default_factory=list)


# Time ---------------------------------------------------------------------------------------------------------


def to_ns(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def from_ns(ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=ns // 1000)


def rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 with nanoseconds (both stores read it)."""
    seconds, rest = divmod(ns, 10**9)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"


@lru_cache(maxsize=1024)
def _day_seconds(day: str) -> int:
    """'2026-12-04' as the seconds from the epoch to its midnight (UTC); a page's lines share a few days."""
    return calendar.timegm(date(int(day[:4]), int(day[5:7]), int(day[8:10])).timetuple())


def parse_rfc3339_ns(text: str) -> int:
    """'2026-12-04T10:14:52.828802472Z' (as VictoriaLogs writes ``_time``) as nanoseconds; ValueError otherwise.

    Read by slicing (a page parses hundreds of these; ``strptime`` cost more than the rest of a row), with the
    checks ``strptime("%Y-%m-%dT%H:%M:%S")`` made: ASCII digits in place, a real date, hours, minutes, seconds."""
    text = text.strip()
    if not text.endswith("Z") or len(text) > 40:
        raise ValueError(text)
    whole, _, fraction = text[:-1].partition(".")
    digits = whole[0:4] + whole[5:7] + whole[8:10] + whole[11:13] + whole[14:16] + whole[17:19]
    if (
        len(whole) != 19
        or whole[4] != "-"
        or whole[7] != "-"
        or whole[10] != "T"
        or whole[13] != ":"
        or whole[16] != ":"
        or not (digits.isascii() and digits.isdigit())
    ):
        raise ValueError(text)
    hours, minutes, secs = int(whole[11:13]), int(whole[14:16]), int(whole[17:19])
    if hours > 23 or minutes > 59 or secs > 61:
        raise ValueError(text)
    seconds = _day_seconds(whole[:10]) + hours * 3600 + minutes * 60 + secs  # a bad date raises ValueError
    if fraction and not fraction.isdigit():
        raise ValueError(text)
    return seconds * 10**9 + int((fraction + "000000000")[:9] or 0)


# Levels, fields, trace ids -------------------------------------------------------------------------------------


def normalise_level(value: str) -> str:
    """'WARNING' -> 'warn', 'Err' -> 'error'; '' for what is not a level."""
    return _LEVEL_OF.get(str(value or "").strip().lower(), "")


def _cut(value) -> str:
    kind = type(value)
    if kind is str:
        text = value
    elif kind is int or (kind is float and math.isfinite(value)):
        text = repr(value)  # what json.dumps() writes for these, without its cost
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text[:MAX_FIELD_CHARS]


def _flatten(data: dict, into: dict[str, str], prefix: str = "", depth: int = 1) -> None:
    for key, value in data.items():
        if len(into) >= MAX_FIELDS:
            return
        name = f"{prefix}{key}"[:128]
        if isinstance(value, dict) and depth < MAX_FIELD_DEPTH:
            _flatten(value, into, f"{name}.", depth + 1)
        else:
            into[name] = "" if value is None else _cut(value)


def parse_fields(line: str) -> dict[str, str]:
    """The fields of a JSON object line (nested keys joined with '.') or of a logfmt line; {} for plain text."""
    text = line.strip()
    found: dict[str, str] = {}
    if text.startswith("{") and text.endswith("}"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict):
            _flatten(data, found)
            return found
    if "=" in text:
        for match in _LOGFMT.finditer(text):
            if len(found) >= MAX_FIELDS:
                break
            key, value = match.group(1), match.group(2)
            if value.startswith('"'):
                try:
                    value = json.loads(value)
                except ValueError:
                    value = value[1:-1]
            found[key] = _cut(value)
    return found


def find_trace_id(fields: dict[str, str], line: str) -> str:
    """The trace id a line carries (as a field, or as ``trace_id=…``/``"trace_id":"…"`` in its text), lower-case."""
    for key in _TRACE_KEYS:
        value = fields.get(key, "")
        if _HEX_ID.fullmatch(value or ""):
            return value.lower()
    match = _TRACE_IN_LINE.search(line[:MAX_LINE_CHARS])
    return match.group(1).lower() if match else ""


def cursor_of(ns: int, stream_id: str, line: str) -> str:
    """The line's time and 16 hex digits of a hash of its stream and text (BLAKE2b of 8 bytes: it tells lines of one
    moment apart, it guards nothing, so it needs no more)."""
    digest = hashlib.blake2b(f"{stream_id}\0{line}".encode(errors="replace"), digest_size=8).hexdigest()
    return f"{ns}.{digest}"


def ns_of_cursor(cursor: str) -> int | None:
    head = (cursor or "").partition(".")[0]
    return int(head) if head.isdigit() and len(head) <= 20 else None


def make_line(ns: int, text: str, stream: dict[str, str], stream_id: str, extra: dict[str, str] | None = None):
    """A LogLine from what a store answered: the text cut, fields parsed and bounded, level and trace id found."""
    text = text[:MAX_LINE_CHARS]
    fields = parse_fields(text)
    for key, value in (extra or {}).items():
        if len(fields) >= MAX_FIELDS:
            break
        fields.setdefault(key[:128], _cut(value))
    level = ""
    for source in (stream, fields):
        for key in _LEVEL_KEYS:
            if source.get(key):
                level = normalise_level(source[key])
                break
        if level:
            break
    return LogLine(
        time=from_ns(ns),
        line=text,
        stream=stream,
        stream_id=stream_id,
        level=level,
        fields=fields,
        trace_id=find_trace_id(fields, text),
        cursor=cursor_of(ns, stream_id, text),
    )
