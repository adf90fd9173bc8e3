"""WeasyPrint, run in a child process of its own: ``python -m apps.inspection.reports.pdf_engine``.

WeasyPrint with its fonts, Pillow and fontTools is ~31 MB of imports and lays a report out in ~150 MB of heap that
Python keeps after the work. Web and worker processes live for weeks and render a PDF now and then; rendering in
a child that exits returns all of it (bench/README.md, "the footprint"). This module imports neither Django nor
the project: the parent (``pdf.py``, the door) passes what it needs.

Protocol: the first line of stdin is a JSON header ``{"base_url", "stylesheet", "roots", "family"}``, the rest is
the HTML document (UTF-8). The PDF is written to stdout, exit 0. Exit 3 with the family fontconfig offers instead
on stdout when ``family`` is not installed. Anything else: exit 1 with the error on stderr. ``--match FAMILY``
prints the family fontconfig gives for FAMILY.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from weasyprint import CSS, HTML
from weasyprint.text.ffi import ffi, fontconfig
from weasyprint.urls import URLFetcher, URLFetcherResponse

MAX_STATIC_BYTES = 4 * 2**20
FONT_MISSING = 3


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


class LocalFetcher(URLFetcher):
    """Serves ``file:`` URLs inside ``roots`` (the static folders: the print stylesheet, the logo); refuses
    everything else, so rendering never reaches the network or another file of the server."""

    def __init__(self, roots: list[Path], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.roots = [Path(root).resolve() for root in roots]

    def fetch(self, url, headers=None):
        if not url.startswith("file:"):
            raise ValueError("only local static files are fetched for reports")
        path = Path(url2pathname(urlsplit(url).path)).resolve()
        if not any(path.is_relative_to(root) for root in self.roots) or not path.is_file():
            raise ValueError("only local static files are fetched for reports")
        if path.stat().st_size > MAX_STATIC_BYTES:
            raise ValueError("static file too large for a report")
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {})


def render(html: str, *, base_url: str, stylesheet: str, roots: list[str]) -> bytes:
    fetcher = LocalFetcher([Path(root) for root in roots])
    document = HTML(string=html, base_url=base_url, url_fetcher=fetcher)
    return document.write_pdf(stylesheets=[CSS(filename=stylesheet, url_fetcher=fetcher)])


def main(argv: list[str]) -> int:
    if argv[:1] == ["--match"] and len(argv) == 2:
        sys.stdout.write(matched_family(argv[1]))
        return 0
    header = json.loads(sys.stdin.buffer.readline())
    html = sys.stdin.buffer.read().decode("utf-8")
    found = matched_family(header["family"])
    if found != header["family"]:
        sys.stdout.write(found)
        return FONT_MISSING
    sys.stdout.buffer.write(
        render(html, base_url=header["base_url"], stylesheet=header["stylesheet"], roots=header["roots"])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
