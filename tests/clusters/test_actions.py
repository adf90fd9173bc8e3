"""Day-2 actions against the real sandbox: scale, restart, delete pod, cordon; 404s; refusals as sentences."""

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse
from kubernetes import client as k8s

from apps.accounts import services
from apps.accounts.models import Project, Role
from apps.core.models import AuditEvent
from tests.factories import ClusterFactory, ResourceFactory, UserFactory
from tests.helpers import (
    bind,
    create_namespace,
    delete_namespace,
    deployment,
    htmx_events,
    login,
    running_pods,
    unique,
    url,
    wait_for,
)

pytestmark = pytest.mark.django_db
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"

# (url name, kwargs without cluster_id, method) for every action view.
VIEWS = [
    ("clusters:workload_scale", {"kind": "deployment", "namespace": "ns", "name": "web"}, "post"),
    ("clusters:workload_restart", {"kind": "deployment", "namespace": "ns", "name": "web"}, "post"),
    ("clusters:pod_delete", {"namespace": "ns", "name": "web-1"}, "post"),
    ("clusters:node_cordon", {"name": "node-000"}, "post"),
    ("clusters:node_uncordon", {"name": "node-000"}, "post"),
    ("clusters:node_drain", {"name": "node-000"}, "post"),
    ("clusters:resource_yaml", {"kind": "deployment", "namespace": "ns", "name": "web"}, "get"),
    ("clusters:resource_yaml_edit", {"kind": "deployment", "namespace": "ns", "name": "web"}, "get"),
    ("clusters:resource_yaml_edit", {"kind": "deployment", "namespace": "ns", "name": "web"}, "post"),
    ("clusters:pod_logs", {"namespace": "ns", "name": "web-1"}, "get"),
    ("clusters:pod_logs_follow", {"namespace": "ns", "name": "web-1"}, "get"),
    ("clusters:pod_logs_download", {"namespace": "ns", "name": "web-1"}, "get"),
]


@pytest.fixture
def team(sandbox, registered_cluster, admin_user):
    """A project namespace with Deployment "web" (1 replica), a namespace outside it, and its project owner."""
    inside, outside = unique("h6-team"), unique("h6-other")
    for namespace in (inside, outside):
        create_namespace(sandbox, namespace)
        k8s.AppsV1Api(sandbox.api_client).create_namespaced_deployment(namespace, deployment("web"))
    owner = UserFactory()
    bind(admin_user, registered_cluster, owner, "project-owner", [inside])
    yield {"cluster": registered_cluster, "inside": inside, "outside": outside, "user": owner}
    for namespace in (inside, outside):
        delete_namespace(sandbox, namespace)


def replicas(sandbox, namespace: str, name: str = "web") -> int:
    return k8s.AppsV1Api(sandbox.api_client).read_namespaced_deployment(name, namespace).spec.replicas


@pytest.mark.parametrize(("name", "kwargs", "method"), VIEWS)
def test_anonymous_is_sent_to_sign_in(client, name, kwargs, method):
    cluster = ClusterFactory()
    response = getattr(client, method)(url(name, cluster, **kwargs))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("name", "kwargs", "method"), VIEWS)
def test_a_user_without_the_capability_gets_404(client, name, kwargs, method):
    cluster = ClusterFactory()
    response = getattr(login(client, UserFactory(), recent_auth=True), method)(url(name, cluster, **kwargs))
    assert response.status_code == 404


def test_scale_rejects_a_count_outside_0_to_1000_before_calling_the_cluster(client):
    cluster = ClusterFactory()
    owner = UserFactory()
    services.create_binding(actor=None, role=Role.objects.get(slug="project-owner"), user=owner, cluster=cluster)
    target = url("clusters:workload_scale", cluster, kind="deployment", namespace="ns", name="web")
    login(client, owner)
    before = AuditEvent.objects.count()

    too_many = client.post(target, {"replicas": "1001"}, HTTP_HX_REQUEST="true")
    not_a_number = client.post(target, {"replicas": "two"}, HTTP_HX_REQUEST="true")

    assert "between 0 and 1000" in too_many.content.decode()
    assert "between 0 and 1000" in not_a_number.content.decode()
    assert "HX-Trigger" not in too_many
    assert AuditEvent.objects.count() == before


