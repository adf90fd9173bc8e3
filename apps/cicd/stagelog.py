"""A stage's log and fields, written as the stage runs (shared by the runner and the in-cluster build follower)."""

from __future__ import annotations

from django.utils import timezone

from apps.cicd.models import Stage
from apps.core.deferred import N_, fit
from apps.core.deferred import text as D

MAX_LOG_LINES = 2000
# The words for stages and severities inside stored sentences (deferred too: read in the reader's language).
WORDS = {
    "source": N_("source"),
    "build": N_("build"),
    "scan": N_("scan"),
    "push": N_("push"),
    "deploy": N_("deploy"),
    "critical": N_("critical"),
    "high": N_("high"),
    "medium": N_("medium"),
    "low": N_("low"),
    "unknown": N_("unknown"),
}


def word(key: str) -> str:
    """The deferred word for a stage or a severity (the key itself when there is none)."""
    return D(WORDS[key]) if key in WORDS else key


class StageLog:
    """Appends to a stage's log (kept in its row, so the page polling it sees lines as they come)."""

    def __init__(self, stage: Stage):
        self.stage = stage
        self.lines: list = list(stage.log or [])

    def __call__(self, text: str, level: str = "info") -> None:
        if len(self.lines) >= MAX_LOG_LINES:
            return
        if len(self.lines) == MAX_LOG_LINES - 1:
            text, level = D(N_("The log is cut here (%(count)s lines)."), count=MAX_LOG_LINES), "warning"
        self.lines.append([timezone.now().isoformat(timespec="seconds"), level, fit(text, 2000)])
        Stage.objects.filter(pk=self.stage.pk).update(log=self.lines)


def update(stage: Stage, **fields) -> None:
    for key, value in fields.items():
        setattr(stage, key, value)
    Stage.objects.filter(pk=stage.pk).update(**fields)
