"""Matches marked in a log line: HTML escaped first, then ``<mark>`` around what the keyword or pattern matched.

A keyword matches case-insensitively, as the log store matched it. A regular expression was run by the store
(RE2, linear time); here it is run again only to show where it matched, so it must never cost more than the
page: the pattern is bounded in length, must be a valid Python ``re`` pattern (RE2 syntax Python does not read
is simply not highlighted), and is run by the ``regex`` module with a timeout per line and a budget per page, so
a pattern that backtracks badly (``(a+)+$``) stops highlighting instead of holding a worker thread.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

if TYPE_CHECKING:  # regex is imported when a search is highlighted, not with the module
    import regex

MAX_PATTERN = 500  # longer patterns are searched by the store but not highlighted
MAX_TEXT = 20_000  # characters of a line that are highlighted; the rest is shown as it is
LINE_TIMEOUT = 0.02  # seconds one line's search may take
PAGE_BUDGET = 0.25  # seconds all lines of one answer may take; then highlighting stops
MAX_MARKS = 200  # marks in one line


@dataclass
class Marker:
    """Finds the spans to mark in each line of one answer (keyword or pattern), within a time budget."""

    pattern: regex.Pattern | None = None
    spent: float = 0.0
    stopped: bool = False

    @classmethod
    def for_search(cls, keyword: str = "", pattern: str = "") -> Marker:
        if pattern:
            return cls(pattern=compile_pattern(pattern))
        if keyword.strip():
            import regex

            return cls(pattern=regex.compile(regex.escape(keyword.strip()), regex.IGNORECASE | regex.V0))
        return cls()

    @property
    def active(self) -> bool:
        return self.pattern is not None and not self.stopped

    def spans(self, text: str) -> list[tuple[int, int]]:
        if not self.active:
            return []
        started = time.monotonic()
        found: list[tuple[int, int]] = []
        try:
            for match in self.pattern.finditer(text[:MAX_TEXT], timeout=LINE_TIMEOUT):
                if match.end() > match.start():
                    found.append(match.span())
                if len(found) >= MAX_MARKS:
                    break
        except TimeoutError:
            self.stopped = True
            return []
        finally:
            self.spent += time.monotonic() - started
            if self.spent > PAGE_BUDGET:
                self.stopped = True
        return found

    def mark(self, text: str) -> SafeString:
        """``text`` escaped, with each match in ``<mark>``."""
        return marked(text, self.spans(text))

    def matches(self, text: str) -> bool:
        """For filtering in Python (the Kubernetes fallback): no pattern matches everything."""
        if self.pattern is None:
            return True
        try:
            return self.pattern.search(text[:MAX_TEXT], timeout=LINE_TIMEOUT * 5) is not None
        except TimeoutError:
            return False


def compile_pattern(pattern: str) -> regex.Pattern | None:
    """The pattern to highlight with, or None when it is too long or not valid Python ``re``."""
    if not pattern or len(pattern) > MAX_PATTERN:
        return None
    import regex

    try:
        re.compile(pattern)  # Python's own syntax decides; regex (V0) reads the same patterns the same way
        return regex.compile(pattern, regex.V0)
    except (re.error, regex.error, OverflowError, RecursionError, ValueError):
        return None


def valid_pattern(pattern: str) -> bool:
    return compile_pattern(pattern) is not None


def marked(text: str, spans: list[tuple[int, int]]) -> SafeString:
    if not spans:
        return escape(text)
    parts, position = [], 0
    for start, end in spans:
        if start < position:
            continue
        parts.append(escape(text[position:start]))
        parts.append(f'<mark class="log-mark">{escape(text[start:end])}</mark>')
        position = end
    parts.append(escape(text[position:]))
    return mark_safe("".join(parts))  # noqa: S308 -- every piece of the line was escaped above
