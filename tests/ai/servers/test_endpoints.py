"""External endpoints: registered against the real local model server (the ``llm`` fixture), their models listed,
their API key stored encrypted and never shown, their address bounded by the console's address policy; a server
that does not answer is a sentence, never a 500."""

import pytest
from django.db import connection
from django.urls import reverse

from apps.accounts.models import Project
from apps.ai.models import Endpoint
from apps.core import crypto
from apps.core.models import AuditEvent
from tests.ai.servers.helpers import KEY, endpoint_form
from tests.factories import ClusterFactory, UserFactory
from tests.helpers import free_port, grant, login


@pytest.fixture
def project(db):
    return Project.objects.create(cluster=ClusterFactory(), slug="ai", name="AI team", namespaces=["ai"])


@pytest.fixture
def owner(project):
    user = UserFactory()
    grant(user, "project-owner", project=project)
    return user


def _row_text(endpoint: Endpoint) -> str:
    """The endpoint's row as PostgreSQL holds it, every column as text."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT ai_endpoint::text FROM ai_endpoint WHERE id = %s", [endpoint.pk])
        return cursor.fetchone()[0]


def test_an_endpoint_is_checked_on_save_lists_its_model_and_keeps_its_key_encrypted(client, owner, project, llm):
    data = endpoint_form(project=project.pk, base_url=llm.base_url, api_key=KEY)

    response = login(client, owner).post(reverse("ai:endpoint_new"), data)

    endpoint = Endpoint.objects.get(name="bank-llm")
    assert response.status_code == 302
    assert response["Location"] == reverse("ai:server_detail", args=[endpoint.pk])
    assert [m["name"] for m in endpoint.served_models] == [llm.model]
    assert endpoint.default_model == llm.model
    assert (endpoint.last_error, endpoint.release, endpoint.project) == ("", None, project)
    assert KEY not in _row_text(endpoint)
    assert crypto.decrypt(endpoint.api_key_encrypted) == KEY
    pages = [
        client.get(reverse("ai:server_detail", args=[endpoint.pk])),
        client.get(reverse("ai:endpoint_edit", args=[endpoint.pk])),
        client.get(reverse("ai:server_list")),
        client.get(reverse("ai:server_live", args=[endpoint.pk]) + "?part=models"),
    ]
    assert [p.status_code for p in pages] == [200, 200, 200, 200]
    assert all(KEY not in p.content.decode() for p in pages)
    assert llm.model in pages[3].content.decode()
    event = AuditEvent.objects.get(action="ai.endpoint.registered")
    assert KEY not in str(event.detail)
    assert (event.object_name, event.detail["api_key"]) == ("bank-llm", "set")


def test_an_empty_key_field_keeps_the_stored_key_and_the_box_removes_it(client, owner, project, llm):
    login(client, owner).post(
        reverse("ai:endpoint_new"), endpoint_form(project=project.pk, base_url=llm.base_url, api_key=KEY)
    )
    endpoint = Endpoint.objects.get(name="bank-llm")
    edit = reverse("ai:endpoint_edit", args=[endpoint.pk])

    client.post(edit, endpoint_form(project=project.pk, base_url=llm.base_url, default_model=llm.model))
    endpoint.refresh_from_db()
    kept = endpoint.api_key()
    client.post(edit, endpoint_form(project=project.pk, base_url=llm.base_url, remove_api_key="on"))
    endpoint.refresh_from_db()

    assert kept == KEY
    assert endpoint.api_key_encrypted == ""
    changes = AuditEvent.objects.filter(action="ai.endpoint.changed").order_by("seq")
    assert [e.detail["api_key"] for e in changes] == ["kept", "removed"]


def test_a_stopped_server_is_a_sentence_and_the_pages_stay_200(client, owner, project):
    stopped = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    login(client, owner)

    refused = client.post(reverse("ai:endpoint_new"), endpoint_form(project=project.pk, base_url=stopped))
    saved = client.post(
        reverse("ai:endpoint_new"), endpoint_form(project=project.pk, base_url=stopped, save_unchecked="on")
    )
    endpoint = Endpoint.objects.get(name="bank-llm")
    listing = client.get(reverse("ai:server_list"))
    models = client.get(reverse("ai:server_live", args=[endpoint.pk]) + "?part=models")
    checked = client.post(reverse("ai:server_check", args=[endpoint.pk]), follow=True)

    assert refused.status_code == 200
    assert "Nothing was saved" in refused.content.decode()
    assert "cannot be reached" in refused.content.decode()
    assert saved.status_code == 302
    assert endpoint.last_error != ""
    assert (listing.status_code, models.status_code, checked.status_code) == (200, 200, 200)
    assert "bank-llm (127.0.0.1:" in models.content.decode()
    assert "cannot be reached" in models.content.decode()
    assert "cannot be reached" in checked.content.decode()


def test_check_now_lists_the_models_again(client, owner, project, llm):
    stale = Endpoint.objects.create(name="bank-llm", project=project, base_url=llm.base_url, served_models=[])

    response = login(client, owner).post(reverse("ai:server_check", args=[stale.pk]), follow=True)

    stale.refresh_from_db()
    assert response.status_code == 200
    assert [m["name"] for m in stale.served_models] == [llm.model]
    assert stale.checked_at is not None
    assert "bank-llm lists 1 model." in response.content.decode()


@pytest.mark.parametrize(
    ("address", "sentence"),
    [
        ("ftp://llm.bank.example/v1", "The address must start with http or https."),
        ("http://user:secret@llm.bank.example/v1", "Do not put a user name or password in the address."),
        ("http://169.254.169.254/v1", "is a link-local or cloud metadata address"),
        ("http://metadata.google.internal/v1", "is a cloud metadata service"),
        ("https://llm.bank.example/v1?key=1", "must not contain a query"),
    ],
)
def test_the_address_is_bounded_by_the_console_address_policy(client, owner, project, address, sentence):
    response = login(client, owner).post(
        reverse("ai:endpoint_new"), endpoint_form(project=project.pk, base_url=address, save_unchecked="on")
    )

    assert response.status_code == 200
    assert sentence in response.content.decode()
    assert not Endpoint.objects.exists()


def test_a_platform_wide_endpoint_takes_ai_admin(client, owner, admin_user):
    data = endpoint_form(base_url="http://127.0.0.1:9/v1", save_unchecked="on")

    refused = login(client, owner).post(reverse("ai:endpoint_new"), data)
    accepted = login(client, admin_user).post(reverse("ai:endpoint_new"), data)

    assert "Only an AI administrator registers an endpoint for the whole platform" in refused.content.decode()
    assert accepted.status_code == 302
    assert Endpoint.objects.get().project is None


def test_people_outside_the_project_neither_see_nor_change_its_endpoint(client, project):
    endpoint = Endpoint.objects.create(name="bank-llm", project=project, base_url="http://127.0.0.1:9/v1")
    other_project = Project.objects.create(cluster=project.cluster, slug="b", name="B", namespaces=["b"])
    outsider, viewer = UserFactory(), UserFactory()
    grant(outsider, "project-owner", project=other_project)
    grant(viewer, "viewer", project=project)

    login(client, outsider)
    hidden = [
        client.get(reverse("ai:server_detail", args=[endpoint.pk])).status_code,
        client.get(reverse("ai:server_live", args=[endpoint.pk]) + "?part=models").status_code,
        client.get(reverse("ai:endpoint_edit", args=[endpoint.pk])).status_code,
        client.post(reverse("ai:endpoint_delete", args=[endpoint.pk])).status_code,
    ]
    listed = client.get(reverse("ai:server_list")).content.decode()
    login(client, viewer)
    seen = client.get(reverse("ai:server_detail", args=[endpoint.pk]))
    viewer_changes = [
        client.get(reverse("ai:endpoint_edit", args=[endpoint.pk])).status_code,
        client.post(reverse("ai:endpoint_delete", args=[endpoint.pk])).status_code,
        client.get(reverse("ai:endpoint_new")).status_code,
    ]

    assert hidden == [404, 404, 404, 404]
    assert "bank-llm" not in listed
    assert seen.status_code == 200
    assert 'data-testid="endpoint-edit"' not in seen.content.decode()
    assert viewer_changes == [404, 404, 404]
    assert Endpoint.objects.filter(pk=endpoint.pk).exists()


def test_removing_an_endpoint_is_audited(client, owner, project):
    endpoint = Endpoint.objects.create(name="bank-llm", project=project, base_url="http://127.0.0.1:9/v1")

    response = login(client, owner).post(reverse("ai:endpoint_delete", args=[endpoint.pk]))

    assert response.status_code == 302
    assert not Endpoint.objects.exists()
    assert AuditEvent.objects.get(action="ai.endpoint.deleted").object_name == "bank-llm"
