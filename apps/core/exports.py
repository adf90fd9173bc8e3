"""The one way to write a CSV (or any spreadsheet) export: streamed, and safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (also after leading spaces), or with a tab, carriage
return or line feed, is read as a formula by Excel, LibreOffice and WPS: a user name typed at the sign-in
page could then run when an auditor opens the export. Such cells get a leading apostrophe (OWASP's
advice for CSV injection), which spreadsheets show as text and drop from the value. Numbers stay numbers.
Every export goes through ``csv_response`` so the next one cannot forget this.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence

from django.http import StreamingHttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
BOM = "\ufeff"  # so that spreadsheets read the file as UTF-8 (Chinese names stay readable)


def neutralise(value) -> object:
    """``value`` as a spreadsheet will show it and never evaluate it."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS) or text.lstrip(" \u3000").startswith(FORMULA_STARTS):
        return "'" + text
    return text


class _Echo:
    def write(self, value):
        return value


def csv_rows(header: Sequence[str], rows: Iterable[Sequence]) -> Iterable[str]:
    writer = csv.writer(_Echo())
    yield BOM + writer.writerow([neutralise(cell) for cell in header])
    for row in rows:
        yield writer.writerow([neutralise(cell) for cell in row])


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence]) -> StreamingHttpResponse:
    """A streamed CSV download; ``rows`` may be a generator, so a year of history never sits in memory."""
    response = StreamingHttpResponse(csv_rows(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
