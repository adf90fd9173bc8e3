"""One htmx decision for every page that can answer a fragment: the whole page when htmx restores history.

htmx asks the server for a page it no longer holds in its history cache with ``HX-Request`` and
``HX-History-Restore-Request``; it swaps the answer in as the whole body, so a fragment there leaves the
person on a page without its frame. Every such answer varies on ``HX-Request`` so that no cache hands the
fragment to a plain request or the page to htmx. (Pod logs need a live pod: tests/clusters/test_logs.py.)
"""

import pytest
from django.urls import reverse

from tests.clusters.inventory_rows import build_bank, detail_url, list_url
from tests.releases.helpers import release_in

pytestmark = pytest.mark.django_db
RESTORE = {"HTTP_HX_REQUEST": "true", "HTTP_HX_HISTORY_RESTORE_REQUEST": "true"}


@pytest.fixture
def pages(db, admin_user):
    """Every GET page that renders a partial for htmx, with the address of a real object where it needs one."""
    bank = build_bank()
    cluster = bank["cluster"]
    return {
        "dashboard facts": reverse("dashboard_facts"),
        "cluster list": reverse("clusters:cluster_list"),
        "cluster overview": reverse("clusters:cluster_overview", args=[cluster.pk]),
        "resource list": list_url(cluster, "pods"),
        "resource detail": detail_url(bank["deployment"]),
        "release detail": reverse("releases:release_detail", args=[release_in(bank["payments"]).pk]),
        "audit list": reverse("accounts:audit_list"),
        "user list": reverse("accounts:user_list"),
        "user access": reverse("accounts:user_access", args=[admin_user.pk]),
    }


def test_a_history_restore_request_gets_the_whole_page_and_every_answer_varies_on_hx_request(admin_client_, pages):
    restored = {name: admin_client_.get(url, **RESTORE) for name, url in pages.items()}
    fragments = {name: admin_client_.get(url, HTTP_HX_REQUEST="true") for name, url in pages.items()}

    assert {name: r.status_code for name, r in restored.items()} == dict.fromkeys(pages, 200)
    assert [name for name, r in restored.items() if "<html" not in r.content.decode()] == []
    assert [name for name, r in fragments.items() if "<html" in r.content.decode()] == []
    assert [name for name, r in restored.items() if "HX-Request" not in r.get("Vary", "")] == []
    assert [name for name, r in fragments.items() if "HX-Request" not in r.get("Vary", "")] == []


def test_a_boosted_request_gets_the_whole_page(admin_client_, pages):
    boosted = {
        name: admin_client_.get(url, HTTP_HX_REQUEST="true", HTTP_HX_BOOSTED="true") for name, url in pages.items()
    }

    assert [name for name, r in boosted.items() if "<html" not in r.content.decode()] == []