@pytest.mark.sandbox
def test_scale_changes_the_replicas_as_the_user_and_audits(sandbox, client, team):
    cluster, namespace = team["cluster"], team["inside"]
    response = login(client, team["user"]).post(
        url("clusters:workload_scale", cluster, kind="deployment", namespace=namespace, name="web"),
        {"replicas": "3"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert htmx_events(response) == ["resource-changed"]
    assert "scaled to 3 replicas" in response.content.decode()
    assert replicas(sandbox, namespace) == 3
    event = AuditEvent.objects.get(action="clusters.workload.scale")
    assert (event.result, event.namespace, event.object_kind, event.object_name) == (
        "success",
        namespace,
        "Deployment",
        "web",
    )
    assert event.actor_id == team["user"].pk and event.detail == {"replicas": 3}


@pytest.mark.sandbox
def test_restart_stamps_the_pod_template(sandbox, client, team):
    cluster, namespace = team["cluster"], team["inside"]
    response = login(client, team["user"]).post(
        url("clusters:workload_restart", cluster, kind="deployment", namespace=namespace, name="web"),
        HTTP_HX_REQUEST="true",
    )
    assert htmx_events(response) == ["resource-changed"]
    template = client_apps(sandbox).read_namespaced_deployment("web", namespace).spec.template
    assert RESTARTED_AT in template.metadata.annotations
    assert (
        AuditEvent.objects.filter(action="clusters.workload.restart", result="success", namespace=namespace).count()
        == 1
    )


def client_apps(sandbox):
    return k8s.AppsV1Api(sandbox.api_client)


@pytest.mark.sandbox
def test_delete_pod_asks_for_the_password_then_deletes(sandbox, client, team):
    cluster, namespace = team["cluster"], team["inside"]
    pod = wait_for(lambda: running_pods(sandbox, namespace, "app=web"))[0]
    target = url("clusters:pod_delete", cluster, namespace=namespace, name=pod.metadata.name)

    asked = login(client, team["user"]).post(target, HTTP_HX_REQUEST="true")
    assert asked.status_code == 204 and "/reauth/" in asked["HX-Redirect"]

    response = login(client, team["user"], recent_auth=True).post(target, HTTP_HX_REQUEST="true")
    assert htmx_events(response) == ["resource-changed"]

    def gone():
        pods = k8s.CoreV1Api(sandbox.api_client).list_namespaced_pod(namespace).items
        return all(p.metadata.uid != pod.metadata.uid for p in pods)

    assert wait_for(gone)
    assert AuditEvent.objects.filter(action="clusters.pod.delete", object_name=pod.metadata.name).count() == 1


@pytest.mark.sandbox
def test_a_namespace_outside_the_project_answers_404_and_nothing_changes(sandbox, client, team):
    cluster, outside = team["cluster"], team["outside"]
    response = login(client, team["user"]).post(
        url("clusters:workload_scale", cluster, kind="deployment", namespace=outside, name="web"), {"replicas": "4"}
    )
    assert response.status_code == 404
    assert replicas(sandbox, outside) == 1
    assert not AuditEvent.objects.filter(action="clusters.workload.scale").exists()


@pytest.mark.sandbox
def test_a_kubernetes_refusal_is_a_sentence_and_an_audited_failure(sandbox, client, team, admin_user):
    """The console allows it (cluster-scope binding) but the cluster's RBAC does not: Kubernetes says no."""
    cluster, outside = team["cluster"], team["outside"]
    stranger = UserFactory()
    bind(admin_user, cluster, stranger, "developer", [team["inside"]])
    # A role bound at cluster scope that the projection never reached (the user has no ClusterRoleBinding yet).
    services.create_binding(actor=admin_user, role=Role.objects.get(slug="developer"), user=stranger, cluster=cluster)

    response = login(client, stranger).post(
        url("clusters:workload_scale", cluster, kind="deployment", namespace=outside, name="web"),
        {"replicas": "5"},
        HTTP_HX_REQUEST="true",
    )

    body = response.content.decode()
    assert response.status_code == 200 and "HX-Trigger" not in response
    assert f"Kubernetes refused: you may not scale deployments in namespace {outside}." in body
    assert replicas(sandbox, outside) == 1
    event = AuditEvent.objects.get(action="clusters.workload.scale")
    assert event.result == "failure" and event.namespace == outside
    assert "you may not scale deployments" in event.detail["error"]


@pytest.mark.sandbox
def test_an_invalid_replica_count_from_kubernetes_is_a_sentence(sandbox, team):
    from apps.clusters.actions import services as services_actions
    from apps.clusters.actions.targets import ActionError, Target

    target = Target(team["cluster"], "Deployment", team["inside"], "web")
    with pytest.raises(ActionError, match=r"Kubernetes refused the change: .*replicas"):
        services_actions.scale_workload(actor=team["user"], target=target, replicas=-1)
    assert AuditEvent.objects.get(action="clusters.workload.scale").result == "failure"


@pytest.mark.sandbox
def test_cordon_and_uncordon_a_node(sandbox, client, registered_cluster, admin_user):
    node = unique("h6-node")
    k8s.CoreV1Api(sandbox.api_client).create_node(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "annotations": {"kwok.x-k8s.io/node": "fake"}}}
    )
    operator = UserFactory()
    bind(admin_user, registered_cluster, operator, "cluster-admin")
    core = k8s.CoreV1Api(sandbox.api_client)
    try:
        cordoned = login(client, operator).post(
            url("clusters:node_cordon", registered_cluster, name=node), HTTP_HX_REQUEST="true"
        )
        assert htmx_events(cordoned) == ["resource-changed"]
        assert core.read_node(node).spec.unschedulable is True

        client.post(url("clusters:node_uncordon", registered_cluster, name=node), HTTP_HX_REQUEST="true")
        assert not core.read_node(node).spec.unschedulable
    finally:
        core.delete_node(node)
    actions = list(
        AuditEvent.objects.filter(object_kind="Node").order_by("seq").values_list("action", "result", "object_name")
    )
    assert actions == [("clusters.node.cordon", "success", node), ("clusters.node.uncordon", "success", node)]


