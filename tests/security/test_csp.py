"""Content-Security-Policy (issue 11, item 10): every page carries it, and no page needs inline script.

The policy allows scripts only from Kubemate's static files, so each page is also read for what the
policy would block in a browser: an inline <script> (other than JSON data blocks), an on...= handler
attribute, an hx-on attribute, or a javascript: address.
"""

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Role
from tests.clusters.inventory_rows import build_bank, detail_url, list_url
from tests.factories import AdminFactory
from tests.helpers import login

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
HANDLER = re.compile(r"\s(on[a-z]+|hx-on[:-][a-z:-]*)\s*=", re.I)
JS_URL = re.compile(r"(href|src|action)\s*=\s*[\"']?\s*javascript:", re.I)


def pages(bank) -> list[str]:
    cluster = bank["cluster"]
    return [
        reverse("dashboard"),
        reverse("clusters:cluster_list"),
        reverse("clusters:cluster_overview", args=[cluster.pk]),
        list_url(cluster, "pods"),
        list_url(cluster, "deployments"),
        list_url(cluster, "nodes"),
        detail_url(bank["deployment"]),
        detail_url(bank["pods"][0]),
        reverse("clusters:registry_add"),
        reverse("clusters:registry_settings", args=[cluster.pk]),
        reverse("releases:release_list"),
        reverse("accounts:user_list"),
        reverse("accounts:role_list"),
        reverse("accounts:group_list"),
        reverse("accounts:project_list"),
        reverse("accounts:binding_list"),
        reverse("accounts:audit_list"),
        reverse("accounts:my_access"),
        reverse("core:job_list"),
        reverse("admin:index"),
    ]


@pytest.fixture
def bank():
    """The bank, plus a custom role and a group: their lists show the delete forms that ask before sending."""
    Role.objects.create(slug="auditors", name_en="Auditors", name_zh="审计", capabilities=["audit.view"])
    Group.objects.create(name="Operators")
    return build_bank()


def test_every_page_carries_the_policy_and_needs_no_inline_script(bank):
    browser = login(Client(), AdminFactory(), recent_auth=True)
    urls = pages(bank)
    problems = {}

    for url in urls:
        response = browser.get(url)
        html = response.content.decode()
        policy = response.get("Content-Security-Policy", "")
        found = [
            *(f"no policy ({response.status_code})" for _ in [0] if "script-src 'self'" not in policy),
            *INLINE_SCRIPT.findall(html),
            *(match.group(0).strip() for match in HANDLER.finditer(html)),
            *(match.group(0) for match in JS_URL.finditer(html)),
        ]
        if found:
            problems[url] = found[:5]

    assert problems == {}


@pytest.mark.parametrize("url", ["/login/", "/healthz", "/does-not-exist/"])
def test_pages_for_anonymous_visitors_and_errors_carry_the_policy(url):
    response = Client().get(url)

    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert "frame-ancestors 'none'" in policy
