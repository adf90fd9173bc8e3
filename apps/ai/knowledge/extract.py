"""The text of an uploaded document, bounded before any work: txt, md, html, pdf and docx.

Every limit is checked before the work it guards, and every refusal is an ``ExtractError`` with a deferred
sentence (stored on the document, read in the reader's language), never a traceback:

- the file's size (``KUBEMATE_AI_DOCUMENT_MAX_MB``, 20) is checked at upload, and again here;
- the extracted characters (``KUBEMATE_AI_DOCUMENT_MAX_CHARACTERS``, 2,000,000) while text is gathered;
- a PDF's pages (``KUBEMATE_AI_DOCUMENT_MAX_PAGES``, 2,000) before a page is read;
- a docx is a zip: its entries (at most 1,000) and their declared uncompressed sizes (at most
  ``KUBEMATE_AI_DOCX_MAX_UNCOMPRESSED_MB``, 100, in all, and no entry packed more than 200 to 1) are read from the
  central directory before anything is inflated; Python's zipfile never inflates past the declared size;
- an HTML page's element depth (``HTML_MAX_DEPTH``) before its text is walked; scripts and styles are dropped.

``Extracted.pages`` holds, for a PDF, the offset in ``text`` where each page starts, so a chunk knows its page.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.conf import settings

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

MiB = 1024 * 1024
HTML_MAX_DEPTH = 200
DOCX_MAX_ENTRIES = 1_000
DOCX_MAX_RATIO = 200
# What each format's file name ends with, and the content type it is served back with.
FORMATS = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".log": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "caption",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "tfoot",
        "thead",
        "tr",
        "ul",
    }
)
DROPPED_TAGS = frozenset({"script", "style", "noscript", "template", "head", "iframe", "object", "svg"})


class ExtractError(Failure):
    """The document cannot be read; the sentence says why and what to do."""


@dataclass
class Extracted:
    text: str
    # (offset in text, page number from 1) where each page starts; empty when the format has no pages.
    pages: list[tuple[int, int]] = field(default_factory=list)


def max_bytes() -> int:
    return int(settings.KUBEMATE_AI_DOCUMENT_MAX_MB) * MiB


def max_characters() -> int:
    return int(settings.KUBEMATE_AI_DOCUMENT_MAX_CHARACTERS)


def max_pages() -> int:
    return int(settings.KUBEMATE_AI_DOCUMENT_MAX_PAGES)


def docx_max_uncompressed() -> int:
    return int(settings.KUBEMATE_AI_DOCX_MAX_UNCOMPRESSED_MB) * MiB


def suffix(name: str) -> str:
    return PurePosixPath((name or "").replace("\\", "/")).suffix.lower()


def content_type(name: str) -> str:
    return FORMATS.get(suffix(name), "application/octet-stream")


def accepted() -> str:
    """The accepted file name endings, for the upload field's hint and ``accept`` attribute."""
    return ",".join(FORMATS)


def check_upload(name: str, size: int, head: bytes | None = None) -> None:
    """The cheap checks an upload passes before it is stored: a known format, within the size, and bytes that start
    as that format does (a PDF with ``%PDF-``, a docx as a zip). ``head`` is the file's first bytes (None: not read
    yet, the format's first bytes are not checked)."""
    kind = suffix(name)
    if kind not in FORMATS:
        raise ExtractError(
            D(
                N_("%(name)s is not a format Kubemate reads: upload %(formats)s."),
                name=name,
                formats=", ".join(sorted({k.lstrip(".") for k in FORMATS})),
            )
        )
    if size > max_bytes():
        raise ExtractError(
            D(
                N_("%(name)s is larger than %(limit)s MiB: split it, or upload its text."),
                name=name,
                limit=max_bytes() // MiB,
            )
        )
    if size == 0:
        raise ExtractError(D(N_("%(name)s is empty."), name=name))
    if head is None:
        return
    if kind == ".pdf" and not head.lstrip()[:5] == b"%PDF-":
        raise ExtractError(D(N_("%(name)s is not a PDF file."), name=name))
    if kind == ".docx" and not head.startswith(b"PK\x03\x04"):
        raise ExtractError(D(N_("%(name)s is not a Word document (docx)."), name=name))


def extract(name: str, data: bytes) -> Extracted:
    """The text of ``data``, a file called ``name``; ``ExtractError`` when it cannot be read within the limits."""
    check_upload(name, len(data), data[:1024])
    kind = suffix(name)
    if kind == ".pdf":
        found = _pdf(name, data)
    elif kind == ".docx":
        found = _docx(name, data)
    elif kind in (".html", ".htm"):
        found = _html(name, data)
    else:
        found = Extracted(_plain(name, data))
    found.text = _tidy(found.text) if not found.pages else found.text
    if not found.text.strip():
        raise ExtractError(
            D(N_("%(name)s has no text to index (a scanned document needs text recognition first)."), name=name)
        )
    return found


def _too_long(name: str) -> ExtractError:
    return ExtractError(
        D(
            N_("%(name)s has more than %(limit)s characters of text: split it into smaller documents."),
            name=name,
            limit=max_characters(),
        )
    )