@pytest.mark.sandbox
def test_project_roles_cannot_cordon_nodes(sandbox, client, team):
    response = login(client, team["user"]).post(url("clusters:node_cordon", team["cluster"], name="node-000"))
    assert response.status_code == 404


def render_buttons(user, resource):
    request = RequestFactory().get("/")
    request.user = user
    template = Template('{% include "clusters/actions/_buttons.html" %}')
    return template.render(Context({"request": request, "cluster": resource.cluster, "resource": resource}))


def test_buttons_show_only_what_the_user_may_do():
    cluster = ClusterFactory()
    deployment_row = ResourceFactory(cluster=cluster, kind="Deployment", namespace="shop", obj=deployment("web", 2))
    pod_row = ResourceFactory(cluster=cluster, kind="Pod", namespace="shop", name="web-1")
    node_row = ResourceFactory(
        cluster=cluster, kind="Node", namespace="", name="node-000", obj={"spec": {"unschedulable": True}}
    )
    developer, viewer, admin = UserFactory(), UserFactory(), UserFactory()
    project = Project.objects.create(cluster=cluster, slug="shop", name="Shop", namespaces=["shop"])
    services.create_binding(actor=None, role=Role.objects.get(slug="developer"), user=developer, project=project)
    services.create_binding(actor=None, role=Role.objects.get(slug="viewer"), user=viewer, project=project)
    services.create_binding(actor=None, role=Role.objects.get(slug="cluster-admin"), user=admin, cluster=cluster)

    developer_deployment = render_buttons(developer, deployment_row)
    developer_pod = render_buttons(developer, pod_row)
    viewer_deployment = render_buttons(viewer, deployment_row)
    admin_node = render_buttons(admin, node_row)
    developer_node = render_buttons(developer, node_row)

    assert 'data-testid="action-scale"' in developer_deployment and 'value="2"' in developer_deployment
    assert 'data-testid="action-restart"' in developer_deployment
    assert 'data-testid="action-yaml-edit"' not in developer_deployment
    assert 'data-testid="action-logs"' in developer_pod and 'data-testid="action-delete"' not in developer_pod
    assert 'data-testid="action-scale"' not in viewer_deployment and 'data-testid="action-yaml"' in viewer_deployment
    assert 'data-testid="action-uncordon"' in admin_node and 'data-testid="action-cordon"' not in admin_node
    assert 'data-testid="action-drain"' in admin_node
    assert "action-" not in developer_node
    assert 'hx-target="#resource-actions-result"' in developer_deployment


