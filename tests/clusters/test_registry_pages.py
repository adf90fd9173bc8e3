"""Cluster registry pages: who may open them, registering with either kind of credentials, bad input,
settings and credential replacement, removal, the connection test partial, and key rotation."""

import logging
import socket
import subprocess

import pytest
import yaml
from cryptography.fernet import Fernet
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from kubernetes import client

from apps.accounts import services as account_services
from apps.accounts.models import Project, Role
from apps.clusters.models import Cluster
from apps.clusters.registry.forms import ClusterForm
from apps.clusters.registry.services import kubeconfig_for_context, kubeconfig_from_token
from apps.core import crypto
from apps.core.models import AuditEvent
from tests.factories import AdminFactory, ClusterFactory, UserFactory

pytestmark = pytest.mark.django_db

GARBAGE_TOKEN = "eyJhbGciOiJSUzI1NiJ9.garbage.signature"


@pytest.fixture
def manager(admin_user):
    """A platform user allowed to manage clusters who is not a superuser."""
    user = UserFactory(username="cluster-manager")
    role = account_services.save_role(
        actor=admin_user,
        role=Role(
            slug="cluster-admins", name_en="Cluster admins", name_zh="集群管理", capabilities=["clusters.manage"]
        ),
    )
    account_services.create_binding(actor=admin_user, role=role, user=user)
    return user


@pytest.fixture
def manager_client(manager):
    browser = Client()
    browser.force_login(manager)
    return browser


