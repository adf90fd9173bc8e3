"""Which line of the YAML a person edited an error belongs to, so the editor can mark it there.

A syntax error carries its line from the bounded loader (``UntrustedInput.line``; nothing is parsed again here, so
a hostile text costs no second parse). A refusal from Kubernetes names field paths ("spec.replicas: Invalid
value: -3"); the path's keys are looked up in the text in order, each below the one before, which is where a
person reads them.
"""

from __future__ import annotations

import re

FIELD_ERROR = re.compile(
    r"((?:[A-Za-z_][\w-]*(?:\[\d+\])?\.)*[A-Za-z_][\w-]*(?:\[\d+\])?): "
    r"(?:Invalid value|Required value|Unsupported value|Forbidden|Duplicate value|Too many|Too long|Not found)"
)
MAX_TEXT = 2 * 1024 * 1024


def field_line(text: str, path: str) -> int | None:
    """The 1-based line of the last key of ``path`` (``spec.template.spec.containers[0].image``) in ``text``."""
    lines = text.splitlines()
    start, found = 0, None
    for key in re.sub(r"\[\d+\]", "", path).split("."):
        pattern = re.compile(rf"^\s*(?:-\s+)?{re.escape(key)}\s*:")
        for number in range(start, len(lines)):
            if pattern.match(lines[number]):
                found, start = number + 1, number + 1
                break
        else:
            return found
    return found


def error_line(text: str, error: str, line: int | None = None) -> int | None:
    """The line to mark for ``error`` (the sentence shown) in the submitted ``text``: ``line`` when the error
    knows it, else the line of the field a Kubernetes refusal names; None when there is none."""
    if line is not None:
        return line
    if len(text) > MAX_TEXT:
        return None
    match = FIELD_ERROR.search(error or "")
    return field_line(text, match.group(1)) if match else None
