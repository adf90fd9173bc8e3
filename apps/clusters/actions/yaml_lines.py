"""Which line of the YAML a person edited an error belongs to, so the editor can mark it there.

A syntax error carries its line (the YAML event stream stops at it: no document is built, nothing expands). A
refusal from Kubernetes names field paths ("spec.replicas: Invalid value: -3"); the path's keys are looked up in
the text in order, each below the one before, which is where a person reads them.
"""

from __future__ import annotations

import re

import yaml

FIELD_ERROR = re.compile(
    r"((?:[A-Za-z_][\w-]*(?:\[\d+\])?\.)*[A-Za-z_][\w-]*(?:\[\d+\])?): "
    r"(?:Invalid value|Required value|Unsupported value|Forbidden|Duplicate value|Too many|Too long|Not found)"
)
MAX_TEXT = 2 * 1024 * 1024


def syntax_error_line(text: str) -> int | None:
    """The 1-based line where the YAML stops being YAML, or None when it parses."""
    if len(text) > MAX_TEXT:
        return None
    try:
        for _event in yaml.parse(text, Loader=yaml.SafeLoader):
            pass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return mark.line + 1 if mark is not None else None
    except yaml.YAMLError:
        return None
    return None


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


def error_line(text: str, error: str) -> int | None:
    """The line to mark for ``error`` (the sentence shown) in the submitted ``text``; None when there is none."""
    line = syntax_error_line(text)
    if line is not None:
        return line
    match = FIELD_ERROR.search(error or "")
    return field_line(text, match.group(1)) if match else None
