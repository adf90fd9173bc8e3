"""Four-eyes approval of role grants (issue 20) against the sandbox: a project binding in production made from the
console waits as a change request, is not approved by its maker, and once another person approves it its
RoleBinding reaches the cluster, made as the maker; a role widened and a person added to a bound group wait the
same way, and go stale when the role or the group changes meanwhile; the same grants from a shell, a management
command or Django admin are refused with the sentence; the directory's memberships and revocations are not held."""

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import reverse
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from apps.accounts import actor as actors
from apps.accounts import services as account_services
from apps.accounts.capabilities import CHANGES_APPROVE, CHANGES_BREAK_GLASS
from apps.accounts.models import Binding, Project, Role
from apps.accounts.reconcile import reconcile_rbac
from apps.compliance.approvals import services as approvals
from apps.compliance.models import ApprovalPolicy, ChangeRequest
from apps.core import gates
from apps.core.models import AuditEvent
from tests.factories import UserFactory
from tests.helpers import grant, login
from tests.plugins.alertmanager import Mailbox

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]


@pytest.fixture
def prod(registered_cluster, team_namespaces, admin_user):
    """The cluster labelled env=prod, project Team A on it, and a policy asking approval for grants there."""
    registered_cluster.labels = {"env": "prod"}
    registered_cluster.save(update_fields=["labels"])
    project = account_services.save_project(
        actor=admin_user,
        project=Project(cluster=registered_cluster, slug="team-a", name="Team A", namespaces=["team-a"]),
    )
    ApprovalPolicy.objects.create(name="Production access", cluster_labels={"env": "prod"}, actions=["roles.grant"])
    return project


@pytest.fixture
def checker():
    person = UserFactory()
    role = Role.objects.create(slug="grant-approver", name_en="a", name_zh="a", capabilities=[CHANGES_APPROVE])
    with gates.cleared():
        grant(person, role.slug)
    return person


def role_binding(sandbox, name: str):
    return k8s.RbacAuthorizationV1Api(sandbox.api_client).read_namespaced_role_binding(name, "team-a")


def test_a_production_binding_waits_for_a_second_person_and_reaches_the_cluster_once_approved(
    prod, admin_user, checker, client, sandbox, registered_cluster
):
    developer = UserFactory(username="wu.lei")
    role = Role.objects.get(slug="developer")
    page = login(client, admin_user, recent_auth=True).post(
        reverse("accounts:project_detail", args=[prod.pk]),
        {"role": role.pk, "user": developer.pk, "ticket": "CHG-7", "reason": "joins the payments team"},
        follow=True,
    )

    cr = ChangeRequest.objects.get()
    assert (cr.status, cr.action, cr.maker, cr.cluster) == ("pending", "roles.grant", admin_user, registered_cluster)
    assert cr.ticket == "CHG-7" and cr.scope["project"] == prod.pk
    assert cr.manifests[0]["role"] == "developer" and "releases.deploy" in cr.manifests[0]["capabilities"]
    assert f"change request #{cr.pk}" in page.content.decode()
    assert not Binding.objects.filter(user=developer).exists()  # nothing granted yet

    with pytest.raises(approvals.DecisionRefused):
        approvals.approve(actor=admin_user, pk=cr.pk)
    approvals.approve(actor=checker, pk=cr.pk, comment="CAB 12")

    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.APPLIED, cr.outcome
    binding = Binding.objects.get(user=developer)
    assert (binding.role, binding.project) == (role, prod)
    made = AuditEvent.objects.get(action="accounts.binding.create", object_name=binding.k8s_name)
    assert made.actor_id == admin_user.pk  # written as the maker
    reconcile_rbac(registered_cluster)
    assert role_binding(sandbox, binding.k8s_name).subjects[0].name == f"kubemate-u{developer.pk}"


def test_a_cluster_outside_the_policy_gets_its_binding_at_once(registered_cluster, team_namespaces, admin_user):
    ApprovalPolicy.objects.create(name="Production access", cluster_labels={"env": "prod"}, actions=["roles.grant"])
    binding = account_services.create_binding(
        actor=admin_user, role=Role.objects.get(slug="viewer"), user=UserFactory(), cluster=registered_cluster
    )
    assert binding.pk and not ChangeRequest.objects.exists()