@pytest.fixture
def only_the_user_may_change_web(sandbox, team):
    """An admission policy in the team namespace that admits a change of a Deployment (or its scale) only from
    the user's impersonated ServiceAccount, and refuses every other identity, whatever its RBAC allows, with a
    sentence naming the identity the API server saw. Ready once the sandbox's admin is refused a dry run."""
    from apps.clusters.kube import impersonated_username

    admission = k8s.AdmissionregistrationV1Api(sandbox.api_client)
    name, namespace, expected = unique("only-user"), team["inside"], impersonated_username(team["user"])
    admission.create_validating_admission_policy(
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["apps"],
                            "apiVersions": ["v1"],
                            "operations": ["UPDATE"],
                            "resources": ["deployments", "deployments/scale"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": f"request.userInfo.username == '{expected}'",
                        "messageExpression": "'the API server saw ' + request.userInfo.username",
                    }
                ],
            },
        }
    )
    admission.create_validating_admission_policy_binding(
        {
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
            },
        }
    )

    last = []

    def admin_refused() -> bool:
        try:
            client_apps(sandbox).patch_namespaced_deployment_scale(
                "web", namespace, {"spec": {"replicas": 2}}, dry_run="All"
            )
        except k8s.ApiException as exc:
            last[:] = [exc.status, exc.body]
            return "the API server saw" in exc.body
        last[:] = ["admitted"]
        return False

    assert wait_for(admin_refused), f"the admission policy never took effect: {last}"
    yield expected
    admission.delete_validating_admission_policy_binding(name)
    admission.delete_validating_admission_policy(name)


@pytest.mark.sandbox
def test_the_cluster_sees_the_users_service_account_on_scale_and_restart(
    sandbox, client, team, only_the_user_may_change_web
):
    """Which identity the API server saw, not only the outcome: the policy admits the user's ServiceAccount
    alone, so a request sent as Kubemate's own identity (or anyone else) is refused even where RBAC allows it."""
    cluster, namespace = team["cluster"], team["inside"]
    browser = login(client, team["user"])

    scaled = browser.post(
        url("clusters:workload_scale", cluster, kind="deployment", namespace=namespace, name="web"),
        {"replicas": "2"},
        HTTP_HX_REQUEST="true",
    )
    restarted = browser.post(
        url("clusters:workload_restart", cluster, kind="deployment", namespace=namespace, name="web"),
        HTTP_HX_REQUEST="true",
    )

    assert "the API server saw" not in scaled.content.decode() + restarted.content.decode()
    assert (htmx_events(scaled), htmx_events(restarted)) == (["resource-changed"], ["resource-changed"])
    assert replicas(sandbox, namespace) == 2
    assert (
        RESTARTED_AT
        in client_apps(sandbox).read_namespaced_deployment("web", namespace).spec.template.metadata.annotations
    )


@pytest.mark.sandbox
def test_a_client_for_a_user_impersonates_that_users_service_account(team):
    """The header the factory sets, and the name the API server answers a SelfSubjectReview with."""
    from apps.clusters import kube

    expected = kube.impersonated_username(team["user"])
    assert expected == f"system:serviceaccount:kubemate-system:kubemate-u{team['user'].pk}"
    with kube.client(team["cluster"], as_user=team["user"]) as k:
        assert k._api.default_headers["Impersonate-User"] == expected
        _status, review = k.post(
            "SelfSubjectReview", body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
    assert review["status"]["userInfo"]["username"] == expected
    with kube.client(team["cluster"]) as k:
        assert "Impersonate-User" not in k._api.default_headers
        _status, own = k.post(
            "SelfSubjectReview", body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
    assert own["status"]["userInfo"]["username"] != expected
