import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from kubernetes import client

from apps.clusters.inventory.sync import full_resync
from apps.clusters.kinds import BY_KIND
from apps.clusters.models import Cluster
from apps.core.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]


def test_register_sandbox_stores_kubemates_own_token_encrypted_not_the_admin_key(sandbox):
    call_command("register_sandbox", str(sandbox.kubeconfig), name="sandbox")

    cluster = Cluster.objects.get(name="sandbox")
    assert cluster.api_server == sandbox.server
    with connection.cursor() as cursor:
        cursor.execute("SELECT kubeconfig_encrypted FROM clusters_cluster WHERE id = %s", [cluster.pk])
        stored = cursor.fetchone()[0]
    own = yaml.safe_load(cluster.kubeconfig())
    token = own["users"][0]["user"]["token"]
    admin_key = yaml.safe_load(sandbox.kubeconfig.read_text())["users"][0]["user"]["client-key-data"]
    assert token not in stored
    assert admin_key not in cluster.kubeconfig()
    review = client.AuthenticationV1Api(sandbox.api_client).create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
    )
    assert review.status.user.username == "system:serviceaccount:kubemate-system:kubemate"


def test_registering_again_replaces_credentials_without_a_second_row(sandbox):
    call_command("register_sandbox", str(sandbox.kubeconfig), name="sandbox")
    call_command("register_sandbox", str(sandbox.kubeconfig), name="sandbox")
    assert Cluster.objects.filter(name="sandbox").count() == 1


def test_register_sandbox_takes_the_forms_path_and_is_audited_as_system(sandbox):
    """One registration path: the command is audited like the form (create, then credentials replaced)."""
    call_command("register_sandbox", str(sandbox.kubeconfig), name="sandbox")
    call_command("register_sandbox", str(sandbox.kubeconfig), name="sandbox")
    events = list(AuditEvent.objects.order_by("seq").values_list("actor_name", "action", "result", "object_name"))
    assert events == [
        ("system", "clusters.cluster.create", "success", "sandbox"),
        ("system", "clusters.cluster.credentials_replace", "success", "sandbox"),
    ]
    assert AuditEvent.objects.get(action="clusters.cluster.create").detail["purpose"] == "admin"


def test_register_sandbox_refuses_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="start the sandbox first"):
        call_command("register_sandbox", str(tmp_path / "nope"), name="sandbox")
    assert Cluster.objects.count() == 0


def test_dashboard_shows_the_registered_version_and_the_node_count_from_the_inventory(sandbox, admin_client_):
    call_command("register_sandbox", str(sandbox.kubeconfig), name="sandbox")
    version = client.VersionApi(sandbox.api_client).get_code().git_version
    nodes = client.CoreV1Api(sandbox.api_client).list_node().items
    full_resync(Cluster.objects.get(name="sandbox"), [BY_KIND["Node"]])

    html = admin_client_.get(reverse("dashboard")).content.decode()

    assert 'data-testid="cluster-fact"' in html
    assert f"Kubernetes {version}" in html
    assert f"of {len(nodes)} nodes ready" in html
    assert yaml.safe_load(Cluster.objects.get().kubeconfig())["users"][0]["user"]["token"] not in html