def test_a_role_widened_and_a_member_added_wait_and_go_stale_when_changed_meanwhile(prod, admin_user, checker):
    role = Role.objects.create(slug="payments-ops", name_en="Payments ops", name_zh="支付运维", capabilities=[])
    role.capabilities = ["workloads.view"]
    role.save()  # nobody holds it yet: not a grant
    group = Group.objects.create(name="payments-oncall")
    with gates.cleared():
        Binding.objects.create(role=role, group=group, scope=Binding.Scope.PROJECT, project=prod)

    role.capabilities = ["workloads.view", "pods.exec"]
    role.name_en = "Payments operations"
    with pytest.raises(gates.ApprovalRequired) as widened:
        account_services.save_role(actor=admin_user, role=role)
    assert Role.objects.get(pk=role.pk).capabilities == ["workloads.view"]
    cr = ChangeRequest.objects.get(pk=widened.value.request_id)
    assert "+ pods.exec" in cr.diff and cr.cluster == prod.cluster
    approvals.approve(actor=checker, pk=cr.pk)
    stored = Role.objects.get(pk=role.pk)
    assert sorted(stored.capabilities) == ["pods.exec", "workloads.view"] and stored.name_en == "Payments operations"

    newcomer = UserFactory(username="tang.yu")
    with pytest.raises(gates.ApprovalRequired) as added:
        account_services.save_group(actor=admin_user, group=group, members=[newcomer])
    assert not group.user_set.exists()
    # Someone else joins before the approval: what the checker read is no longer what would change.
    with actors.acting_as(name=actors.DIRECTORY_SYNC):
        group.user_set.add(UserFactory(username="from.ldap"))
    with pytest.raises(approvals.DecisionRefused, match="members of payments-oncall changed"):
        approvals.approve(actor=checker, pk=added.value.request_id)
    assert ChangeRequest.objects.get(pk=added.value.request_id).status == ChangeRequest.Status.STALE
    assert not group.user_set.filter(pk=newcomer.pk).exists()

    # Taking rights away is never held back.
    account_services.save_group(actor=admin_user, group=group, members=[])
    assert not group.user_set.exists()


def test_grants_from_a_shell_or_a_command_are_refused_and_break_glass_applies_at_once(
    prod, admin_user, mailbox, django_capture_on_commit_callbacks
):
    developer = UserFactory()
    role = Role.objects.get(slug="developer")
    with actors.acting_as(name="manage.py shell (ops)"), pytest.raises(gates.ChangeRefused, match="Production access"):
        Binding.objects.create(role=role, user=developer, scope=Binding.Scope.PROJECT, project=prod)
    assert not Binding.objects.filter(user=developer).exists()

    bound = Group.objects.create(name="team-a-devs")
    with gates.cleared():
        Binding.objects.create(role=role, group=bound, scope=Binding.Scope.PROJECT, project=prod)
    # Each in its own transaction, as a shell's autocommit is: Django's add() refuses inside its atomic block.
    with pytest.raises(gates.ChangeRefused), transaction.atomic():
        developer.groups.add(bound)
    with pytest.raises(gates.ChangeRefused), transaction.atomic():
        bound.user_set.add(developer)
    assert not bound.user_set.exists()
    developer.is_superuser = True
    with pytest.raises(gates.ChangeRefused):
        developer.save()
    assert not type(developer).objects.get(pk=developer.pk).is_superuser

    # The person holding break glass grants at once, with a reason; the security contact is told.
    responder = UserFactory()
    glass = Role.objects.create(slug="responder", name_en="r", name_zh="r", capabilities=[CHANGES_BREAK_GLASS])
    with gates.cleared():
        grant(responder, glass.slug)
    with django_capture_on_commit_callbacks(execute=True):
        binding = account_services.create_binding(
            actor=responder, role=role, user=developer, project=prod, break_glass="P1 incident 4711: payments down"
        )
    assert binding.pk
    cr = ChangeRequest.objects.get(status=ChangeRequest.Status.BREAK_GLASS)
    assert cr.maker == responder and cr.action == "roles.grant"
    told = mailbox.wait_for(lambda m: "security@bank.example" in m["To"])
    assert "WITHOUT APPROVAL" in Mailbox.text(told) and "P1 incident 4711" in Mailbox.text(told)


