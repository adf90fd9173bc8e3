"""The report as PDF (real WeasyPrint, real fonts, read back with pdfium): Chinese prints as Chinese glyphs with the
CJK font embedded, not as .notdef boxes; the findings cap shows "and N more"; the PDF is made without fetching
anything but local static files; a server without the CJK font refuses in a sentence instead of printing boxes."""

from __future__ import annotations

import ctypes
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
import pytest
from django.utils import translation
from PIL import Image, ImageChops, ImageStat

from apps.inspection.models import Template
from apps.inspection.reports import build, pdf, pdf_engine
from tests.inspection.test_report_build import PODS, finding, history, result, stored

pytestmark = pytest.mark.django_db

TITLE = "每日集群健康巡检"
SCALE = 4
SIDE = 16


def _text(document: pdfium.PdfDocument) -> str:
    return "\n".join(page.get_textpage().get_text_range() for page in document)


def _fonts(document: pdfium.PdfDocument) -> set[str]:
    """The base font names of every text object (subset prefixes included), read through pdfium."""
    names = set()
    for page in document:
        for obj in page.get_objects(filter=[pdfium_raw.FPDF_PAGEOBJ_TEXT]):
            font = pdfium_raw.FPDFTextObj_GetFont(obj.raw)
            buffer = ctypes.create_string_buffer(256)
            pdfium_raw.FPDFFont_GetBaseFontName(font, buffer, 256)
            names.add(buffer.value.decode())
    return names


def _ink(image: Image.Image) -> Image.Image:
    """The glyph alone: cut to its ink and scaled to a small square, in grey (offsets and sizes do not count)."""
    ink = image.point(lambda v: 255 - v)
    box = ink.getbbox()
    assert box is not None, "no ink where a glyph should be"
    return ink.crop(box).resize((SIDE, SIDE))


def _difference(a: Image.Image, b: Image.Image) -> float:
    """0 for the same picture, 1 for opposite ones: the mean difference of the grey levels."""
    return ImageStat.Stat(ImageChops.difference(a, b)).mean[0] / 255


def _cut(image: Image.Image, height: float, box: tuple[float, float, float, float]) -> Image.Image:
    """The glyph in pdfium's character ``box`` (PDF points, origin bottom left) of a page rendered at SCALE."""
    left, bottom, right, top = box
    return _ink(
        image.crop(
            (int(left * SCALE), int((height - top) * SCALE), int(right * SCALE) + 1, int((height - bottom) * SCALE) + 1)
        )
    )


def _glyphs(document: pdfium.PdfDocument, text: str) -> list[Image.Image]:
    """Each character of the largest occurrence of ``text`` on the first page, rendered and cut out."""
    page = document[0]
    textpage = page.get_textpage()
    searcher = textpage.search(text, match_case=True)
    found = []
    while (hit := searcher.get_next()) is not None:
        start, count = hit
        found.append([textpage.get_charbox(i) for i in range(start, start + count)])
    assert found, f"{text!r} is not in the PDF's text"
    boxes = max(found, key=lambda bs: bs[0][3] - bs[0][1])
    image = page.render(scale=SCALE).to_pil().convert("L")
    return [_cut(image, page.get_height(), box) for box in boxes]


def _tofu() -> list[Image.Image]:
    """Boxes the same fonts draw for code points no font has (unassigned in Unicode): the .notdef glyph."""
    html = (
        '<html lang="zh-hans"><body><h1 class="km-title" style="letter-spacing: 10mm">'
        "\u0378\u0379\u0380</h1></body></html>"
    )
    document = pdfium.PdfDocument(pdf.write_pdf(html))
    page = document[0]
    textpage = page.get_textpage()
    image = page.render(scale=SCALE).to_pil().convert("L")
    height = page.get_height()
    boxes = []
    for i in range(textpage.count_chars()):
        box = textpage.get_charbox(i)
        # The title's line at the top of the page; the footer repeats the title at the bottom.
        if box[2] - box[0] > 1 and box[3] - box[1] > 5 and box[3] > height / 2 and box not in boxes:
            boxes.append(box)
    assert len(boxes) == 3
    return [_cut(image, height, box) for box in boxes]


