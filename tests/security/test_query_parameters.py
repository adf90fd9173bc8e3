"""Query parameters of the list, audit, access and job pages: junk of every shape answers a page, never a 500.

Filters are typed by people and pasted from links; the label selector is a small language of its own.
Each value is sent to every page that filters; the answer is the page (with nothing matched, or the
filter ignored or refused in a sentence), and the database error a NUL byte or a huge number would raise
never escapes.
"""

import pytest
from django.test import Client
from django.urls import reverse

from tests.clusters.inventory_rows import build_bank, list_url
from tests.factories import AdminFactory
from tests.helpers import login

pytestmark = pytest.mark.django_db

VALUES = [
    "",
    "\x00",
    "a\x00b",
    "%00",
    "(((((((((",
    "app in (a,b",
    "app notin ()",
    "!",
    "!!!app",
    "app==",
    "=x",
    ",,,,",
    "app=" + "x" * 5000,
    "a" * 100_000,
    "app in (" + ",".join(str(n) for n in range(3000)) + ")",
    ",".join(f"k{n}=v" for n in range(2000)),
    "-1",
    "0",
    "99999999999999999999999999",
    "1e309",
    "NaN",
    "' OR '1'='1",
    "'; DROP TABLE clusters_resource; --",
    "%' OR 1=1 --",
    "\\",
    "_%",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"),
    "🙂" * 500,
    "2026-13-45T99:99",
    "0000-00-00",
]
PAGE_PARAMS = {
    "pods list": ("pods", ("q", "labels", "status", "namespace", "project", "sort", "page")),
    "deployments list": ("deployments", ("q", "labels", "sort", "page")),
    "events list": ("events", ("q", "namespace", "page")),
}
AUDIT_PARAMS = ("actor", "action", "cluster", "namespace", "object", "result", "since", "until", "page")


@pytest.fixture(scope="module")
def admin(module_db):
    return login(Client(), AdminFactory())


@pytest.fixture(scope="module")
def bank(module_db):
    """Built once for the module's cases (tests/conftest.py, module_db)."""
    return build_bank()


@pytest.mark.parametrize("value", VALUES, ids=lambda v: repr(v)[:40])
@pytest.mark.parametrize("page", list(PAGE_PARAMS))
def test_inventory_lists_answer_every_filter_value(admin, bank, page, value):
    slug, params = PAGE_PARAMS[page]

    answers = {name: admin.get(list_url(bank["cluster"], slug), {name: value}).status_code for name in params}
    partials = {
        name: admin.get(list_url(bank["cluster"], slug), {name: value}, HTTP_HX_REQUEST="true").status_code
        for name in params
    }

    expected = 400 if "\x00" in value else 200
    assert answers == dict.fromkeys(params, expected)
    assert partials == dict.fromkeys(params, expected)
    if expected == 400:
        refused = admin.get(list_url(bank["cluster"], slug), {"q": value}, HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert "控制字符" in refused.content.decode()


@pytest.mark.parametrize("value", VALUES, ids=lambda v: repr(v)[:40])
def test_the_audit_log_and_its_export_answer_every_filter_value(admin, value):
    answers = {name: admin.get(reverse("accounts:audit_list"), {name: value}).status_code for name in AUDIT_PARAMS}
    exports = {name: admin.get(reverse("accounts:audit_export"), {name: value}).status_code for name in AUDIT_PARAMS}

    assert answers == dict.fromkeys(AUDIT_PARAMS, 400 if "\x00" in value else 200)
    assert set(exports.values()) <= {200, 400}


@pytest.mark.parametrize("value", VALUES, ids=lambda v: repr(v)[:40])
def test_access_and_job_pages_answer_every_parameter_value(admin, bank, value):
    pages = {
        "my access": (reverse("accounts:my_access"), ("cluster", "namespace")),
        "jobs": (reverse("core:job_list"), ("page", "status", "kind")),
        "overview": (reverse("clusters:cluster_overview", args=[bank["cluster"].pk]), ("namespace", "project")),
    }
    answers = {
        (page, name): admin.get(url, {name: value}).status_code
        for page, (url, names) in pages.items()
        for name in names
    }

    assert {key: status for key, status in answers.items() if status >= 500} == {}