def test_django_admin_refuses_a_covered_grant_on_the_form(prod, admin_user, client):
    person = UserFactory(username="li.na")
    bound = Group.objects.create(name="team-a-owners")
    with gates.cleared():
        Binding.objects.create(
            role=Role.objects.get(slug="project-owner"), group=bound, scope=Binding.Scope.PROJECT, project=prod
        )
    login(client, admin_user, recent_auth=True)
    url = reverse("admin:auth_user_change", args=[person.pk])
    data = {
        "username": person.username,
        "is_active": "on",
        "is_superuser": "on",
        "date_joined_0": "2026-12-01",
        "date_joined_1": "09:00:00",
        "_save": "1",
    }
    page = client.post(url, data)
    assert page.status_code == 200 and "Production access" in page.content.decode()
    assert not type(person).objects.get(pk=person.pk).is_superuser

    page = client.post(url, {**data, "is_superuser": "", "groups": [bound.pk]})
    assert page.status_code == 200 and "Production access" in page.content.decode()
    assert not person.groups.exists()

    page = client.post(url, {**data, "is_superuser": "", "first_name": "Na"})
    assert page.status_code == 302  # what grants nothing is saved as before
    assert type(person).objects.get(pk=person.pk).first_name == "Na"


def test_a_revoked_grant_leaves_at_once_under_the_policy(prod, admin_user, sandbox, registered_cluster):
    with gates.cleared():
        binding = account_services.create_binding(
            actor=admin_user, role=Role.objects.get(slug="viewer"), user=UserFactory(), project=prod, approved=True
        )
    reconcile_rbac(registered_cluster)
    assert role_binding(sandbox, binding.k8s_name)
    account_services.delete_binding(actor=admin_user, binding=binding)
    reconcile_rbac(registered_cluster)
    with pytest.raises(ApiException) as gone:
        role_binding(sandbox, binding.k8s_name)
    assert gone.value.status == 404 and not ChangeRequest.objects.exists()


def test_namespaces_added_to_a_bound_project_wait_and_then_reach_the_cluster(
    prod, admin_user, checker, client, sandbox, registered_cluster
):
    developer = UserFactory()
    with gates.cleared():
        binding = account_services.create_binding(
            actor=admin_user, role=Role.objects.get(slug="developer"), user=developer, project=prod, approved=True
        )
    form = {"cluster": registered_cluster.pk, "slug": "team-a", "name": "Team A", "namespaces": "team-a, team-a-batch"}
    page = login(client, admin_user, recent_auth=True).post(
        reverse("accounts:project_edit", args=[prod.pk]), form, follow=True
    )

    cr = ChangeRequest.objects.get()
    assert cr.scope["namespaces"] == ["team-a-batch"] and cr.diff == "+ team-a-batch"
    assert f"change request #{cr.pk}" in page.content.decode()
    assert Project.objects.get(pk=prod.pk).namespaces == ["team-a"]
    # The same widening from a shell is refused before it is written.
    prod.namespaces = ["team-a", "team-a-batch"]
    with actors.acting_as(name="manage.py shell (ops)"), pytest.raises(gates.ChangeRefused):
        prod.save()
    approvals.approve(actor=checker, pk=cr.pk)
    assert Project.objects.get(pk=prod.pk).namespaces == ["team-a", "team-a-batch"]
    reconcile_rbac(registered_cluster)
    reached = k8s.RbacAuthorizationV1Api(sandbox.api_client).read_namespaced_role_binding(
        binding.k8s_name, "team-a-batch"
    )
    assert reached.subjects[0].name == f"kubemate-u{developer.pk}"

    # Renaming the project grants nothing: saved at once. A request made before it is stale: approving it would
    # undo the rename.
    with pytest.raises(gates.ApprovalRequired) as waiting:
        account_services.save_project(
            actor=admin_user,
            project=Project(**{**form, "cluster": registered_cluster, "namespaces": ["team-a", "team-b"]}, pk=prod.pk),
        )
    page = client.post(reverse("accounts:project_edit", args=[prod.pk]), {**form, "name": "A"})
    assert page.status_code == 302 and Project.objects.get(pk=prod.pk).name == "A"
    with pytest.raises(approvals.DecisionRefused, match="was edited since"):
        approvals.approve(actor=checker, pk=waiting.value.request_id)
    assert Project.objects.get(pk=prod.pk).namespaces == ["team-a", "team-a-batch"]
