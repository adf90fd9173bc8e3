"""The trace search's parameters, checked: cluster, service, operation, namespace, tags, durations, time range,
limit.

Other pages link here with GET parameters (``cluster``, ``service``, ``namespace``, ``operation``, ``tags`` as
key=value lines, ``start`` and ``end`` in ISO 8601 or as the form's local times), so every parameter is read the
same way whether a person typed it or a link carried it. Durations are written as Jaeger's UI takes them
("100ms", "1.5s", "2m", "250us").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.clusters import values
from apps.observability import jaeger

RANGES = {
    "15m": (15 * 60, gettext_lazy("Last 15 min")),
    "1h": (3600, gettext_lazy("Last 1 h")),
    "6h": (6 * 3600, gettext_lazy("Last 6 h")),
    "24h": (24 * 3600, gettext_lazy("Last 24 h")),
    "7d": (7 * 86400, gettext_lazy("Last 7 d")),
}
DEFAULT_RANGE = "1h"
CUSTOM = "custom"
CUSTOM_MAX = timedelta(days=31)
LOCAL_INPUT = "%Y-%m-%dT%H:%M"
LIMITS = (10, 20, 50, 100)
DEFAULT_LIMIT = 20
MAX_TAGS = 10
TAG_KEY_MAX = 200
TAG_VALUE_MAX = 1000
NAME_MAX = 256
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)\s*$")
UNITS = {"us": 1, "µs": 1, "ms": 1000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
TAG_KEY = re.compile(r"^[A-Za-z0-9_.:/@-]{1,200}$")


def duration_us(text: str) -> int | None:
    """Microseconds of "100ms", "1.5s"…; None for an empty text; ValueError when it cannot be read."""
    text = (text or "").strip()
    if not text:
        return None
    match = DURATION.match(text)
    if not match:
        raise ValueError(text)
    return int(float(match.group(1)) * UNITS[match.group(2)])


def parse_tags(text: str) -> dict[str, str]:
    """key=value lines (blank lines skipped); ValueError naming the first line that cannot be read."""
    found: dict[str, str] = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not TAG_KEY.match(key) or len(value) > TAG_VALUE_MAX:
            raise ValueError(line[:80])
        found[key] = value
    return found


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time (with or without its zone: without, the reader's) or the form's local input."""
    text = (text or "").strip()[:40]
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


@dataclass(frozen=True)
class Window:
    key: str
    start: datetime
    end: datetime
    problem: str = ""

    @property
    def start_input(self) -> str:
        return timezone.localtime(self.start).strftime(LOCAL_INPUT)

    @property
    def end_input(self) -> str:
        return timezone.localtime(self.end).strftime(LOCAL_INPUT)

    def params(self) -> dict[str, str]:
        if self.key == CUSTOM and not self.problem:
            return {"range": CUSTOM, "start": self.start.isoformat(), "end": self.end.isoformat()}
        return {"range": self.key if self.key in RANGES else DEFAULT_RANGE}


def window_from(data, now: datetime | None = None) -> Window:
    """The range asked for: ``range`` (15m … 7d) up to now, or ``start`` and ``end`` (a link's or the form's
    custom range, at most 31 days); anything unreadable is the last hour, a custom range that cannot be used
    says why."""
    now = (now or timezone.now()).replace(microsecond=0) + timedelta(seconds=1)
    key = str(data.get("range") or "")
    start_text, end_text = str(data.get("start") or ""), str(data.get("end") or "")
    if key == CUSTOM or (not key and (start_text or end_text)):
        start, end = parse_time(start_text), parse_time(end_text)
        problem = ""
        if start is None or end is None:
            problem = _("Choose a start and an end for the custom range.")
        elif end <= start:
            problem = _("The custom range must end after it starts.")
        elif end - start > CUSTOM_MAX:
            problem = _("The custom range may cover at most 31 days.")
        if not problem:
            return Window(CUSTOM, start, end)
        return Window(CUSTOM, now - timedelta(seconds=RANGES[DEFAULT_RANGE][0]), now, problem)
    if key not in RANGES:
        key = DEFAULT_RANGE
    return Window(key, now - timedelta(seconds=RANGES[key][0]), now)


class TraceSearchForm(forms.Form):
    cluster = forms.IntegerField(required=False, min_value=1)
    service = forms.CharField(label=gettext_lazy("Service"), required=False, max_length=NAME_MAX)
    operation = forms.CharField(label=gettext_lazy("Operation"), required=False, max_length=NAME_MAX)
    namespace = forms.CharField(label=gettext_lazy("Namespace"), required=False, max_length=values.DNS_LABEL_MAX)
    tags = forms.CharField(
        label=gettext_lazy("Tags"),
        required=False,
        max_length=MAX_TAGS * (TAG_KEY_MAX + TAG_VALUE_MAX + 2),
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    min_duration = forms.CharField(label=gettext_lazy("Longer than"), required=False, max_length=20)
    max_duration = forms.CharField(label=gettext_lazy("Shorter than"), required=False, max_length=20)
    limit = forms.TypedChoiceField(
        label=gettext_lazy("At most"),
        required=False,
        coerce=int,
        choices=[(n, n) for n in LIMITS],
        empty_value=DEFAULT_LIMIT,
    )

    def clean_namespace(self):
        value = (self.cleaned_data.get("namespace") or "").strip()
        if value and not values.is_dns_label(value):
            raise forms.ValidationError(_("A namespace name is lower-case letters, digits and -."))
        return value

    def clean_tags(self):
        try:
            found = parse_tags(self.cleaned_data.get("tags") or "")
        except ValueError as exc:
            raise forms.ValidationError(
                _("Write one tag a line as key=value; this line cannot be read: %(line)s") % {"line": exc.args[0]}
            ) from None
        if len(found) > MAX_TAGS:
            raise forms.ValidationError(_("At most %(n)s tags.") % {"n": MAX_TAGS})
        return found

    def _duration(self, name: str) -> int | None:
        try:
            return duration_us(self.cleaned_data.get(name) or "")
        except ValueError:
            raise forms.ValidationError(_("Write a duration such as 100ms, 1.5s or 2m.")) from None

    def clean_min_duration(self):
        return self._duration("min_duration")

    def clean_max_duration(self):
        return self._duration("max_duration")

    def clean(self):
        data = super().clean()
        low, high = data.get("min_duration"), data.get("max_duration")
        if low is not None and high is not None and high < low:
            self.add_error("max_duration", _("The longest duration must not be shorter than the shortest."))
        return data

    def query(self, window: Window) -> jaeger.Query | None:
        """The search for Jaeger, or None while no service is chosen (Jaeger searches within one service)."""
        data = self.cleaned_data
        if not data.get("service"):
            return None
        tags = dict(data.get("tags") or {})
        if data.get("namespace"):
            tags["k8s.namespace.name"] = data["namespace"]
        return jaeger.Query(
            service=data["service"],
            operation=data.get("operation") or "",
            tags=tags,
            min_duration_us=data.get("min_duration"),
            max_duration_us=data.get("max_duration"),
            start=window.start,
            end=window.end,
            limit=data.get("limit") or DEFAULT_LIMIT,
        )


def tags_text(tags: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in tags.items())
