"""Traversal and header injection through the query parameters that name things: the log container.

The container goes into the log request sent to the cluster and into the download's file name. A value no
container can have answers 404 on the log page, the follow poll and the download, before anything is
sent (the cluster's address points nowhere: a request that left would answer a connection sentence).
"""

import pytest
from django.urls import reverse

from tests.factories import AdminFactory
from tests.helpers import login

pytestmark = pytest.mark.django_db

CONTAINERS = [
    "../../etc/passwd",
    "..",
    "app/../../secrets",
    "app%2F..%2F..",
    'app"; filename="evil.exe',
    "app\r\nSet-Cookie: kubemate_session=x",
    "app\nX-Injected: 1",
    "app&previous=true&follow=1",
    "app?tailLines=100000000",
    "app#x",
    "App",
    "app_1",
    "a" * 64,
    "-app",
    "app.",
    "app\x00",
    "应用",
    "<script>",
]
VIEWS = ["clusters:pod_logs", "clusters:pod_logs_follow", "clusters:pod_logs_download"]


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("container", CONTAINERS)
def test_a_container_name_no_container_can_have_is_404_before_any_request(client, nowhere, view, container):
    login(client, AdminFactory())
    url = reverse(view, kwargs={"cluster_id": nowhere.pk, "namespace": "payments", "name": "pay-api"})

    response = client.get(url, {"container": container, "after": "", "skip": 0})

    # 400 when the address holds a control character (refused before routing), 404 otherwise.
    assert response.status_code == (400 if "\x00" in container else 404)
    assert "Content-Disposition" not in response


def test_a_valid_container_name_does_reach_the_cluster(client, nowhere):
    """The control: with a valid name the download is attempted and fails on the unreachable address."""
    login(client, AdminFactory())
    url = reverse("clusters:pod_logs_download", kwargs={"cluster_id": nowhere.pk, "namespace": "ns", "name": "p"})

    response = client.get(url, {"container": "app"})

    assert response.status_code != 404
