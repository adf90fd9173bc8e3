"""Names and namespaces from URLs never reach an API path unchecked (issue 11, item 8).

The action views resolve every path segment before anything else: a name no Kubernetes object can
have answers 404 like a missing object, whoever asks, and no request leaves for the cluster (the
cluster here is an address where nothing listens, so a request sent would answer a connection error).
"""

import pytest
from django.urls import reverse

from tests.factories import AdminFactory
from tests.helpers import login

pytestmark = pytest.mark.django_db

NAMES = ["..", ".", "a..b", "web%2fsecrets", "web?watch=1", "web#x", "-web", "web-", " web", "a" * 254, "we b"]
NAMESPACES = ["..", "Team-A", "team_a", "a" * 64, "-a", "a.b"]
VIEWS = [
    ("clusters:resource_yaml", "get", "deployment"),
    ("clusters:resource_yaml_edit", "get", "deployment"),
    ("clusters:resource_yaml_edit", "post", "deployment"),
    ("clusters:workload_scale", "post", "deployment"),
    ("clusters:workload_restart", "post", "deployment"),
]
POD_VIEWS = [
    ("clusters:pod_logs", "get"),
    ("clusters:pod_logs_download", "get"),
    ("clusters:pod_delete", "post"),
]


@pytest.fixture
def admin_browser(client):
    return login(client, AdminFactory(), recent_auth=True)


def _call(browser, method, url):
    return browser.get(url) if method == "get" else browser.post(url, {"replicas": 1, "text": "a: 1"})


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("view", "method", "kind"), VIEWS)
def test_an_object_name_no_object_can_have_is_a_404_before_any_request(
    admin_browser, nowhere, view, method, kind, name
):
    response = _call(admin_browser, method, reverse(view, args=[nowhere.pk, kind, "team-a", name]))
    assert response.status_code == 404


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize(("view", "method"), POD_VIEWS)
def test_a_namespace_no_namespace_can_have_is_a_404_before_any_request(admin_browser, nowhere, view, method, namespace):
    response = _call(admin_browser, method, reverse(view, args=[nowhere.pk, namespace, "web-1"]))
    assert response.status_code == 404


def test_a_valid_name_does_reach_the_cluster(admin_browser, nowhere):
    """The control: the same view with a good name tries the cluster and says it cannot be reached."""
    response = admin_browser.get(reverse("clusters:resource_yaml", args=[nowhere.pk, "deployment", "team-a", "web"]))
    assert response.status_code == 200
    assert "cannot be reached" in response.content.decode()
