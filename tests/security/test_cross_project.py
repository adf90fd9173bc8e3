"""Cross-project URLs: a member of one project types the address of another project's object.

Every namespaced kind gets an object in the lending project; the member of payments asks for it through
every page, partial and action that takes a namespace and a name, and through the list filters. Each
answer is the 404 a missing object gets (or a list without the object), and nothing leaves for the
cluster: its address points nowhere, so a request that left would answer a connection error instead.
"""

import pytest
from django.test import Client
from django.urls import reverse

from apps.clusters.inventory import lists
from apps.clusters.kinds import KINDS
from apps.clusters.models import Resource
from tests.clusters.inventory_rows import add, build_bank, detail_url, list_url, meta
from tests.factories import UserFactory
from tests.helpers import grant, login

pytestmark = pytest.mark.django_db

NAMESPACED = [k.kind for k in KINDS if k.namespaced]
SECRET_NAME = "zz-lending-only"
# Only the lending objects hold this text (an annotation); the address typed may echo the name, never this.
PRIVATE = "LENDING-PRIVATE-7Q"


@pytest.fixture(scope="module")
def bank_with_every_kind(module_db):
    """Built once for the module's 240 cases (tests/conftest.py, module_db)."""
    bank = build_bank()
    cluster = bank["cluster"]
    for kind in NAMESPACED:
        metadata = {**meta(f"{SECRET_NAME}-{kind.lower()}", "lending", {"app": SECRET_NAME}), "annotations": {}}
        metadata["annotations"]["note"] = PRIVATE
        add(cluster, kind, {"metadata": metadata, "data": {"k": PRIVATE}, "message": PRIVATE})
    return bank


@pytest.fixture(scope="module")
def member(bank_with_every_kind):
    user = UserFactory(username="pat")
    grant(user, "project-owner", project=bank_with_every_kind["payments"])
    return login(Client(), user, recent_auth=True)


def lending_object(cluster, kind):
    return Resource.objects.get(cluster=cluster, kind=kind, name=f"{SECRET_NAME}-{kind.lower()}")


def action(name, cluster, kind, obj):
    segment = {"pod": "pod"}.get(kind.lower(), kind.lower())
    kwargs = {"cluster_id": cluster.pk, "namespace": obj.namespace, "name": obj.name}
    if name.startswith("clusters:pod_"):
        return reverse(name, kwargs=kwargs)
    return reverse(name, kwargs={**kwargs, "kind": segment})


READS = {
    "detail": lambda c, k, o: ("get", detail_url(o), {}),
    "detail partial": lambda c, k, o: ("get", detail_url(o), {"HTTP_HX_REQUEST": "true"}),
    "yaml": lambda c, k, o: ("get", action("clusters:resource_yaml", c, k, o), {}),
    "yaml edit form": lambda c, k, o: ("get", action("clusters:resource_yaml_edit", c, k, o), {}),
    "yaml edit save": lambda c, k, o: ("post", action("clusters:resource_yaml_edit", c, k, o), {}),
    "scale": lambda c, k, o: ("post", action("clusters:workload_scale", c, k, o), {}),
    "restart": lambda c, k, o: ("post", action("clusters:workload_restart", c, k, o), {}),
}
POD_ONLY = {
    "logs": "clusters:pod_logs",
    "follow logs": "clusters:pod_logs_follow",
    "download logs": "clusters:pod_logs_download",
    "delete": "clusters:pod_delete",
}


@pytest.mark.parametrize("way", list(READS))
@pytest.mark.parametrize("kind", NAMESPACED)
def test_another_projects_object_is_404_on_every_page_and_action(bank_with_every_kind, member, kind, way):
    cluster = bank_with_every_kind["cluster"]
    method, url, headers = READS[way](cluster, kind, lending_object(cluster, kind))

    response = getattr(member, method)(url, {"replicas": 1, "text": "a: 1"} if method == "post" else {}, **headers)

    assert response.status_code == 404, (url, response.status_code)
    assert PRIVATE not in response.content.decode()


@pytest.mark.parametrize("way", list(POD_ONLY))
def test_another_projects_pod_is_404_for_logs_and_delete(bank_with_every_kind, member, way):
    cluster = bank_with_every_kind["cluster"]
    url = action(POD_ONLY[way], cluster, "Pod", lending_object(cluster, "Pod"))

    response = member.post(url) if way == "delete" else member.get(url)

    assert response.status_code == 404
    assert PRIVATE not in response.content.decode()


FILTERS = ["namespace=lending", "q=zz-lending", f"labels=app%3D{SECRET_NAME}", "labels=app", "sort=name", ""]


@pytest.mark.parametrize("query", FILTERS)
@pytest.mark.parametrize("kind", NAMESPACED)
def test_list_filters_never_reach_into_another_project(bank_with_every_kind, member, kind, query):
    cluster = bank_with_every_kind["cluster"]
    url = list_url(cluster, lists.SLUG_OF[kind], query)

    full = member.get(url)
    partial = member.get(url, HTTP_HX_REQUEST="true", HTTP_X_KUBEMATE_POLL="1")

    assert (full.status_code, partial.status_code) == (200, 200)
    table = full.content.decode().split("<tbody>")[-1].split("</tbody>")[0]
    assert f'data-name="{SECRET_NAME}' not in table
    assert f'data-name="{SECRET_NAME}' not in partial.content.decode()
    assert PRIVATE not in full.content.decode() + partial.content.decode()


@pytest.mark.parametrize("kind", ["Deployment", "Pod", "ConfigMap", "Event"])
def test_the_markers_do_show_to_someone_allowed_to_see_lending(bank_with_every_kind, kind):
    """The control: the same pages show the lending object to a member of lending, so the checks above can fail."""
    cluster = bank_with_every_kind["cluster"]
    user = UserFactory(username="lee")
    grant(user, "project-owner", project=bank_with_every_kind["lending"])
    browser = login(Client(), user)

    detail = browser.get(detail_url(lending_object(cluster, kind))).content.decode()
    listing = browser.get(list_url(cluster, lists.SLUG_OF[kind], "namespace=lending")).content.decode()

    assert PRIVATE in detail
    assert f'data-name="{SECRET_NAME}' in listing