def _tidy(text: str) -> str:
    """Line ends as \\n, no trailing blanks, at most one empty line between paragraphs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[ \t\f\v]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _plain(name: str, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise ExtractError(D(N_("%(name)s does not look like text (it holds binary data)."), name=name))
    for encoding in ("utf-8-sig", "gb18030"):  # Chinese documents written on Windows are often GB18030
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = data.decode("utf-8", errors="replace")
    if len(text) > max_characters():
        raise _too_long(name)
    return text


# PDF --------------------------------------------------------------------------------------------------------------


def _pdf(name: str, data: bytes) -> Extracted:
    from pypdf import PdfReader

    unreadable = ExtractError(D(N_("%(name)s could not be read as a PDF file: it may be damaged."), name=name))
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractError(D(N_("%(name)s is protected by a password: upload it unprotected."), name=name))
        count = len(reader.pages)
    except ExtractError:
        raise
    except Exception as exc:  # pypdf raises many kinds for a damaged file
        raise unreadable from exc
    if count > max_pages():
        raise ExtractError(
            D(
                N_("%(name)s has %(pages)s pages, more than %(limit)s: split it into smaller documents."),
                name=name,
                pages=count,
                limit=max_pages(),
            )
        )
    parts: list[str] = []
    pages: list[tuple[int, int]] = []
    length = 0
    for number in range(count):
        try:
            page_text = reader.pages[number].extract_text() or ""
        except Exception as exc:  # one damaged page: the document is damaged
            raise unreadable from exc
        page_text = _tidy(page_text)
        if not page_text:
            continue
        if parts:
            parts.append("\n\n")
            length += 2
        pages.append((length, number + 1))
        parts.append(page_text)
        length += len(page_text)
        if length > max_characters():
            raise _too_long(name)
    return Extracted("".join(parts), pages)


# docx -------------------------------------------------------------------------------------------------------------


def _docx(name: str, data: bytes) -> Extracted:
    bad = ExtractError(D(N_("%(name)s could not be read as a Word document (docx): it may be damaged."), name=name))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise bad from None
    if len(entries) > DOCX_MAX_ENTRIES:
        raise ExtractError(
            D(
                N_("%(name)s holds %(count)s parts, more than a Word document has: it was not opened."),
                name=name,
                count=len(entries),
            )
        )
    total = sum(e.file_size for e in entries)
    packed = max((e.file_size / max(e.compress_size, 1) for e in entries), default=0)
    if total > docx_max_uncompressed() or packed > DOCX_MAX_RATIO:
        raise ExtractError(
            D(
                N_("%(name)s unpacks to more than a document should (a zip bomb?): it was not opened."),
                name=name,
            )
        )
    if "word/document.xml" not in {e.filename for e in entries}:
        raise bad
    try:
        import docx

        document = docx.Document(io.BytesIO(data))
        paragraphs: list[str] = []
        length = 0
        for block in _blocks(document):
            if block.strip():
                paragraphs.append(block)
                length += len(block) + 2
                if length > max_characters():
                    raise _too_long(name)
    except ExtractError:
        raise
    except Exception as exc:  # python-docx and lxml raise many kinds for a damaged part
        raise bad from exc
    return Extracted("\n\n".join(paragraphs))


def _blocks(document):
    """Paragraphs and table rows (cells joined by " | ") in the order the body holds them."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            yield item.text
        elif isinstance(item, Table):
            for row in item.rows:
                cells = []
                for cell in row.cells:
                    text = " ".join(cell.text.split())
                    if text and (not cells or cells[-1] != text):  # merged cells repeat their text
                        cells.append(text)
                yield " | ".join(cells)


# HTML -------------------------------------------------------------------------------------------------------------


def _html(name: str, data: bytes) -> Extracted:
    from lxml import etree, html

    parser = html.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, huge_tree=False)
    try:
        root = html.document_fromstring(data, parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        raise ExtractError(D(N_("%(name)s could not be read as an HTML page."), name=name)) from None
    if _depth(root) > HTML_MAX_DEPTH:
        raise ExtractError(
            D(
                N_("%(name)s nests its elements deeper than %(limit)s levels: it was not read."),
                name=name,
                limit=HTML_MAX_DEPTH,
            )
        )
    parts: list[str] = []
    budget = [max_characters()]

    def add(text: str | None) -> None:
        if text:
            budget[0] -= len(text)
            if budget[0] < 0:
                raise _too_long(name)
            parts.append(text)

    _walk(root, add)
    text = "".join(parts)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return Extracted("\n".join(lines))


def _depth(root) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        element, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > HTML_MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in element)
    return deepest


def _walk(element, add) -> None:
    """Text in document order: blocks start on their own paragraph, <br> ends a line, scripts and styles dropped.
    Recursion is safe: the depth was bounded before."""
    tag = element.tag if isinstance(element.tag, str) else ""
    tag = tag.lower()
    if tag in DROPPED_TAGS:
        add(_tail(element))
        return
    if tag == "br":
        add("\n")
    elif tag in BLOCK_TAGS:
        add("\n\n")
    add(element.text)
    for child in element:
        _walk(child, add)
    if tag in BLOCK_TAGS:
        add("\n\n")
    elif tag in ("td", "th"):
        add(" ")
    add(_tail(element))


def _tail(element) -> str:
    return element.tail or ""
