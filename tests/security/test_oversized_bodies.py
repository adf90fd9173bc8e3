"""Oversized bodies (issue 11, item 10): a sentence that says what was too large, never Django's bare 400.

A 20 MB paste into the object editor, the release form, the cluster registration or a role form is
refused before any view runs; the answer is 413 with a sentence (a fragment for htmx, marked with the
header the page's script uses to show it), in the reader's language, and nothing is saved.
"""

import pytest
from django.conf import settings
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Role
from apps.clusters.models import Cluster
from apps.core.errors import SENTENCE_HEADER
from apps.core.models import AuditEvent
from apps.releases.models import Release
from tests.factories import AdminFactory, ClusterFactory
from tests.helpers import login

pytestmark = pytest.mark.django_db

TWENTY_MB = "a: " + "x" * (20 * 1024 * 1024) + "\n"
URLS = {
    "object editor": lambda: reverse(
        "clusters:resource_yaml_edit",
        kwargs={"cluster_id": ClusterFactory().pk, "kind": "configmap", "namespace": "payments", "name": "settings"},
    ),
    "cluster registration": lambda: reverse("clusters:registry_add"),
    "new release": lambda: reverse("releases:release_create"),
    "new role": lambda: reverse("accounts:role_create"),
    "new group": lambda: reverse("accounts:group_create"),
    "new user": lambda: reverse("accounts:user_create"),
    "sign-in": lambda: reverse("login"),
}
SIZES = {"20 MB": TWENTY_MB, "3 MB": "x" * (3 * 1024 * 1024)}


@pytest.fixture
def admin_browser():
    """A browser as htmx is one: CSRF enforced, the token in the X-CSRFToken header."""
    browser = login(Client(enforce_csrf_checks=True), AdminFactory(), recent_auth=True)
    token = _get_new_csrf_string()
    browser.cookies[settings.CSRF_COOKIE_NAME] = token
    browser.defaults["HTTP_X_CSRFTOKEN"] = token
    return browser


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "page"])
@pytest.mark.parametrize("where", list(URLS))
def test_an_oversized_body_gets_a_sentence_and_changes_nothing(admin_browser, where, htmx, size):
    url = URLS[where]()
    counts = (AuditEvent.objects.count(), Cluster.objects.count(), Release.objects.count(), Role.objects.count())
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    response = admin_browser.post(url, {"text": SIZES[size], "name": "x"}, **headers)

    html = response.content.decode()
    assert response.status_code == 413
    assert response[SENTENCE_HEADER] == "1"
    assert "larger than" in html and "Send a smaller text" in html
    assert ("<html" in html) is not htmx
    assert (
        AuditEvent.objects.count(),
        Cluster.objects.count(),
        Release.objects.count(),
        Role.objects.count(),
    ) == counts


def test_the_sentence_is_in_the_readers_language(admin_browser):
    response = admin_browser.post(
        URLS["object editor"](), {"text": TWENTY_MB}, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="zh-hans"
    )

    assert response.status_code == 413
    assert "超过" in response.content.decode()
