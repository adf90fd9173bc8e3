"""Markup from clusters: every string a cluster feeds the console is shown as text, never run.

A cluster is outside input: a tenant with edit rights writes annotations, event messages, images and
config data, and a compromised cluster can send anything at all. Here every inventory kind is stored with
each payload in its labels, annotations, status strings, images, event texts and config data, and every
list and detail page of that kind must show the text escaped: no payload's active part reaches the page.
"""

import pytest
from django.test import Client
from django.urls import reverse

from apps.clusters.inventory import lists
from apps.clusters.inventory.summaries import row_fields
from apps.clusters.kinds import KINDS
from apps.clusters.models import Resource
from tests.clusters.inventory_rows import add, build_bank, detail_url, list_url, meta
from tests.factories import AdminFactory
from tests.helpers import login

pytestmark = pytest.mark.django_db

# Each payload with the active part that must never reach a page unescaped.
PAYLOADS = {
    "script": ('<script>alert("km-xss")</script>', '<script>alert("km-xss")'),
    "img-onerror": ('"><img src=x onerror=alert("km-xss")>', "<img src=x onerror"),
    "svg-onload": ("'><svg onload=alert('km-xss')>", "<svg onload"),
    "textarea-break": ('</textarea><script>alert("km-xss")</script>', "</textarea><script>"),
    "script-break": ('</script><script>alert("km-xss")</script>', "</script><script>"),
    "iframe": ('<iframe srcdoc="km-xss"></iframe>', "<iframe srcdoc"),
    "link": ('<a href="https://evil.example/km-xss">km-xss</a>', '<a href="https://evil.example'),
    "htmx-attribute": ('km-xss" hx-get="/admin/" hx-trigger="load', 'hx-get="/admin/"'),
    "style": ("<style>*{display:none}</style>km-xss", "<style>*{display"),
    "comment": ("<!-- km-xss", "<!-- km-xss"),
}
NOT_POISONED = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "lastTimestamp",
    "startedAt",
    "kind",
    "apiVersion",
}


def poison(value, payload: str, key: str = ""):
    """Every string leaf of a Kubernetes object becomes the payload, except names, ids and times."""
    if isinstance(value, dict):
        return {k: (v if k in NOT_POISONED else poison(v, payload, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [poison(item, payload, key) for item in value]
    if isinstance(value, str) and key not in NOT_POISONED:
        return payload
    return value


def hostile_cluster(payload: str):
    """The bank, plus the kinds it lacks, every object carrying ``payload`` in all its free text."""
    bank = build_bank()
    cluster = bank["cluster"]
    labels = {"app": "batch"}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "app:1"}]}}
    for kind, name in (("StatefulSet", "db"), ("DaemonSet", "agent"), ("Job", "report"), ("CronJob", "nightly")):
        spec = {"selector": {"matchLabels": labels}, "template": template}
        if kind == "CronJob":
            spec = {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": template}}}
        add(cluster, kind, {"metadata": meta(name, "payments", labels), "spec": spec, "status": {"message": "x"}})
    add(cluster, "Ingress", {"metadata": meta("web", "payments"), "spec": {"rules": [{"host": "pay.bank.example"}]}})
    add(cluster, "ConfigMap", {"metadata": meta("settings", "payments"), "data": {"greeting": "hello"}})
    add(cluster, "PersistentVolumeClaim", {"metadata": meta("data", "payments"), "status": {"phase": "Bound"}})
    add(cluster, "PersistentVolume", {"metadata": meta("pv-1"), "status": {"phase": "Bound", "message": "x"}})
    add(cluster, "StorageClass", {"metadata": meta("fast"), "provisioner": "csi.bank.example"})
    listener = {"name": "https", "protocol": "HTTPS", "port": 443, "hostname": "pay.bank.example"}
    add(cluster, "Gateway", {"metadata": meta("public", "payments"), "spec": {"listeners": [listener]}})
    budget = {"minAvailable": 1, "selector": {"matchLabels": {"app": "api"}}}
    add(cluster, "PodDisruptionBudget", {"metadata": meta("api", "payments"), "spec": budget})
    for row in Resource.objects.filter(cluster=cluster):
        obj = poison(row.object, payload)
        obj["metadata"]["labels"] = {**obj["metadata"].get("labels", {}), "note": payload}
        obj["metadata"]["annotations"] = {"kubemate.io/note": payload, "description": payload}
        Resource.objects.filter(pk=row.pk).update(**row_fields(row.kind, obj))
    cluster.region = payload
    cluster.labels = {"team": payload}
    cluster.save()
    return cluster


@pytest.fixture(scope="module")
def hostile_clusters(module_db):
    """One hostile cluster per payload, built once for the module's 230 cases."""
    clusters = {}
    for payload, (text, _active) in PAYLOADS.items():
        cluster = hostile_cluster(text)
        cluster.name = f"hostile-{payload}"  # every bank is built as prod-sh, and cluster names are unique
        cluster.save(update_fields=["name"])
        clusters[payload] = cluster
    return clusters


@pytest.fixture(scope="module")
def admin_browser(module_db):
    return login(Client(), AdminFactory())


@pytest.mark.parametrize("kind", [k.kind for k in KINDS])
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_every_page_of_every_kind_shows_cluster_text_as_text(hostile_clusters, admin_browser, payload, kind):
    active = PAYLOADS[payload][1]
    cluster = hostile_clusters[payload]
    browser = admin_browser
    rows = list(Resource.objects.filter(cluster=cluster, kind=kind))
    assert rows, f"the hostile cluster has no {kind}"
    pages = [list_url(cluster, lists.SLUG_OF[kind]), *(detail_url(row) for row in rows[:3])]

    answers = {page: browser.get(page) for page in pages}

    assert {page: response.status_code for page, response in answers.items()} == dict.fromkeys(pages, 200)
    for page, response in answers.items():
        html = response.content.decode()
        assert active not in html, f"{page} renders {active!r} unescaped"
    detail = answers[pages[1]].content.decode()
    assert "km-xss" in detail, f"the {kind} detail page shows none of the cluster's text: the test proves nothing"


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_cluster_wide_pages_show_cluster_text_as_text(hostile_clusters, payload):
    active = PAYLOADS[payload][1]
    cluster = hostile_clusters[payload]
    browser = login(Client(), AdminFactory(), recent_auth=True)
    pages = [
        reverse("dashboard"),
        reverse("clusters:cluster_list"),
        reverse("clusters:cluster_overview", args=[cluster.pk]),
        reverse("clusters:registry_settings", args=[cluster.pk]),
    ]

    answers = {page: browser.get(page) for page in pages}

    assert {page: response.status_code for page, response in answers.items()} == dict.fromkeys(pages, 200)
    for page, response in answers.items():
        assert active not in response.content.decode(), f"{page} renders {active!r} unescaped"
    assert "km-xss" in answers[pages[1]].content.decode() + answers[pages[2]].content.decode()
