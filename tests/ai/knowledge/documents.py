"""Documents made in the test, never downloaded: a PDF with real text operators (pypdf's writer, Helvetica), a
Word document (python-docx), an HTML page, and the hostile ones (a zip bomb dressed as a docx, a deep HTML page)."""

from __future__ import annotations

import io
import textwrap
import zipfile

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf(pages: list[str]) -> bytes:
    """A PDF with one page per text, each line drawn with Tj so pypdf extracts it back."""
    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
                NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
            }
        )
    )
    for text in pages:
        page = writer.add_blank_page(612, 792)
        lines = [line for paragraph in text.split("\n") for line in (textwrap.wrap(paragraph, 90) or [""])]
        ops = ["BT", "/F1 10 Tf", "14 TL", "40 750 Td"]
        ops += [f"({_escape(line)}) Tj T*" for line in lines]
        ops.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb(uncompressed_mib: int = 150) -> bytes:
    """A "docx" whose one part inflates to ``uncompressed_mib`` MiB of zeros from a few hundred KiB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            block = b"\0" * (1024 * 1024)
            for _ in range(uncompressed_mib):
                part.write(block)
    return out.getvalue()


def deep_html(depth: int) -> bytes:
    return ("<html><body>" + "<div>" * depth + "deep" + "</div>" * depth + "</body></html>").encode()


PAYMENTS = (
    "Payments service runbook.\n\n"
    "The payments service restarts when its memory exceeds two gibibytes. Raise its memory limit to three "
    "gibibytes, then watch the restarts for an hour. If it still restarts, take a heap dump and open a ticket "
    "with the payments team.\n\n"
    "Card authorisations are retried three times before the payment is declined."
)
CERTIFICATES = [
    "Certificate rotation.\nRotate the etcd client certificates every year before they expire.",
    "Kubelet serving certificates are signed by the cluster's own authority and rotate by themselves when the "
    "kubelet asks for a new one; check that the signer approves the requests.\n"
    "The API server's certificate names every address clients use; add a new load balancer name before it serves.\n"
    "Renew the ingress certificates thirty days before expiry. Keep the old certificate until the new one serves.",
]
BAKERY = [
    "The bakery bakes bread at two hundred degrees for forty minutes.",
    "Croissants rest overnight in the cold room before they are baked.",
]
