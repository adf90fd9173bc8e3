"""Reports as PDF, with WeasyPrint: the run's report (``render_pdf``) and, through ``write_pdf``, the weekly one.

Chinese must print as Chinese: the print stylesheet asks for "Noto Sans CJK SC" (Debian's fonts-noto-cjk, found by
fontconfig) and ``require_cjk_font`` refuses, with a sentence, to make a PDF when fontconfig would answer another
family, rather than hand out a document of empty boxes. WeasyPrint embeds the subset of the font the text uses.

Nothing is fetched from the network while rendering: customers run air-gapped, and a report's text (a subject, a
message from a cluster) must not be able to make the server fetch a URL. ``pdf_engine.LocalFetcher`` serves files
from the static folders only and refuses every other URL. Charts are SVG drawn on the server
(``build.line_chart``). WeasyPrint runs in a child process that exits after each PDF (``pdf_engine.py``): the web
and worker processes never carry it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import translation

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.inspection.reports.build import Report

logger = logging.getLogger(__name__)

CJK_FAMILY = "Noto Sans CJK SC"
PRINT_CSS = "kubemate/inspection-print.css"
ENGINE = "apps.inspection.reports.pdf_engine"
FONT_MISSING = 3  # pdf_engine.FONT_MISSING (not imported: that module imports WeasyPrint)
ENGINE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR")
RENDER_SECONDS = 300  # a report of PDF_FINDINGS lays out in a few seconds; a stuck layout is stopped


# Findings printed in a PDF (the page shows more; counts stay exact). WeasyPrint lays out ~110 findings a second
# on one core: 300 keep a download or an email's attachment within a few seconds and ~150 MB.
PDF_FINDINGS = 300


class PdfUnavailable(Failure):
    """A PDF cannot be made on this server; the sentence says what to install."""


def _engine(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    """WeasyPrint in a child process (``pdf_engine.py`` says why): this process never imports it."""
    # Only what fonts and Python need: none of the console's settings (and their secrets) reach the child.
    env = {k: v for k, v in os.environ.items() if k in ENGINE_ENV or k.startswith(("FONTCONFIG", "XDG_"))}
    env["PYTHONPATH"] = str(settings.BASE_DIR)
    return subprocess.run(
        [sys.executable, "-m", ENGINE, *args],
        input=stdin,
        capture_output=True,
        cwd=settings.BASE_DIR,
        env=env,
        timeout=RENDER_SECONDS,
        check=False,
    )


def _font_missing(family: str, found: str) -> PdfUnavailable:
    return PdfUnavailable(
        D(
            N_(
                "The PDF cannot be made: the font %(font)s, which has the Chinese characters, is not installed "
                "on the Kubemate server (fontconfig offers %(found)s instead). Install Debian's fonts-noto-cjk "
                "package there."
            ),
            font=family,
            found=found or "-",
        )
    )


def matched_family(family: str) -> str:
    """The family fontconfig gives for ``family`` (another family when it is not installed: its fallback)."""
    done = _engine(["--match", family])
    if done.returncode != 0:
        raise PdfUnavailable(_failure(done))
    return done.stdout.decode(errors="replace")


def require_cjk_font(family: str = CJK_FAMILY) -> None:
    found = matched_family(family)
    if found != family:
        raise _font_missing(family, found)


def _failure(done: subprocess.CompletedProcess) -> str:
    error = done.stderr.decode(errors="replace").strip().splitlines()
    logger.error("the PDF engine failed", extra={"code": done.returncode, "error": "\n".join(error[-20:])})
    return D(N_("The PDF could not be made (%(error)s)."), error=(error[-1] if error else done.returncode))


def _static_roots() -> list[Path]:
    roots = [Path(p).resolve() for p in settings.STATICFILES_DIRS]
    if settings.STATIC_ROOT:
        roots.append(Path(settings.STATIC_ROOT).resolve())
    return roots


def print_stylesheet() -> str:
    found = finders.find(PRINT_CSS)
    if not found:  # part of the source tree: its absence is a broken installation
        raise RuntimeError(f"{PRINT_CSS} is missing from the static files")
    return found


def write_pdf(html: str, family: str = CJK_FAMILY) -> bytes:
    """``html`` (a whole document, rendered) as PDF bytes, with the print stylesheet and the CJK font, laid out by
    a child process; only files of the static folders are read while rendering."""
    roots = _static_roots()
    header = {
        "base_url": roots[0].as_uri() + "/",
        "stylesheet": print_stylesheet(),
        "roots": [str(root) for root in roots],
        "family": family,
    }
    try:
        done = _engine([], json.dumps(header).encode() + b"\n" + html.encode())
    except subprocess.TimeoutExpired:
        raise PdfUnavailable(
            D(N_("The PDF could not be made: laying it out took over %(seconds)s s."), seconds=RENDER_SECONDS)
        ) from None
    if done.returncode == FONT_MISSING:
        raise _font_missing(family, done.stdout.decode(errors="replace"))
    if done.returncode != 0 or not done.stdout.startswith(b"%PDF-"):
        raise PdfUnavailable(_failure(done))
    return done.stdout


def render_pdf(report: Report, language: str) -> bytes:
    """The run's report as PDF in ``language``."""
    with translation.override(language):
        html = render_to_string(
            "inspection/report/pdf.html", {"report": report, "run": report.run, "language": language}
        )
    return write_pdf(html)


def filename(run) -> str:
    day = (run.finished_at or run.created_at).strftime("%Y-%m-%d")
    return f"inspection-{run.template.slug}-{day}.pdf"