def _chinese_report():
    h = history()
    Template.objects.filter(pk=h["template"].pk).update(name=TITLE)
    run = h["second"]
    run.template.refresh_from_db()
    return build.build_report(run, h["actor"])


def test_the_pdf_prints_the_chinese_title_as_distinct_glyphs_of_the_embedded_cjk_font_not_as_boxes():
    report = _chinese_report()
    data = pdf.render_pdf(report, "zh-hans")
    assert data.startswith(b"%PDF-")
    document = pdfium.PdfDocument(data)
    assert TITLE in _text(document)
    fonts = _fonts(document)
    assert any("Noto-Sans-CJK-SC" in name for name in fonts), fonts
    glyphs = _glyphs(document, TITLE)
    assert len(glyphs) == len(TITLE)
    boxes = _tofu()
    # The method sees tofu for what it is: the .notdef boxes of different code points are one and the same picture.
    assert max(_difference(a, b) for a in boxes for b in boxes) < 0.08
    # Every pair of the title's characters differs, and none is the box.
    pairs = [_difference(a, b) for i, a in enumerate(glyphs) for b in glyphs[i + 1 :]]
    assert min(pairs) > 0.12, pairs
    assert min(_difference(g, boxes[0]) for g in glyphs) > 0.2


def test_the_pdf_is_in_the_language_asked_for_whatever_the_active_one():
    report = _chinese_report()
    with translation.override("en"):
        chinese = _text(pdfium.PdfDocument(pdf.render_pdf(report, "zh-hans")))
    english = _text(pdfium.PdfDocument(pdf.render_pdf(report, "en")))
    assert "No Prometheus URL is set for this cluster." in english
    assert "No Prometheus URL is set" not in chinese and "Prometheus" in chinese
    assert "Pod payments/api-c" in chinese and "Pod payments/api-c" in english


def test_findings_beyond_the_cap_are_counted_not_printed():
    h = history()
    many = [finding(f"Pod payments/p-{i:03}", "payments") for i in range(120)]
    run = stored(h["template"], h["cluster"], h["actor"], [result(PODS, h["cluster"], many)])
    report = build.build_report(run, h["actor"], limit=50)
    text = _text(pdfium.PdfDocument(pdf.render_pdf(report, "en")))
    assert "Pod payments/p-049" in text and "Pod payments/p-050" not in text
    assert "and 70 more findings not shown here" in " ".join(text.split())


class _Counting(BaseHTTPRequestHandler):
    asked: list[str] = []

    def do_GET(self):
        _Counting.asked.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_rendering_fetches_nothing_but_local_static_files():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        html = (
            f'<html><head><link rel="stylesheet" href="{address}/evil.css"></head><body>'
            f'<img src="{address}/tracker.png"><img src="file:///etc/hostname"><img src="kubemate/logo.svg">'
            "<p>中文</p></body></html>"
        )
        data = pdf.write_pdf(html)
    finally:
        server.shutdown()
    assert data.startswith(b"%PDF-")
    assert _Counting.asked == []
    fetcher = pdf_engine.LocalFetcher(pdf._static_roots())
    with pytest.raises(ValueError):
        fetcher.fetch(f"{address}/x.png")
    with pytest.raises(ValueError):
        fetcher.fetch("file:///etc/hostname")
    logo = fetcher.fetch((pdf._static_roots()[0] / "kubemate" / "logo.svg").as_uri())
    assert b"<svg" in logo.read()


def test_a_server_without_the_cjk_font_refuses_in_a_sentence():
    assert pdf.matched_family(pdf.CJK_FAMILY) == pdf.CJK_FAMILY
    with pytest.raises(pdf.PdfUnavailable) as caught:
        pdf.require_cjk_font("Kubemate Missing Sans")
    said = str(caught.value)
    assert "Kubemate Missing Sans" in said and "fonts-noto-cjk" in said