@pytest.fixture(scope="session")
def test_ca_pem(tmp_path_factory):
    """A real CA certificate made by openssl (it signed nothing the tests connect to)."""
    folder = tmp_path_factory.mktemp("registry-ca")
    command = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    subprocess.run(
        [
            *command,
            "-keyout",
            str(folder / "k"),
            "-out",
            str(folder / "c"),
            "-subj",
            "/CN=registry-test-ca",
            "-days",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    return (folder / "c").read_text()


@pytest.fixture
def refused_cluster(test_ca_pem):
    """A registered cluster whose API server port is closed (nothing listens there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = ClusterFactory(name="closed", api_server=f"https://127.0.0.1:{port}")
    cluster.set_kubeconfig(kubeconfig_from_token(server=cluster.api_server, token="t", ca_pem=test_ca_pem))
    cluster.save()
    return cluster


def form_data(**overrides) -> dict:
    data = {
        "name": "prod-bj-1",
        "environment": "production",
        "region": "beijing",
        "labels": "team=payments\nkubemate.io/tier=gold",
        "source": "kubeconfig",
        "purpose": "own",
        "kubeconfig_text": "",
        "context": "",
        "api_server": "",
        "token": "",
        "ca_pem": "",
        "prometheus_url": "",
        "alertmanager_url": "",
        "logs_url": "",
        "jaeger_url": "",
    }
    data.update(overrides)
    return data


# Who may open the pages ------------------------------------------------------------------------


NO_ARGS, CLUSTER_ID = (lambda cluster: []), (lambda cluster: [cluster.pk])


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("clusters:registry_add", NO_ARGS),
        ("clusters:registry_settings", CLUSTER_ID),
        ("clusters:registry_delete", CLUSTER_ID),
    ],
)
def test_pages_answer_anonymous_forbidden_and_permitted_users(name, args, operator, manager, refused_cluster):
    url = reverse(name, args=args(refused_cluster))
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))
    unprivileged = Client()
    unprivileged.force_login(operator)
    assert unprivileged.get(url).status_code == 404
    permitted = Client()
    permitted.force_login(manager)
    assert permitted.get(url).status_code == 200


@pytest.mark.parametrize(
    ("name", "args"), [("clusters:registry_test", NO_ARGS), ("clusters:registry_test_cluster", CLUSTER_ID)]
)
def test_connection_tests_answer_anonymous_forbidden_and_permitted_users(
    name, args, operator, manager, refused_cluster
):
    url = reverse(name, args=args(refused_cluster))
    assert Client().post(url).status_code == 302
    unprivileged = Client()
    unprivileged.force_login(operator)
    assert unprivileged.post(url).status_code == 404
    permitted = Client()
    permitted.force_login(manager)
    response = permitted.post(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'data-testid="connection-result"' in response.content.decode()


def test_settings_of_a_missing_cluster_answer_404(manager_client):
    assert manager_client.get(reverse("clusters:registry_settings", args=[999999])).status_code == 404


def test_delete_asks_for_the_password_again_when_the_last_proof_is_old(manager_client, refused_cluster):
    session = manager_client.session
    session.pop("kubemate_reauth_at", None)
    session.save()

    response = manager_client.post(
        reverse("clusters:registry_delete", args=[refused_cluster.pk]), {"confirm_name": "closed"}
    )

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("security:reauth"))
    assert Cluster.objects.filter(pk=refused_cluster.pk).exists()


def test_settings_page_renders_within_a_few_queries(manager_client, refused_cluster, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        response = manager_client.get(reverse("clusters:registry_settings", args=[refused_cluster.pk]))
    assert response.status_code == 200


# Registering -----------------------------------------------------------------------------------


@pytest.mark.sandbox
def test_register_with_kubemates_own_pasted_kubeconfig_stores_it_encrypted(
    sandbox, registered_cluster, manager_client, manager, caplog
):
    own = registered_cluster.kubeconfig()
    token = yaml.safe_load(own)["users"][0]["user"]["token"]
    caplog.set_level(logging.DEBUG)

    response = manager_client.post(
        reverse("clusters:registry_add"),
        form_data(kubeconfig_text=own, prometheus_url="http://prometheus.monitoring:9090"),
    )

    cluster = Cluster.objects.get(name="prod-bj-1")
    assert response.status_code == 302
    assert response["Location"] == reverse("clusters:registry_settings", args=[cluster.pk])
    assert cluster.api_server == sandbox.server
    assert cluster.labels == {"team": "payments", "kubemate.io/tier": "gold"}
    assert (cluster.environment, cluster.region) == ("production", "beijing")
    assert cluster.prometheus_url == "http://prometheus.monitoring:9090"
    assert cluster.kubernetes_version == client.VersionApi(sandbox.api_client).get_code().git_version
    assert yaml.safe_load(cluster.kubeconfig())["users"][0]["user"]["token"] == token
    with connection.cursor() as cursor:
        cursor.execute("SELECT kubeconfig_encrypted FROM clusters_cluster WHERE id = %s", [cluster.pk])
        assert token not in cursor.fetchone()[0]
    event = AuditEvent.objects.get(action="clusters.cluster.create", object_name="prod-bj-1")
    assert (event.actor_name, event.result, event.object_name) == (manager.username, "success", "prod-bj-1")
    assert event.detail["purpose"] == "own"
    assert token not in str(event.detail)
    assert token not in caplog.text
    settings_page = manager_client.get(response["Location"]).content.decode()
    assert token not in settings_page
    assert 'data-testid="credentials-stored"' in settings_page


@pytest.mark.sandbox
def test_register_with_an_uploaded_admin_kubeconfig_installs_kubemates_identity_and_forgets_the_admin(
    sandbox, manager_client
):
    admin_kubeconfig = sandbox.kubeconfig.read_text()
    admin_key = yaml.safe_load(admin_kubeconfig)["users"][0]["user"]["client-key-data"]
    upload = SimpleUploadedFile("admin.kubeconfig", admin_kubeconfig.encode())

    response = manager_client.post(
        reverse("clusters:registry_add"), {**form_data(purpose="admin"), "kubeconfig_file": upload}
    )

    assert response.status_code == 302
    stored = Cluster.objects.get(name="prod-bj-1").kubeconfig()
    assert admin_key not in stored
    review = client.AuthenticationV1Api(sandbox.api_client).create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=yaml.safe_load(stored)["users"][0]["user"]["token"]))
    )
    assert review.status.user.username == "system:serviceaccount:kubemate-system:kubemate"
    assert (
        AuditEvent.objects.get(action="clusters.cluster.create", object_name="prod-bj-1").detail["purpose"] == "admin"
    )


@pytest.mark.sandbox
def test_register_with_address_token_and_ca(sandbox, sandbox_ca_pem, registered_cluster, manager_client):
    token = yaml.safe_load(registered_cluster.kubeconfig())["users"][0]["user"]["token"]

    response = manager_client.post(
        reverse("clusters:registry_add"),
        form_data(source="token", api_server=sandbox.server, token=token, ca_pem=sandbox_ca_pem),
    )

    assert response.status_code == 302
    cluster = Cluster.objects.get(name="prod-bj-1")
    assert cluster.api_server == sandbox.server
    assert yaml.safe_load(cluster.kubeconfig())["users"][0]["user"] == {"token": token}


@pytest.mark.sandbox
def test_credentials_the_cluster_rejects_save_nothing_and_say_why(sandbox, sandbox_ca_pem, manager_client):
    response = manager_client.post(
        reverse("clusters:registry_add"),
        form_data(source="token", api_server=sandbox.server, token=GARBAGE_TOKEN, ca_pem=sandbox_ca_pem),
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert f"The cluster at {sandbox.server} rejected the credentials (401)" in html
    assert GARBAGE_TOKEN not in html
    assert not Cluster.objects.exists()
    event = AuditEvent.objects.get(action="clusters.cluster.create")
    assert (event.result, event.detail["reason"]) == ("failure", "unauthorized")


EXEC_KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {exec: {command: /bin/sh, args: ["-c", "id"], apiVersion: client.authentication.k8s.io/v1}}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
"""
TOKEN_KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
"""


@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        ({"source": "token", "api_server": "not a url", "token": "abc"}, "The address must start with https."),
        (
            {"source": "token", "api_server": "https://10.0.0.1:70000", "token": "abc"},
            "The port must be a number from 1 to 65535.",
        ),
        (
            {"source": "token", "api_server": "https://10.0.0.1:6443", "token": "abc", "ca_pem": "not a cert"},
            "The CA certificate is not a PEM certificate",
        ),
        ({"kubeconfig_text": TOKEN_KUBECONFIG, "context": "staging"}, "The kubeconfig has no context named staging."),
        ({"kubeconfig_text": EXEC_KUBECONFIG}, "The kubeconfig uses exec, which Kubemate does not accept"),
        (
            {"kubeconfig_text": TOKEN_KUBECONFIG.replace("127.0.0.1", "169.254.169.254")},
            "169.254.169.254 is a link-local or cloud metadata address",
        ),
        (
            {"kubeconfig_text": TOKEN_KUBECONFIG, "jaeger_url": "http://100.100.100.200/"},
            "100.100.100.200 is a link-local or cloud metadata address",
        ),
        ({"kubeconfig_text": TOKEN_KUBECONFIG, "name": "Prod_1"}, "Use at most 63 lower-case letters"),
        ({"kubeconfig_text": TOKEN_KUBECONFIG, "labels": "team payments"}, "Line 1: write each label as key=value."),
        (
            {"kubeconfig_text": TOKEN_KUBECONFIG, "labels": "team=-bad-"},
            "Line 1: the label value -bad- must be at most 63",
        ),
        ({"kubeconfig_text": TOKEN_KUBECONFIG, "logs_url": "ftp://loki"}, "The address must start with http or https."),
        ({"ca_pem": ""}, "Give the cluster&#x27;s credentials"),
        ({}, "Upload a kubeconfig file or paste one here."),
    ],
)
def test_bad_input_gives_a_sentence_and_saves_nothing(overrides, sentence, manager_client, test_ca_pem):
    response = manager_client.post(reverse("clusters:registry_add"), form_data(**{"ca_pem": test_ca_pem, **overrides}))

    assert response.status_code == 200
    assert sentence in response.content.decode()
    assert not Cluster.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="clusters.").exists()


def test_form_errors_are_translated(manager_client):
    response = manager_client.post(
        reverse("clusters:registry_add"),
        form_data(name="", kubeconfig_text=TOKEN_KUBECONFIG),
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "这个字段是必填项。" in response.content.decode()
    assert not Cluster.objects.exists()


def test_pasted_credentials_are_not_rendered_back_after_an_error(manager_client):
    response = manager_client.post(
        reverse("clusters:registry_add"), form_data(name="Bad Name", kubeconfig_text=TOKEN_KUBECONFIG, token="s3cr3t")
    )
    html = response.content.decode()
    assert "token: abc" not in html
    assert "s3cr3t" not in html
    assert 'data-testid="paste-again"' in html


def test_only_a_superuser_may_allow_link_local_addresses(manager_client):
    data = form_data(kubeconfig_text=TOKEN_KUBECONFIG.replace("127.0.0.1", "169.254.10.1"), allow_link_local="on")

    response = manager_client.post(reverse("clusters:registry_add"), data)

    assert "Only a platform administrator (superuser) may allow link-local addresses." in response.content.decode()
    assert not Cluster.objects.exists()
    superuser_form = ClusterForm(data, user=AdminFactory())
    assert superuser_form.is_valid(), superuser_form.errors
    assert superuser_form.cleaned_data["credentials"].server == "https://169.254.10.1:6443"


# Settings, credential replacement, removal -----------------------------------------------------


@pytest.mark.sandbox
def test_settings_save_without_touching_the_credentials(registered_cluster, manager_client):
    stored = registered_cluster.kubeconfig_encrypted
    url = reverse("clusters:registry_settings", args=[registered_cluster.pk])

    response = manager_client.post(url, form_data(name="sandbox", environment="staging", labels="team=core"))

    assert response.status_code == 302
    registered_cluster.refresh_from_db()
    assert (registered_cluster.environment, registered_cluster.labels) == ("staging", {"team": "core"})
    assert registered_cluster.kubeconfig_encrypted == stored
    event = AuditEvent.objects.get(action="clusters.cluster.update")
    assert event.detail["changed"] == ["environment", "region", "labels"]
    assert not AuditEvent.objects.filter(action="clusters.cluster.credentials_replace").exists()


@pytest.mark.sandbox
def test_saving_a_prometheus_url_says_at_once_whether_it_answers(registered_cluster, manager_client, metrics):
    url = reverse("clusters:registry_settings", args=[registered_cluster.pk])

    answering = manager_client.post(url, form_data(name="sandbox", prometheus_url=metrics.url), follow=True)
    silent = manager_client.post(url, form_data(name="sandbox", prometheus_url="http://127.0.0.1:9"), follow=True)
    unchanged = manager_client.post(url, form_data(name="sandbox", prometheus_url="http://127.0.0.1:9"), follow=True)

    assert f"Prometheus at {metrics.url} answers queries." in answering.content.decode()
    assert (
        "Prometheus at http://127.0.0.1:9 could not be reached. Charts and automatic canary steps need it to answer."
        in silent.content.decode()
    )
    assert "could not be reached" not in unchanged.content.decode()  # nothing changed, nothing probed
    registered_cluster.refresh_from_db()
    assert registered_cluster.prometheus_url == "http://127.0.0.1:9"  # saved even though it does not answer


@pytest.mark.sandbox
def test_replacing_credentials_with_rejected_ones_keeps_the_old_ones_and_the_old_settings(
    sandbox, sandbox_ca_pem, registered_cluster, manager_client
):
    stored = registered_cluster.kubeconfig_encrypted
    url = reverse("clusters:registry_settings", args=[registered_cluster.pk])

    response = manager_client.post(
        url,
        form_data(
            name="sandbox",
            environment="staging",
            source="token",
            api_server=sandbox.server,
            token=GARBAGE_TOKEN,
            ca_pem=sandbox_ca_pem,
        ),
    )

    assert response.status_code == 200
    assert "rejected the credentials (401)" in response.content.decode()
    registered_cluster.refresh_from_db()
    assert registered_cluster.kubeconfig_encrypted == stored
    assert registered_cluster.environment == ""
    assert AuditEvent.objects.get(action="clusters.cluster.credentials_replace").result == "failure"


@pytest.mark.sandbox
def test_replacing_credentials_with_working_ones_is_audited(
    sandbox, sandbox_ca_pem, registered_cluster, manager_client
):
    token = yaml.safe_load(registered_cluster.kubeconfig())["users"][0]["user"]["token"]
    url = reverse("clusters:registry_settings", args=[registered_cluster.pk])

    response = manager_client.post(
        url,
        form_data(
            name="sandbox",
            region="",
            labels="",
            source="token",
            api_server=sandbox.server,
            token=token,
            ca_pem=sandbox_ca_pem,
        ),
    )

    assert response.status_code == 302
    registered_cluster.refresh_from_db()
    assert yaml.safe_load(registered_cluster.kubeconfig())["users"][0]["user"] == {"token": token}
    event = AuditEvent.objects.get(action="clusters.cluster.credentials_replace")
    assert (event.result, event.detail["purpose"]) == ("success", "own")
    assert token not in str(event.detail)


def test_removal_needs_the_name_typed_and_is_audited(manager_client, refused_cluster):
    url = reverse("clusters:registry_delete", args=[refused_cluster.pk])

    wrong = manager_client.post(url, {"confirm_name": "something-else"})
    assert wrong.status_code == 400
    assert "Type the cluster&#x27;s name, closed, to confirm." in wrong.content.decode()
    assert Cluster.objects.filter(pk=refused_cluster.pk).exists()

    right = manager_client.post(url, {"confirm_name": "closed"})
    assert right.status_code == 302
    assert right["Location"] == reverse("clusters:cluster_list")
    assert not Cluster.objects.filter(pk=refused_cluster.pk).exists()
    event = AuditEvent.objects.get(action="clusters.cluster.delete")
    assert (event.object_name, event.detail["api_server"]) == ("closed", refused_cluster.api_server)


def test_a_cluster_with_projects_is_not_removed(manager_client, refused_cluster, admin_user):
    account_services.save_project(
        actor=admin_user, project=Project(cluster=refused_cluster, slug="payments", name="Payments", namespaces=["pay"])
    )

    response = manager_client.post(
        reverse("clusters:registry_delete", args=[refused_cluster.pk]), {"confirm_name": "closed"}
    )

    assert response.status_code == 400
    assert "Cluster closed still has projects (Payments); delete or move them first." in response.content.decode()
    assert Cluster.objects.filter(pk=refused_cluster.pk).exists()
    assert not AuditEvent.objects.filter(action="clusters.cluster.delete").exists()


# The connection test partial -------------------------------------------------------------------


@pytest.mark.sandbox
def test_testing_typed_credentials_answers_a_partial_with_the_reason_and_saves_nothing(
    sandbox, sandbox_ca_pem, manager_client
):
    response = manager_client.post(
        reverse("clusters:registry_test"),
        form_data(source="token", api_server=sandbox.server, token=GARBAGE_TOKEN, ca_pem=sandbox_ca_pem),
        HTTP_HX_REQUEST="true",
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert 'data-reason="unauthorized"' in html
    assert "The credentials were rejected" in html
    assert not Cluster.objects.exists()
    event = AuditEvent.objects.get(action="clusters.cluster.test")
    assert (event.result, event.detail["reason"], event.object_name) == ("failure", "unauthorized", "prod-bj-1")


def test_testing_typed_credentials_with_bad_input_names_the_field(manager_client, test_ca_pem):
    response = manager_client.post(
        reverse("clusters:registry_test"),
        form_data(source="token", api_server="https://10.0.0.1:70000", token="abc", ca_pem=test_ca_pem),
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert "API server address: The port must be a number from 1 to 65535." in html
    assert not AuditEvent.objects.filter(action="clusters.cluster.test").exists()


@pytest.mark.sandbox
def test_testing_a_registered_cluster_shows_version_and_node_count(sandbox, registered_cluster, manager_client):
    version = client.VersionApi(sandbox.api_client).get_code().git_version
    nodes = len(client.CoreV1Api(sandbox.api_client).list_node().items)

    response = manager_client.post(
        reverse("clusters:registry_test_cluster", args=[registered_cluster.pk]), HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    assert 'data-reason="ok"' in html
    assert f"Kubernetes {version}" in html
    assert f"{nodes} nodes" in html
    registered_cluster.refresh_from_db()
    assert registered_cluster.kubernetes_version == version
    event = AuditEvent.objects.get(action="clusters.cluster.test")
    assert (event.result, event.detail["nodes"]) == ("success", nodes)


def test_testing_a_cluster_whose_port_is_closed_says_so(refused_cluster, manager_client):
    response = manager_client.post(reverse("clusters:registry_test_cluster", args=[refused_cluster.pk]))

    html = response.content.decode()
    assert "<html" in html  # without htmx the whole page answers
    assert f"{refused_cluster.api_server} refused the connection" in html
    assert AuditEvent.objects.get(action="clusters.cluster.test").result == "failure"


# Key rotation ----------------------------------------------------------------------------------


def test_rotate_encryption_re_encrypts_every_credential_with_the_newest_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    first, second = ClusterFactory(name="a"), ClusterFactory(name="b")
    first.set_kubeconfig(TOKEN_KUBECONFIG)
    first.save()
    settings.ENCRYPTION_KEYS = [new, old]

    call_command("rotate_encryption")

    settings.ENCRYPTION_KEYS = [new]
    assert Cluster.objects.get(pk=first.pk).kubeconfig() == TOKEN_KUBECONFIG
    assert Cluster.objects.get(pk=second.pk).kubeconfig() == "{}"
    event = AuditEvent.objects.get(action="core.encryption.rotate")
    assert (event.actor_name, event.detail) == ("system", {"clusters": 2})


def test_rotate_encryption_changes_nothing_when_one_value_cannot_be_decrypted(settings):
    lost, current = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [current]
    readable = ClusterFactory(name="readable")
    before = readable.kubeconfig_encrypted
    settings.ENCRYPTION_KEYS = [lost]
    ClusterFactory(name="unreadable")
    settings.ENCRYPTION_KEYS = [current]

    with pytest.raises(CommandError, match="The credentials of cluster unreadable cannot be decrypted"):
        call_command("rotate_encryption")

    assert Cluster.objects.get(pk=readable.pk).kubeconfig_encrypted == before
    assert not AuditEvent.objects.filter(action="core.encryption.rotate").exists()
    assert crypto.decrypt(before) == "{}"


def test_a_kubeconfig_keeps_only_the_chosen_context():
    two = yaml.safe_load(TOKEN_KUBECONFIG)
    two["clusters"].append({"name": "d", "cluster": {"server": "https://10.9.9.9:6443"}})
    two["users"].append({"name": "v", "user": {"token": "other-secret"}})
    two["contexts"].append({"name": "other", "context": {"cluster": "d", "user": "v"}})

    minimal = yaml.safe_load(kubeconfig_for_context(yaml.safe_dump(two), "other"))

    assert minimal["clusters"] == [{"name": "cluster", "cluster": {"server": "https://10.9.9.9:6443"}}]
    assert minimal["users"] == [{"name": "kubemate", "user": {"token": "other-secret"}}]


@pytest.mark.sandbox
def test_prometheus_credentials_are_stored_encrypted_kept_and_never_shown(
    registered_cluster, manager_client, prometheus_with_password
):
    url = reverse("clusters:registry_settings", args=[registered_cluster.pk])
    server = prometheus_with_password.url
    signed_in = {"prometheus_url": server, "prometheus_auth": "basic", "prometheus_username": "ops"}

    missing = manager_client.post(url, form_data(name="sandbox", **signed_in))
    saved = manager_client.post(url, form_data(name="sandbox", **signed_in, prometheus_password="s3cret"), follow=True)
    kept = manager_client.post(url, form_data(name="sandbox", prometheus_url=server, environment="qa"), follow=True)

    assert "Type the user name and the password." in missing.content.decode()
    assert f"Prometheus at {server} answers queries." in saved.content.decode()
    registered_cluster.refresh_from_db()
    assert "s3cret" not in registered_cluster.prometheus_auth_encrypted
    assert registered_cluster.endpoint_auth("prometheus") == {"username": "ops", "password": "s3cret"}
    for page in (saved, kept, manager_client.get(url)):
        assert "s3cret" not in page.content.decode()
    assert 'value="keep"' in kept.content.decode() and registered_cluster.environment == "qa"
    changes = [e.detail["changed"] for e in AuditEvent.objects.filter(action="clusters.cluster.update").order_by("seq")]
    assert changes == [
        ["environment", "region", "labels", "prometheus_url", "prometheus_auth_encrypted"],
        ["environment"],
    ]
    assert "s3cret" not in str(list(AuditEvent.objects.values_list("detail", flat=True)))

    manager_client.post(url, form_data(name="sandbox", prometheus_url=server, prometheus_auth="none"))
    registered_cluster.refresh_from_db()
    assert registered_cluster.prometheus_auth_encrypted == ""


@pytest.mark.sandbox
def test_saving_an_alertmanager_url_says_at_once_whether_it_answers(registered_cluster, manager_client, alertmanager):
    url = reverse("clusters:registry_settings", args=[registered_cluster.pk])

    answering = manager_client.post(url, form_data(name="sandbox", alertmanager_url=alertmanager.url), follow=True)
    silent = manager_client.post(url, form_data(name="sandbox", alertmanager_url="http://127.0.0.1:9"), follow=True)

    assert f"Alertmanager at {alertmanager.url} answers." in answering.content.decode()
    assert "The alerts pages need it to answer." in silent.content.decode()


@pytest.mark.sandbox
def test_log_store_and_jaeger_credentials_and_tenants_are_stored_encrypted_and_never_shown(
    registered_cluster, manager_client
):
    from apps.observability import endpoints

    url = reverse("clusters:registry_settings", args=[registered_cluster.pk])
    first = {
        "logs_backend": "loki",
        "logs_url": "http://127.0.0.1:3100",
        "logs_auth": "bearer",
        "logs_token": "loki-t0ken",
        "logs_tenant": "team-a",
        "jaeger_url": "http://127.0.0.1:16686",
        "jaeger_auth": "basic",
        "jaeger_username": "ops",
        "jaeger_password": "jaeger-pa55",
        "jaeger_tenant": "tenant-1",
    }
    bad_tenant = manager_client.post(url, form_data(name="sandbox", **{**first, "logs_tenant": "a b"}))
    saved = manager_client.post(url, form_data(name="sandbox", **first), follow=True)
    # Keeping the stored credentials while changing the tenant writes the tenant only.
    moved = manager_client.post(
        url,
        form_data(
            name="sandbox",
            logs_backend="loki",
            logs_url=first["logs_url"],
            logs_tenant="team-b",
            jaeger_url=first["jaeger_url"],
            jaeger_tenant="tenant-1",
        ),
        follow=True,
    )

    assert "Use letters, digits" in bad_tenant.content.decode()
    registered_cluster.refresh_from_db()
    assert registered_cluster.logs_backend == "loki"
    for clear in ("loki-t0ken", "jaeger-pa55", "team-b", "tenant-1"):
        assert clear not in registered_cluster.logs_auth_encrypted + registered_cluster.jaeger_auth_encrypted
    assert registered_cluster.endpoint_auth("logs") == {"token": "loki-t0ken", "tenant": "team-b"}
    assert registered_cluster.endpoint_auth("jaeger") == {
        "username": "ops",
        "password": "jaeger-pa55",
        "tenant": "tenant-1",
    }
    logs = endpoints.logs(registered_cluster)
    assert (logs.token, logs.tenant) == ("loki-t0ken", "team-b") and "loki-t0ken" not in repr(logs)
    for page in (saved, moved, manager_client.get(url)):
        assert "loki-t0ken" not in page.content.decode() and "jaeger-pa55" not in page.content.decode()
    changes = [e.detail["changed"] for e in AuditEvent.objects.filter(action="clusters.cluster.update").order_by("seq")]
    assert changes[-1] == ["logs_auth_encrypted"]
    assert "loki-t0ken" not in str(list(AuditEvent.objects.values_list("detail", flat=True)))
