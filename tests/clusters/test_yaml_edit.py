"""View and edit YAML against the sandbox: read as the user, dry-run diff, confirm, conflicts and errors."""

import pytest
import yaml
from kubernetes import client as k8s

from apps.core.models import AuditEvent
from tests.factories import UserFactory
from tests.helpers import bind, create_namespace, delete_namespace, deployment, htmx_events, login, unique, url

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]


@pytest.fixture
def team(sandbox, registered_cluster, admin_user):
    namespace = unique("h6-yaml")
    create_namespace(sandbox, namespace)
    k8s.AppsV1Api(sandbox.api_client).create_namespaced_deployment(namespace, deployment("web", replicas=2))
    k8s.CoreV1Api(sandbox.api_client).create_namespaced_secret(
        namespace,
        {"metadata": {"name": "db", "labels": {"app": "web"}}, "stringData": {"password": "hunter2-very-secret"}},
    )
    owner, developer = UserFactory(), UserFactory()
    bind(admin_user, registered_cluster, owner, "project-owner", [namespace])
    bind(admin_user, registered_cluster, developer, "developer", [namespace])
    yield {"cluster": registered_cluster, "namespace": namespace, "owner": owner, "developer": developer}
    delete_namespace(sandbox, namespace)


def yaml_url(team, view="clusters:resource_yaml", kind="deployment", name="web"):
    return url(view, team["cluster"], kind=kind, namespace=team["namespace"], name=name)


def live(sandbox, team) -> dict:
    api = k8s.AppsV1Api(sandbox.api_client)
    return api.api_client.sanitize_for_serialization(api.read_namespaced_deployment("web", team["namespace"]))


def edit_text(sandbox, team, change) -> tuple[str, str]:
    """The YAML the edit page would show, changed by ``change(obj)``, and the version it started from."""
    obj = live(sandbox, team)
    obj["metadata"].pop("managedFields", None)
    change(obj)
    return yaml.safe_dump(obj), obj["metadata"]["resourceVersion"]


def test_view_yaml_shows_the_live_object_without_managed_fields(client, team):
    response = login(client, team["developer"]).get(yaml_url(team))
    body = response.content.decode()
    assert response.status_code == 200
    assert "kind: Deployment" in body and "replicas: 2" in body
    assert "managedFields" not in body
    assert 'data-testid="yaml-edit-link"' not in body


def test_a_secret_shows_metadata_and_never_its_data(client, team):
    response = login(client, team["owner"]).get(yaml_url(team, kind="secret", name="db"))
    # The page, without the console's confirmation dialog (which asks for the reader's own password).
    body = response.content.decode().split('id="confirm-modal"')[0]
    assert response.status_code == 200
    assert "name: db" in body and 'data-testid="secret-note"' in body
    assert "hunter2" not in body and "aHVudGVyM" not in body and "password" not in body


def test_a_secret_needs_the_metadata_capability(client, team):
    assert login(client, team["developer"]).get(yaml_url(team, kind="secret", name="db")).status_code == 404


def test_the_edit_page_is_for_yaml_editors_only(client, team):
    assert login(client, team["developer"]).get(yaml_url(team, "clusters:resource_yaml_edit")).status_code == 404
    page = login(client, team["owner"]).get(yaml_url(team, "clusters:resource_yaml_edit"))
    assert page.status_code == 200 and 'data-testid="yaml-textarea"' in page.content.decode()
    assert "managedFields" not in page.content.decode()


def test_preview_shows_a_diff_and_changes_nothing_until_confirmed(sandbox, client, team):
    def change(obj):
        obj["spec"]["replicas"] = 4
        obj["metadata"].setdefault("labels", {})["tier"] = "front"

    text, version = edit_text(sandbox, team, change)
    login(client, team["owner"])

    preview = client.post(
        yaml_url(team, "clusters:resource_yaml_edit"),
        {"text": text, "resource_version": version},
        HTTP_HX_REQUEST="true",
    )
    body = preview.content.decode()
    assert 'data-testid="yaml-diff"' in body
    assert "-  replicas: 2" in body and "+  replicas: 4" in body and "+    tier: front" in body
    assert live(sandbox, team)["spec"]["replicas"] == 2
    assert not AuditEvent.objects.filter(action="clusters.yaml.edit").exists()

    applied = client.post(
        yaml_url(team, "clusters:resource_yaml_edit"),
        {"text": text, "resource_version": version, "confirm": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert 'data-testid="yaml-applied"' in applied.content.decode()
    assert htmx_events(applied) == ["resource-changed"]
    assert live(sandbox, team)["spec"]["replicas"] == 4
    event = AuditEvent.objects.get(action="clusters.yaml.edit")
    assert (event.result, event.object_kind, event.object_name) == ("success", "Deployment", "web")


def test_a_syntax_error_names_the_line(client, team):
    text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: [unclosed\n"
    response = login(client, team["owner"]).post(
        yaml_url(team, "clusters:resource_yaml_edit"), {"text": text, "resource_version": "1"}, HTTP_HX_REQUEST="true"
    )
    assert "The YAML is not valid at line 6" in response.content.decode()


def test_changing_the_name_or_kind_is_refused(sandbox, client, team):
    renamed, version = edit_text(sandbox, team, lambda obj: obj["metadata"].update(name="web-2"))
    rekinded, _ = edit_text(sandbox, team, lambda obj: obj.update(kind="StatefulSet"))
    login(client, team["owner"])
    edit = yaml_url(team, "clusters:resource_yaml_edit")

    name_answer = client.post(edit, {"text": renamed, "resource_version": version}, HTTP_HX_REQUEST="true")
    kind_answer = client.post(edit, {"text": rekinded, "resource_version": version}, HTTP_HX_REQUEST="true")

    assert "The name cannot be changed here; it must stay web." in name_answer.content.decode()
    assert "The kind cannot be changed here; it must stay Deployment." in kind_answer.content.decode()


def test_a_change_made_meanwhile_is_a_conflict(sandbox, client, team):
    text, version = edit_text(sandbox, team, lambda obj: obj["spec"].update(replicas=5))
    k8s.AppsV1Api(sandbox.api_client).patch_namespaced_deployment(
        "web", team["namespace"], {"metadata": {"labels": {"changed": "meanwhile"}}}
    )
    response = login(client, team["owner"]).post(
        yaml_url(team, "clusters:resource_yaml_edit"),
        {"text": text, "resource_version": version, "confirm": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert "Someone else changed this object since you opened it; reload it and try again." in response.content.decode()
    assert live(sandbox, team)["spec"]["replicas"] == 2
    assert AuditEvent.objects.get(action="clusters.yaml.edit").result == "failure"


def test_an_invalid_field_is_kubernetes_own_message_in_a_sentence(sandbox, client, team):
    text, version = edit_text(sandbox, team, lambda obj: obj["spec"].update(replicas=-3))
    response = login(client, team["owner"]).post(
        yaml_url(team, "clusters:resource_yaml_edit"),
        {"text": text, "resource_version": version},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert "Kubernetes refused the change:" in body and "spec.replicas" in body
    assert live(sandbox, team)["spec"]["replicas"] == 2
