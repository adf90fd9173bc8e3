"""A secret's value is revealed on click to those who hold secrets.read, read live as them, audited by key name and
never stored (issue: the operator's day, item 7). Against the real sandbox."""

import base64

import pytest
from django.urls import reverse
from kubernetes import client as k8s

from apps.accounts.models import Project
from apps.core.models import AuditEvent
from tests.factories import UserFactory
from tests.helpers import bind, create_namespace, delete_namespace, grant, login, unique

pytestmark = [pytest.mark.sandbox, pytest.mark.django_db]


@pytest.fixture
def vault(sandbox, registered_cluster, admin_user):
    namespace = unique("sec")
    create_namespace(sandbox, namespace)
    data = {"DB_PASSWORD": base64.b64encode(b"hunter2-very-secret").decode(), "note": base64.b64encode(b"x").decode()}
    k8s.CoreV1Api(sandbox.api_client).create_namespaced_secret(
        namespace, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="db"), data=data)
    )
    owner, viewer = UserFactory(), UserFactory()
    bind(admin_user, registered_cluster, owner, "project-owner", [namespace])
    grant(viewer, "viewer", project=Project.objects.get(namespaces__contains=[namespace]))
    yield {"cluster": registered_cluster, "namespace": namespace, "owner": owner, "viewer": viewer}
    delete_namespace(sandbox, namespace)


def reveal_url(v) -> str:
    return reverse(
        "clusters:secret_reveal",
        kwargs={"cluster_id": v["cluster"].pk, "kind": "secret", "namespace": v["namespace"], "name": "db"},
    )


def test_the_owner_reveals_one_key_after_the_password_and_the_audit_names_the_key_only(client, vault):
    login(client, vault["owner"])  # a stale password proof: the dialog's password is needed
    stale = client.post(reveal_url(vault), {"key": "DB_PASSWORD"}, HTTP_HX_REQUEST="true")
    assert stale.status_code == 204 and "reauth" in stale["HX-Redirect"]

    login(client, vault["owner"], recent_auth=True)
    response = client.post(reveal_url(vault), {"key": "DB_PASSWORD", "reason": "INC-9 rotate"}, HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert response.status_code == 200 and "hunter2-very-secret" in body and 'data-key="DB_PASSWORD"' in body
    assert response["Cache-Control"] == "no-store"
    event = AuditEvent.objects.get(action="clusters.secret.reveal")
    assert (event.actor_name, event.object_name, event.detail, event.reason) == (
        vault["owner"].username,
        "db",
        {"key": "DB_PASSWORD"},
        "INC-9 rotate",
    )
    assert "hunter2" not in str(AuditEvent.objects.values_list("detail", flat=True))

    missing = client.post(reveal_url(vault), {"key": "NOPE"}, HTTP_HX_REQUEST="true").content.decode()
    assert "has no key NOPE" in missing


def test_a_viewer_has_no_reveal_and_the_page_shows_names_only(client, vault):
    login(client, vault["viewer"], recent_auth=True)
    assert client.post(reveal_url(vault), {"key": "DB_PASSWORD"}).status_code == 404
    assert not AuditEvent.objects.filter(action="clusters.secret.reveal").exists()
