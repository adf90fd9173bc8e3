"""Reports as PDF, with WeasyPrint: the run's report (``render_pdf``) and, through ``write_pdf``, the weekly one.

Chinese must print as Chinese: the print stylesheet asks for "Noto Sans CJK SC" (Debian's fonts-noto-cjk, found by
fontconfig) and ``require_cjk_font`` refuses, with a sentence, to make a PDF when fontconfig would answer another
family, rather than hand out a document of empty boxes. WeasyPrint embeds the subset of the font the text uses.

Nothing is fetched from the network while rendering: customers run air-gapped, and a report's text (a subject, a
message from a cluster) must not be able to make the server fetch a URL. ``LocalFetcher`` serves files from the
static folders only and refuses every other URL. Charts are SVG drawn on the server (``build.line_chart``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import translation
from weasyprint import CSS, HTML
from weasyprint.text.ffi import ffi, fontconfig
from weasyprint.urls import URLFetcher, URLFetcherResponse

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.inspection.reports.build import Report

logger = logging.getLogger(__name__)

CJK_FAMILY = "Noto Sans CJK SC"
PRINT_CSS = "kubemate/inspection-print.css"
MAX_STATIC_BYTES = 4 * 2**20


# Findings printed in a PDF (the page shows more; counts stay exact). WeasyPrint lays out ~110 findings a second
# on one core: 300 keep a download or an email's attachment within a few seconds and ~150 MB.
PDF_FINDINGS = 300


class PdfUnavailable(Failure):
    """A PDF cannot be made on this server; the sentence says what to install."""


def matched_family(family: str) -> str:
    """The family fontconfig gives for ``family`` (another family when it is not installed: its fallback)."""
    pattern = fontconfig.FcPatternCreate()
    try:
        fontconfig.FcPatternAddString(pattern, b"family", family.encode())
        fontconfig.FcConfigSubstitute(ffi.NULL, pattern, fontconfig.FcMatchPattern)
        fontconfig.FcDefaultSubstitute(pattern)
        result = ffi.new("FcResult *")
        match = fontconfig.FcFontMatch(ffi.NULL, pattern, result)
        if match == ffi.NULL:
            return ""
        try:
            name = ffi.new("FcChar8 **")
            if fontconfig.FcPatternGetString(match, b"family", 0, name) != fontconfig.FcResultMatch:
                return ""
            return ffi.string(name[0]).decode(errors="replace")
        finally:
            fontconfig.FcPatternDestroy(match)
    finally:
        fontconfig.FcPatternDestroy(pattern)


def require_cjk_font(family: str = CJK_FAMILY) -> None:
    found = matched_family(family)
    if found != family:
        raise PdfUnavailable(
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


def _static_roots() -> list[Path]:
    roots = [Path(p).resolve() for p in settings.STATICFILES_DIRS]
    if settings.STATIC_ROOT:
        roots.append(Path(settings.STATIC_ROOT).resolve())
    return roots


class LocalFetcher(URLFetcher):
    """Serves ``file:`` URLs inside the static folders (the print stylesheet, the logo); refuses everything else,
    so rendering never reaches the network or another file of the server."""

    def fetch(self, url, headers=None):
        if not url.startswith("file:"):
            raise ValueError("only local static files are fetched for reports")
        path = Path(url2pathname(urlsplit(url).path)).resolve()
        if not any(path.is_relative_to(root) for root in _static_roots()) or not path.is_file():
            raise ValueError("only local static files are fetched for reports")
        if path.stat().st_size > MAX_STATIC_BYTES:
            raise ValueError("static file too large for a report")
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {})


def print_stylesheet() -> CSS:
    found = finders.find(PRINT_CSS)
    if not found:  # part of the source tree: its absence is a broken installation
        raise RuntimeError(f"{PRINT_CSS} is missing from the static files")
    return CSS(filename=found, url_fetcher=LocalFetcher())


def write_pdf(html: str) -> bytes:
    """``html`` (a whole document, rendered) as PDF bytes, with the print stylesheet and the CJK font."""
    require_cjk_font()
    base = _static_roots()[0].as_uri() + "/"
    document = HTML(string=html, base_url=base, url_fetcher=LocalFetcher())
    return document.write_pdf(stylesheets=[print_stylesheet()])


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
