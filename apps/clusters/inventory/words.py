"""Statuses, times, CPU and memory in words and badge colours; the template filters in
``templatetags/inventory.py`` wrap these, and views call them where they build text themselves."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from django.utils.html import format_html
from django.utils.translation import get_language, ngettext, pgettext, pgettext_lazy
from django.utils.translation import gettext as _

GOOD = frozenset(
    {"Running", "Available", "Ready", "Active", "Bound", "Complete", "Accepted", "Programmed", "Scheduled", "Normal"}
)
BUSY = frozenset({"Pending", "Progressing", "Terminating", "Limited", "Suspended", "Released", "ContainerCreating"})
# Pod states that need a person (the overview's "needs attention" list), and every state drawn in red.
POD_PROBLEMS = (
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "RunContainerError",
    "Failed",
)
BAD = frozenset(POD_PROBLEMS) | {"Degraded", "NotReady", "NoEndpoints", "NotAccepted", "Warning", "Lost", "Unknown"}


# Kubernetes' status words in the reader's language; pages show the label with the original word in the tooltip
# (``status_html``), the same on every page. A word not listed shows as Kubernetes wrote it.
STATUS_LABELS = {
    "Running": pgettext_lazy("Kubernetes status", "Running"),
    "Pending": pgettext_lazy("Kubernetes status", "Pending"),
    "Succeeded": pgettext_lazy("Kubernetes status", "Succeeded"),
    "Failed": pgettext_lazy("Kubernetes status", "Failed"),
    "Unknown": pgettext_lazy("Kubernetes status", "Unknown"),
    "CrashLoopBackOff": pgettext_lazy("Kubernetes status", "CrashLoopBackOff"),
    "ImagePullBackOff": pgettext_lazy("Kubernetes status", "ImagePullBackOff"),
    "ErrImagePull": pgettext_lazy("Kubernetes status", "ErrImagePull"),
    "CreateContainerConfigError": pgettext_lazy("Kubernetes status", "CreateContainerConfigError"),
    "RunContainerError": pgettext_lazy("Kubernetes status", "RunContainerError"),
    "ContainerCreating": pgettext_lazy("Kubernetes status", "ContainerCreating"),
    "PodInitializing": pgettext_lazy("Kubernetes status", "PodInitializing"),
    "Terminating": pgettext_lazy("Kubernetes status", "Terminating"),
    "Completed": pgettext_lazy("Kubernetes status", "Completed"),
    "Complete": pgettext_lazy("Kubernetes status", "Complete"),
    "Available": pgettext_lazy("Kubernetes status", "Available"),
    "Progressing": pgettext_lazy("Kubernetes status", "Progressing"),
    "Degraded": pgettext_lazy("Kubernetes status", "Degraded"),
    "ScaledDown": pgettext_lazy("Kubernetes status", "ScaledDown"),
    "Suspended": pgettext_lazy("Kubernetes status", "Suspended"),
    "Active": pgettext_lazy("Kubernetes status", "Active"),
    "Ready": pgettext_lazy("Kubernetes status", "Ready"),
    "NotReady": pgettext_lazy("Kubernetes status", "NotReady"),
    "SchedulingDisabled": pgettext_lazy("Kubernetes status", "SchedulingDisabled"),
    "Bound": pgettext_lazy("Kubernetes status", "Bound"),
    "Released": pgettext_lazy("Kubernetes status", "Released"),
    "Lost": pgettext_lazy("Kubernetes status", "Lost"),
    "Accepted": pgettext_lazy("Kubernetes status", "Accepted"),
    "NotAccepted": pgettext_lazy("Kubernetes status", "NotAccepted"),
    "Programmed": pgettext_lazy("Kubernetes status", "Programmed"),
    "NotProgrammed": pgettext_lazy("Kubernetes status", "NotProgrammed"),
    "Normal": pgettext_lazy("Kubernetes status", "Normal"),
    "Warning": pgettext_lazy("Kubernetes status", "Warning"),
    "True": pgettext_lazy("Kubernetes status", "True"),
    "False": pgettext_lazy("Kubernetes status", "False"),
    "Waiting": pgettext_lazy("Kubernetes status", "Waiting"),
    "Terminated": pgettext_lazy("Kubernetes status", "Terminated"),
    "NoEndpoints": pgettext_lazy("Kubernetes status", "NoEndpoints"),
    "Limited": pgettext_lazy("Kubernetes status", "Limited"),
    "Scheduled": pgettext_lazy("Kubernetes status", "Scheduled"),
    "Evicted": pgettext_lazy("Kubernetes status", "Evicted"),
    "OOMKilled": pgettext_lazy("Kubernetes status", "OOMKilled"),
}


def status_label(status: str) -> str:
    """The reader's words for a status ("Ready,SchedulingDisabled" reads as two)."""
    separator = pgettext("list separator", ", ")
    return separator.join(str(STATUS_LABELS.get(part, part)) for part in str(status or "").split(","))


def status_html(status: str):
    """The label with Kubernetes' own word in the tooltip and in ``data-word``."""
    if not status:
        return "—"
    return _status_html(str(status), get_language())


@lru_cache(maxsize=512)
def _status_html(status: str, _language: str):
    # A list page shows the same few statuses on every row: worked out once per status and language.
    return format_html('<span title="{}" data-word="{}">{}</span>', status, status, status_label(status))


def badge_class(status: str) -> str:
    """Tabler badge colours: green for healthy, yellow for in progress, red for a problem."""
    first = (status or "").split(",", 1)[0]
    if first in BAD:
        return "bg-red-lt"
    if "SchedulingDisabled" in (status or "") or first in BUSY:
        return "bg-yellow-lt"
    if first in GOOD:
        return "bg-green-lt"
    return "bg-secondary-lt"


def duration_words(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return _("%(n)d s") % {"n": seconds}
    minutes = seconds // 60
    if minutes < 60:
        return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    hours = minutes // 60
    if hours < 48:
        return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
    days = hours // 24
    return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}


def short_age(created: datetime | None, now: datetime) -> str:
    """kubectl-style age: 45s, 12m, 5h, 3d."""
    if created is None:
        return ""
    seconds = max(int((now - created).total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def cpu_words(millis: int | None) -> str:
    if millis is None:
        return "—"
    cores = f"{millis / 1000:.2f}".rstrip("0").rstrip(".")
    return ngettext("%(n)s core", "%(n)s cores", 1 if cores == "1" else 2) % {"n": cores}


def bytes_words(value: int | None) -> str:
    if value is None:
        return "—"
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"
