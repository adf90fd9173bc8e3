"""Sentences written now and read later, in the reader's language.

Background work (job titles, progress lines, job logs, revision notes and messages, reasons stored in rows) does
not know who will read what it writes, nor in which language. It stores a *deferred* sentence instead: a message
id (marked for translation with ``gettext_noop``) and its parameters, encoded in the same text column::

    job.progress(5, deferred.text(N_("Waiting for the new pods of %(name)s."), name=release.name))

``render`` (the template filter ``tr`` in core's ``deferred`` tag library) turns it into the reader's language when
the page is shown. Parameters may be deferred sentences themselves; ``join`` stores several sentences read as one.
Plain text (rows written before, or what a cluster said) renders as itself. An encoding that would not fit its
column is stored rendered in the installation's language instead (``fit``), so a long sentence is never cut into
something that cannot be read.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

logger = logging.getLogger(__name__)

MARK = "\u2063km1:"  # an invisible separator, then a version tag: no sentence a person writes starts so
N_ = gettext_noop


def text(msgid: str, **params) -> str:
    """A deferred sentence: ``msgid`` % ``params`` in the language of whoever reads it."""
    clean = {k: (v if isinstance(v, int | float) else str(v)) for k, v in params.items()}
    return MARK + json.dumps({"id": msgid, "p": clean}, ensure_ascii=False, separators=(",", ":"))


def join(*parts: str, sep: str = " ") -> str:
    """Several sentences (deferred or plain) read as one."""
    parts = tuple(p for p in parts if p)
    if not any(is_deferred(p) for p in parts):
        return sep.join(parts)
    return MARK + json.dumps({"join": list(parts), "sep": sep}, ensure_ascii=False, separators=(",", ":"))


def is_deferred(value) -> bool:
    return isinstance(value, str) and value.startswith(MARK)


def render(value) -> str:
    """``value`` in the active language; plain text as itself."""
    if not is_deferred(value):
        return "" if value is None else str(value)
    try:
        data = json.loads(value[len(MARK) :])
        if "join" in data:
            return str(data.get("sep", " ")).join(render(part) for part in data["join"])
        params = {k: render(v) if isinstance(v, str) else v for k, v in (data.get("p") or {}).items()}
        sentence = gettext(data["id"])
        return sentence % params if params else sentence
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("a stored sentence could not be read", extra={"error": str(exc)})
        return value[len(MARK) :]


def in_installation_language(value) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return render(value)


def fit(value: str, limit: int) -> str:
    """``value`` for a column of ``limit`` characters: deferred when it fits, else rendered (installation language)
    and cut."""
    if value is None:
        return ""
    if len(value) <= limit:
        return value
    plain = in_installation_language(value) if is_deferred(value) else value
    return plain[:limit]


class Failure(Exception):
    """An error whose sentence may be deferred: ``str()`` is the sentence in the language active when it was raised
    (for the page answering now), ``stored`` the form to keep in a row (read later in the reader's language)."""

    def __init__(self, sentence: str):
        self.stored = sentence
        super().__init__(render(sentence))


def sentence_of(exc: BaseException) -> str:
    """The stored form of an exception's sentence (deferred when it was raised with one)."""
    stored = getattr(exc, "stored", None)
    if isinstance(stored, str) and stored:
        return stored
    return str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else str(exc)
