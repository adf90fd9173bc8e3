"""Permission parity: for every built-in role x capability x scope, the console's button, the view's answer
and Kubernetes' own answer (an access review as the user's ServiceAccount) agree, 100%."""

import re

import pytest
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.urls import reverse
from kubernetes import client

from apps.accounts import capabilities, services
from apps.accounts.models import Project, Role
from apps.accounts.reconcile import reconcile_rbac
from apps.clusters.kube import impersonated_username
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]
BUILTIN = ["platform-admin", "cluster-admin", "project-owner", "developer", "viewer", "auditor"]
BUTTON = Template(
    "{% load access %}{% can code cluster=cluster namespace=namespace as ok %}{% if ok %}SHOWN{% endif %}"
)


def button_shown(user, code, cluster, namespace) -> bool:
    request = RequestFactory().get("/")
    request.user = user
    html = BUTTON.render(Context({"request": request, "code": code, "cluster": cluster, "namespace": namespace}))
    return html == "SHOWN"


def as_user(sandbox, user):
    """Admin credentials impersonating the user's ServiceAccount: the apiserver asked directly, not through Kubemate."""
    return sandbox.new_admin_client({"Impersonate-User": impersonated_username(user)})


def kubernetes_allows(api, code, namespace) -> bool:
    """The apiserver's own answer (an access review) for ``code`` through ``api`` (``as_user``)."""
    verb, group, resource = capabilities.PROBES[code]
    resource, _, subresource = resource.partition("/")
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb,
                    group=group,
                    resource=resource,
                    subresource=subresource,
                    namespace="" if capabilities.get(code).cluster_wide else namespace,
                )
            )
        )
    )
    return review.status.allowed


def view_answers(user, cluster, namespace) -> dict[str, str]:
    browser = Client()
    browser.force_login(user)
    html = browser.get(reverse("accounts:my_access"), {"cluster": cluster.pk, "namespace": namespace}).content.decode()
    rows = re.findall(r'data-capability="([a-z_.]+)" data-console="(allowed|denied)"', html)
    return dict(rows)


@pytest.fixture
def bound_users(registered_cluster, team_namespaces, admin_user):
    project = services.save_project(
        actor=admin_user,
        project=Project(cluster=registered_cluster, slug="team-a", name="Team A", namespaces=["team-a"]),
    )
    users = {}
    for slug in BUILTIN:
        role = Role.objects.get(slug=slug)
        in_project = UserFactory(username=f"project-{slug}")
        services.create_binding(actor=admin_user, role=role, user=in_project, project=project)
        on_cluster = UserFactory(username=f"cluster-{slug}")
        services.create_binding(actor=admin_user, role=role, user=on_cluster, cluster=registered_cluster)
        users[slug] = {"project": in_project, "cluster": on_cluster}
    reconcile_rbac(registered_cluster)
    return users


def test_console_view_and_kubernetes_agree_for_every_builtin_role_capability_and_scope(
    sandbox, registered_cluster, bound_users
):
    cases = []
    for slug in BUILTIN:
        for scope, user, namespace in (
            ("project, in-project namespace", bound_users[slug]["project"], "team-a"),
            ("project, out-of-project namespace", bound_users[slug]["project"], "team-b"),
            ("cluster", bound_users[slug]["cluster"], "team-b"),
        ):
            view = view_answers(user, registered_cluster, namespace)
            with as_user(sandbox, user) as api:  # one connection for the user's reviews
                for code in capabilities.PROBES:
                    console = button_shown(user, code, registered_cluster, namespace)
                    cluster_answer = kubernetes_allows(api, code, namespace)
                    cases.append((slug, scope, code, console, view[code] == "allowed", cluster_answer))

    disagreements = [c for c in cases if not (c[3] == c[4] == c[5])]
    assert len(cases) == len(BUILTIN) * 3 * len(capabilities.PROBES)
    assert disagreements == []
    # The matrix is not trivially all-denied or all-allowed.
    assert {c[3] for c in cases} == {True, False}
    assert ("developer", "project, in-project namespace", "workloads.scale", True, True, True) in cases
    assert ("developer", "project, out-of-project namespace", "workloads.scale", False, False, False) in cases
    assert ("cluster-admin", "project, in-project namespace", "nodes.drain", False, False, False) in cases
    assert ("cluster-admin", "cluster", "nodes.drain", True, True, True) in cases


def test_platform_capabilities_follow_platform_bindings_only(registered_cluster, bound_users, admin_user):
    platform_codes = [c.code for c in capabilities.CAPABILITIES if c.platform]
    for slug in BUILTIN:
        for user in bound_users[slug].values():
            assert [button_shown(user, code, None, None) for code in platform_codes] == [False] * len(platform_codes)
    auditor = UserFactory(username="platform-auditor")
    services.create_binding(actor=admin_user, role=Role.objects.get(slug="auditor"), user=auditor)
    assert button_shown(auditor, "audit.view", None, None)
    assert not button_shown(auditor, "users.manage", None, None)


def test_a_real_request_as_the_user_matches_the_console(sandbox, registered_cluster, bound_users):
    """Beyond access reviews: the developer lists deployments in its project and is refused elsewhere."""
    from apps.clusters import kube

    developer = bound_users["developer"]["project"]
    with kube.client(registered_cluster, as_user=developer) as k:
        listed = k.get("Deployment", "team-a")
        with pytest.raises(kube.Forbidden):
            k.get("Deployment", "team-b")
    assert listed["kind"] == "DeploymentList"


def test_forged_impersonation_headers_gain_nothing(sandbox, registered_cluster, bound_users):
    viewer = bound_users["viewer"]["project"]
    browser = Client()
    browser.force_login(viewer)
    forged = browser.get(
        reverse("accounts:my_access"),
        {"cluster": registered_cluster.pk, "namespace": "team-b"},
        HTTP_IMPERSONATE_USER="system:admin",
        HTTP_IMPERSONATE_GROUP="system:masters",
        HTTP_IMPERSONATE_UID="0",
    ).content.decode()
    cluster_answers = dict(
        re.findall(r'data-capability="([a-z_.]+)" data-console="[a-z]+" data-cluster="([a-z]+)"', forged)
    )
    assert cluster_answers and set(cluster_answers.values()) == {"denied"}
    assert "users.manage" not in forged or 'data-capability="users.manage" data-console="denied"' in forged
