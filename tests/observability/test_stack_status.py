"""The observability stack's status page: each cluster's Prometheus, Alertmanager, log store and Jaeger, answering
or not (with the door's sentence), their versions and ingestion lag; addresses for cluster managers only; rows for
the systems the reader may read."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Project
from tests.factories import AdminFactory, ClusterFactory, UserFactory
from tests.helpers import grant, login

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
DEAD = "http://127.0.0.1:9"


def rows(html: str) -> dict[str, str]:
    """{system: state} of the page's rows, in order."""
    import re

    return dict(re.findall(r'data-testid="stack-row" data-system="(\w+)" data-state="(\w+)"', html))


def status_page(browser: Client, **params) -> str:
    answer = browser.get(reverse("observability:stack_status"), params, **HTMX)
    assert answer.status_code == 200
    return answer.content.decode()


def test_each_system_says_whether_it_answers_with_its_version_and_lag(prometheus, alertmanager):
    cluster = ClusterFactory(
        prometheus_url=prometheus.url, alertmanager_url=alertmanager.url, logs_url=DEAD, jaeger_url=""
    )
    prometheus.exporter.set("app_up", {"service": "x"}, 1)
    prometheus.wait_for('app_up{service="x"}', 1)
    admin = login(Client(), AdminFactory())

    first = admin.get(reverse("observability:stack_status"))
    html = status_page(admin, cluster=cluster.pk)

    assert first.status_code == 200 and 'hx-trigger="load"' in first.content.decode()
    assert rows(html) == {"metrics": "up", "alerts": "up", "logs": "down", "traces": "unset"}
    assert "127.0.0.1:9" in html and "could not be reached" in html  # the log store's own sentence
    assert "0.25" in html  # Debian's Alertmanager
    assert "<th>Address</th>" in html and prometheus.url.split("//")[1] in html  # the admin manages clusters
    prometheus.exporter.clear()


def test_the_log_store_and_jaeger_answer_with_their_versions(prometheus, victorialogs, jaeger):
    cluster = ClusterFactory(prometheus_url=prometheus.url, logs_url=victorialogs.url, jaeger_url=jaeger.url)
    admin = login(Client(), AdminFactory())

    html = status_page(admin, cluster=cluster.pk)
    jaeger.stop()
    try:
        stopped = status_page(admin, cluster=cluster.pk)
    finally:
        jaeger.start()

    assert rows(html)["logs"] == "up" and rows(html)["traces"] == "up"
    assert "v1.52.2" in html and "v1.75.0" in html  # both tell their versions
    assert rows(stopped)["traces"] == "down" and "Jaeger at" in stopped


def test_a_project_member_sees_the_systems_they_read_and_no_addresses(prometheus):
    cluster = ClusterFactory(prometheus_url=prometheus.url, logs_url=DEAD)
    project = Project.objects.create(cluster=cluster, slug="pay", name="Pay", namespaces=["payments"])
    member = UserFactory()
    grant(member, "viewer", project=project)
    stranger = login(Client(), UserFactory())

    html = status_page(login(Client(), member))

    assert set(rows(html)) == {"metrics", "alerts", "logs", "traces"}
    assert "<th>Address</th>" not in html  # the addresses column is for cluster managers
    assert stranger.get(reverse("observability:stack_status")).status_code == 404


def test_chinese_readers_get_chinese_words(prometheus):
    ClusterFactory(prometheus_url=prometheus.url)
    admin = login(Client(), AdminFactory())

    html = admin.get(reverse("observability:stack_status"), HTTP_ACCEPT_LANGUAGE="zh-hans", **HTMX).content.decode()

    assert "未设置" in html and "正在应答" in html
