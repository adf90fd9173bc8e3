"""A pod, a workload and a release link to their logs and traces with the filters filled in, for those who may
search there; the links open the search pages with those filters chosen."""

from __future__ import annotations

from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Role
from tests.clusters.inventory_rows import build_bank
from tests.factories import UserFactory
from tests.helpers import grant, login

pytestmark = pytest.mark.django_db


def link(html: str, testid: str) -> tuple[str, dict[str, list[str]]] | None:
    marker = f'data-testid="{testid}"'
    if marker not in html:
        return None
    tag = html[html.rindex("<a ", 0, html.index(marker)) : html.index(marker)]
    href = unescape(tag.split('href="', 1)[1].split('"', 1)[0])
    parts = urlsplit(href)
    return parts.path, parse_qs(parts.query)


def test_pod_and_workload_pages_link_to_their_logs_and_traces():
    bank = build_bank()
    cluster = bank["cluster"]
    member = UserFactory()
    grant(member, "developer", project=bank["payments"])
    browser = login(Client(), member)

    pod_page = browser.get(reverse("clusters:resource_detail", args=[cluster.pk, "pods", "payments", "pay-api-7c9f-a"]))
    workload_page = browser.get(
        reverse("clusters:resource_detail", args=[cluster.pk, "deployments", "payments", "pay-api"])
    )

    pod_html, workload_html = pod_page.content.decode(), workload_page.content.decode()
    cid = str(cluster.pk)
    assert link(pod_html, "telemetry-logs") == (
        reverse("observability:logs_search"),
        {"cluster": [cid], "namespace": ["payments"], "pod": ["pay-api-7c9f-a"]},
    )
    assert link(pod_html, "telemetry-traces") == (
        reverse("observability:trace_search"),
        {"cluster": [cid], "namespace": ["payments"]},
    )
    assert link(workload_html, "telemetry-logs")[1]["workload"] == ["pay-api"]
    assert link(workload_html, "telemetry-traces")[1]["service"] == ["pay-api"]


def test_no_link_for_those_who_may_not_search_logs_or_traces():
    bank = build_bank()
    cluster = bank["cluster"]
    Role.objects.create(slug="no-telemetry", name_en="N", name_zh="N", capabilities=["workloads.view"])
    reader = UserFactory()
    grant(reader, "no-telemetry", project=bank["payments"])

    html = (
        login(Client(), reader)
        .get(reverse("clusters:resource_detail", args=[cluster.pk, "pods", "payments", "pay-api-7c9f-a"]))
        .content.decode()
    )

    assert 'data-testid="telemetry-links"' not in html
