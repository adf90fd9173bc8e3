"""The console's "Encrypt a field" on ConfigMap and Secret pages (apps/clusters/actions -> apps/fieldcrypt)."""

import base64
import uuid

import pytest
from django.urls import reverse
from kubernetes import client as k8s

from apps.accounts import services as accounts
from apps.accounts.models import Project
from apps.accounts.reconcile import reconcile_rbac
from apps.clusters.models import Resource
from apps.core.models import AuditEvent
from apps.fieldcrypt.k8s import KEY_NAMESPACE, key_secret_name
from tests.clusters.inventory_rows import detail_url
from tests.helpers import login, unique

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]


def encrypt_url(cluster, kind: str, namespace: str, name: str) -> str:
    return reverse("clusters:encrypt_field", args=[cluster.pk, kind, namespace, name])


def test_an_operator_encrypts_a_secret_field_from_its_page(sandbox, registered_cluster, namespace, admin_user, client):
    core = k8s.CoreV1Api(sandbox.api_client)
    project = accounts.save_project(
        actor=admin_user,
        project=Project(cluster=registered_cluster, slug=unique("fc"), name="Payments", namespaces=[namespace]),
    )
    reconcile_rbac(registered_cluster)
    value = "wire-transfer-pass-0042"
    data = {"PASSWORD": base64.b64encode(value.encode()).decode()}
    core.create_namespaced_secret(namespace, {"metadata": {"name": "bank-link"}, "data": data})
    Resource.objects.create(
        cluster=registered_cluster, kind="Secret", namespace=namespace, name="bank-link", uid=uuid.uuid4(),
        summary={"keys": 1}, resource_version="1",
    )  # fmt: skip
    person = login(client, admin_user, recent_auth=True)

    page = person.get(detail_url(Resource.objects.get(name="bank-link"))).content.decode()
    assert 'data-testid="action-encrypt-field"' in page and 'data-testid="encrypt-form"' in page

    bad = person.post(encrypt_url(registered_cluster, "secret", namespace, "bank-link"), {"field": "../x"})
    assert bad.status_code == 200 and "A field name holds letters" in bad.content.decode()
    missing = person.post(encrypt_url(registered_cluster, "secret", namespace, "bank-link"), {"field": "NOPE"})
    assert "has no field NOPE" in missing.content.decode()

    answer = person.post(
        encrypt_url(registered_cluster, "secret", namespace, "bank-link"),
        {"field": "PASSWORD", "service_account": "bank-app"},
        HTTP_HX_REQUEST="true",
    )
    text = answer.content.decode()
    assert answer.status_code == 200 and "Field PASSWORD of bank-link now holds ciphertext" in text, text
    stored = base64.b64decode(core.read_namespaced_secret("bank-link", namespace).data["PASSWORD"]).decode()
    assert stored.startswith("kmenc:v1:1:") and value not in stored
    binding = k8s.RbacAuthorizationV1Api(sandbox.api_client).read_namespaced_role_binding(
        key_secret_name(project), KEY_NAMESPACE
    )
    assert [(s.namespace, s.name) for s in binding.subjects] == [(namespace, "bank-app")]
    assert (
        AuditEvent.objects.filter(action="fieldcrypt.field.seal", result="success", actor_id=admin_user.pk).count() == 1
    )
    assert AuditEvent.objects.filter(action="fieldcrypt.field.seal", result="failure").count() == 1  # NOPE


def test_a_namespace_in_no_project_gets_a_sentence(sandbox, registered_cluster, namespace, admin_user, client):
    k8s.CoreV1Api(sandbox.api_client).create_namespaced_config_map(
        namespace, {"metadata": {"name": "loose"}, "data": {"A": "b"}}
    )
    person = login(client, admin_user, recent_auth=True)

    answer = person.post(encrypt_url(registered_cluster, "configmap", namespace, "loose"), {"field": "A"})

    assert "belongs to no project" in answer.content.decode()
    assert k8s.CoreV1Api(sandbox.api_client).read_namespaced_config_map("loose", namespace).data == {"A": "b"}
