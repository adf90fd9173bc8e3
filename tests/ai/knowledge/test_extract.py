"""Extraction of each format, and every bound checked before the work it guards: the size, the pages, the
characters, a zip bomb dressed as a docx, an HTML page nested too deep, a damaged file. Each refusal is a sentence
(deferred: stored on the document, read in the reader's language), never an exception a page would show."""

from __future__ import annotations

import pytest

from apps.ai.knowledge import extract
from apps.core.deferred import is_deferred
from tests.ai.knowledge import documents


def refused(name: str, data: bytes) -> str:
    with pytest.raises(extract.ExtractError) as caught:
        extract.extract(name, data)
    assert is_deferred(caught.value.stored)
    return str(caught.value)


def test_plain_text_and_markdown_are_read_in_utf8_or_gb18030_with_tidy_paragraphs():
    text = extract.extract("notes.txt", b"Line one  \r\nline two\r\n\r\n\r\n\r\nNext paragraph.")
    markdown = extract.extract("guide.md", "# 支付\n\n重启服务。".encode("gb18030"))
    assert text.text == "Line one\nline two\n\nNext paragraph." and text.pages == []
    assert markdown.text == "# 支付\n\n重启服务。"


def test_html_keeps_the_text_in_order_and_drops_scripts_styles_and_the_head():
    page = (
        b"<html><head><title>Hidden</title><style>p{}</style></head><body><h1>Payments</h1>"
        b"<script>steal()</script><p>Restart the <b>service</b>.</p><ul><li>one</li><li>two</li></ul>"
        b"<table><tr><td>cpu</td><td>2</td></tr></table></body></html>"
    )
    assert extract.extract("page.html", page).text == "Payments\n\nRestart the service.\n\none\n\ntwo\n\ncpu 2"


def test_a_pdf_is_read_page_by_page_and_knows_where_each_page_starts():
    found = extract.extract("certs.pdf", documents.pdf(documents.CERTIFICATES))
    assert found.text.startswith("Certificate rotation.\nRotate the etcd client certificates")
    assert [number for _offset, number in found.pages] == [1, 2]
    second = found.pages[1][0]
    assert found.text[second:].startswith("Kubelet serving certificates")


def test_a_docx_gives_its_paragraphs_and_table_rows():
    found = extract.extract("bakery.docx", documents.docx(documents.BAKERY, [["Oven", "Heat"], ["Main", "200"]]))
    assert found.text.split("\n\n") == [*documents.BAKERY, "Oven | Heat", "Main | 200"]


def test_unknown_formats_empty_and_binary_files_are_refused_with_a_sentence():
    assert "is not a format Kubemate reads" in refused("setup.exe", b"MZ")
    assert "upload docx, htm, html, log, markdown, md, pdf, text, txt" in refused("setup.exe", b"MZ")
    assert refused("empty.txt", b"") == "empty.txt is empty."
    assert "does not look like text" in refused("image.txt", b"\x89PNG\r\n\x00\x00")
    assert refused("fake.pdf", b"hello") == "fake.pdf is not a PDF file."
    assert refused("fake.docx", b"hello") == "fake.docx is not a Word document (docx)."
    assert "could not be read as a PDF file" in refused("broken.pdf", b"%PDF-1.7\n garbage")
    assert "has no text to index" in refused("blank.pdf", documents.pdf([""]))


def test_the_size_pages_and_characters_are_bounded(settings):
    settings.KUBEMATE_AI_DOCUMENT_MAX_MB = 1
    assert refused("big.txt", b"a" * (1024 * 1024 + 1)) == (
        "big.txt is larger than 1 MiB: split it, or upload its text."
    )
    settings.KUBEMATE_AI_DOCUMENT_MAX_PAGES = 2
    assert "has 3 pages, more than 2" in refused("long.pdf", documents.pdf(["one", "two", "three"]))
    settings.KUBEMATE_AI_DOCUMENT_MAX_CHARACTERS = 100
    assert "more than 100 characters" in refused("long.txt", b"word " * 30)
    assert "more than 100 characters" in refused("long.html", b"<p>" + b"word " * 30 + b"</p>")
    assert "more than 100 characters" in refused("long.docx", documents.docx(["word " * 30]))


def test_a_zip_bomb_is_refused_from_its_directory_before_anything_is_inflated():
    bomb = documents.zip_bomb(150)
    assert len(bomb) < 1024 * 1024
    assert refused("report.docx", bomb) == (
        "report.docx unpacks to more than a document should (a zip bomb?): it was not opened."
    )


def test_an_html_page_nested_too_deep_is_refused_and_a_zip_without_a_document_is_damaged():
    assert "nests its elements deeper than 200 levels" in refused("deep.html", documents.deep_html(400))
    assert extract.extract("shallow.html", documents.deep_html(150)).text == "deep"
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert "could not be read as a Word document" in refused("odd.docx", out.getvalue())
