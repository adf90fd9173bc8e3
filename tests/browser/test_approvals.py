"""Four-eyes approval in the browser, in English and Chinese: a developer's production deploy waits as a change
request, an approver finds it on the dashboard, reads exactly what will be applied, approves it with their password,
and the cluster runs the new image; a role given in a production project waits the same way, and once approved its
RoleBinding reaches the cluster."""

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from kubernetes import client
from playwright.sync_api import expect

from apps.accounts.models import Binding, Project, Role
from apps.accounts.reconcile import reconcile_rbac
from apps.compliance.models import ApprovalPolicy, ChangeRequest
from apps.core.models import Job
from apps.releases import render
from apps.releases import services as releases
from tests.browser.conftest import SCREENSHOTS
from tests.factories import UserFactory
from tests.helpers import bind, confirm_dialog, create_namespace, delete_namespace, grant, sign_in_page, unique
from tests.releases.helpers import roll_out

pytestmark = [pytest.mark.browser, pytest.mark.sandbox, pytest.mark.django_db(transaction=True)]
OLD = "registry.bank.example/ledger:1.0.0"
NEW = "registry.bank.example/ledger:1.1.0"
WORDS = {
    "en": {"waits": "waits as change request", "applied": "Approved and applied", "card": "waits for your approval"},
    "zh-hans": {"waits": "作为变更请求", "applied": "已批准并执行", "card": "等待您审批"},
}


@pytest.fixture
def production(sandbox, registered_cluster, admin_user):
    """A release deployed in a project namespace of a cluster labelled env=prod, under an approval policy."""
    namespace = unique("ledger")
    create_namespace(sandbox, namespace)
    maker = UserFactory(username=unique("dev"))
    bind(admin_user, registered_cluster, maker, "project-owner", [namespace])
    project = Project.objects.get(namespaces__contains=[namespace])
    release = releases.create_release(
        actor=maker, project=project, namespace=namespace, name="ledger", spec={**render.default_spec(), "image": OLD}
    )
    assert roll_out(releases.deploy_release(actor=maker, release=release).revision).status == Job.Status.SUCCEEDED
    registered_cluster.labels = {"env": "prod"}
    registered_cluster.save(update_fields=["labels"])
    ApprovalPolicy.objects.create(name="Production", cluster_labels={"env": "prod"}, actions=["releases.deploy"])
    approver = UserFactory(username=unique("cab"))
    Role.objects.create(
        slug="change-approver", name_en="Change approver", name_zh="变更审批人", capabilities=["changes.approve"]
    )
    grant(approver, "change-approver")
    yield {"release": release, "maker": maker, "approver": approver, "namespace": namespace}
    delete_namespace(sandbox, namespace)


def in_language(page, live_server, language: str) -> None:
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}])


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_request_approve_and_see_the_change_applied(
    page, browser, live_server, screenshot, production, sandbox, language
):
    words = WORDS[language]
    release = production["release"]
    sign_in_page(page, production["maker"])
    in_language(page, live_server, language)

    page.goto(f"/releases/{release.pk}/edit/")
    page.fill("[data-testid=field-image]", NEW)
    page.fill("[data-testid=change-ticket]", "CHG-2077")
    page.click("[data-testid=release-form] button[type=submit]")
    confirm_dialog(page, reason="quarter-end fee tables")
    expect(page.locator(".alert").first).to_contain_text(words["waits"])
    cr = ChangeRequest.objects.get()
    assert (cr.ticket, cr.reason, cr.maker) == ("CHG-2077", "quarter-end fee tables", production["maker"])
    screenshot(f"approvals-requested-{language}")

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    checker = context.new_page()
    checker.set_default_timeout(15_000)
    sign_in_page(checker, production["approver"])
    in_language(checker, live_server, language)
    checker.goto("/")
    card = checker.locator("[data-testid=approvals-waiting]")
    expect(card).to_contain_text(words["card"])
    checker.screenshot(path=str(SCREENSHOTS / f"approvals-dashboard-{language}.png"))
    checker.goto("/compliance/changes/")
    expect(checker.locator("[data-testid=changes-waiting] [data-testid=change-row]")).to_have_count(1)
    checker.screenshot(path=str(SCREENSHOTS / f"approvals-list-{language}.png"), full_page=True)
    checker.goto("/")
    card.locator("[data-testid=approval-waiting]").first.click()
    expect(checker.locator("[data-testid=change-manifests]")).to_contain_text(f"image: {NEW}")
    expect(checker.locator("[data-testid=change-diff]")).to_contain_text(OLD)
    # The approver's view, as the bank's change board reads it.
    checker.screenshot(path=str(SCREENSHOTS / f"approvals-review-{language}.png"), full_page=True)
    checker.click("[data-testid=change-approve]")
    confirm_dialog(checker)  # signed in a moment ago: the password was just proven
    expect(checker.locator("[data-testid=change-status]")).to_have_text(words["applied"])
    context.close()

    live = client.AppsV1Api(sandbox.api_client).read_namespaced_deployment("ledger", production["namespace"])
    assert live.spec.template.spec.containers[0].image == NEW
    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.APPLIED and cr.decided_by == production["approver"]
    assert release.revisions.order_by("-number").first().actor == production["maker"]


GRANT_WORDS = {
    "en": {"waits": "waits as change request", "applied": "Approved and applied"},
    "zh-hans": {"waits": "作为变更请求", "applied": "已批准并执行"},
}


@pytest.fixture
def access_policy(sandbox, registered_cluster, admin_user):
    """A project on a cluster labelled env=prod, a policy asking approval for role grants there, an approver, and
    the person to be given a role."""
    namespace = unique("fx")
    create_namespace(sandbox, namespace)
    approver = UserFactory(username=unique("cab"))
    Role.objects.create(
        slug="change-approver", name_en="Change approver", name_zh="变更审批人", capabilities=["changes.approve"]
    )
    grant(approver, "change-approver")  # before the policy: afterwards it would be a grant to approve
    project = Project.objects.create(cluster=registered_cluster, slug=unique("fx"), name="FX", namespaces=[namespace])
    registered_cluster.labels = {"env": "prod"}
    registered_cluster.save(update_fields=["labels"])
    ApprovalPolicy.objects.create(name="Production access", cluster_labels={"env": "prod"}, actions=["roles.grant"])
    newcomer = UserFactory(username=unique("newcomer"))
    yield {"project": project, "approver": approver, "newcomer": newcomer, "namespace": namespace}
    delete_namespace(sandbox, namespace)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_role_grant_is_requested_approved_and_reaches_the_cluster(
    page, browser, live_server, access_policy, admin_user, sandbox, registered_cluster, language
):
    words = GRANT_WORDS[language]
    project, newcomer = access_policy["project"], access_policy["newcomer"]
    sign_in_page(page, admin_user)
    in_language(page, live_server, language)

    page.goto(f"/accounts/projects/{project.pk}/")
    expect(page.locator("[data-testid=change-record]")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / f"approvals-grant-form-{language}.png"), full_page=True)
    page.select_option("#id_role", str(Role.objects.get(slug="developer").pk))
    page.select_option("#id_user", str(newcomer.pk))
    page.fill("[data-testid=change-ticket]", "ACC-311")
    page.fill("[data-testid=change-reason]", "joins the FX desk")
    page.click("[data-testid=binding-add]")
    expect(page.locator(".alert").first).to_contain_text(words["waits"])
    expect(page.locator("[data-testid=change-manifests]")).to_contain_text("releases.deploy")
    cr = ChangeRequest.objects.get()
    assert (cr.action, cr.ticket, cr.reason, cr.maker) == ("roles.grant", "ACC-311", "joins the FX desk", admin_user)
    assert not Binding.objects.filter(user=newcomer).exists()
    page.screenshot(path=str(SCREENSHOTS / f"approvals-grant-requested-{language}.png"), full_page=True)

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    checker = context.new_page()
    checker.set_default_timeout(15_000)
    sign_in_page(checker, access_policy["approver"])
    in_language(checker, live_server, language)
    checker.goto(f"/compliance/changes/{cr.pk}/")
    expect(checker.locator("[data-testid=change-manifests]")).to_contain_text(newcomer.username)
    checker.click("[data-testid=change-approve]")
    confirm_dialog(checker)
    expect(checker.locator("[data-testid=change-status]")).to_have_text(words["applied"])
    checker.screenshot(path=str(SCREENSHOTS / f"approvals-grant-approved-{language}.png"), full_page=True)
    context.close()

    binding = Binding.objects.get(user=newcomer, project=project)
    page.goto(f"/accounts/projects/{project.pk}/")
    expect(page.locator("body")).to_contain_text(newcomer.username)
    # The other forms that give rights carry the same change ticket and emergency fields.
    group = Group.objects.create(name=unique("fx-oncall"))
    for name, url in (
        ("role", f"/accounts/roles/{Role.objects.get(slug='change-approver').pk}/"),
        ("group", f"/accounts/groups/{group.pk}/"),
        ("bindings", "/accounts/bindings/"),
        ("project", f"/accounts/projects/{project.pk}/edit/"),
    ):
        page.goto(url)
        expect(page.locator("[data-testid=change-record]")).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / f"approvals-grant-{name}-form-{language}.png"), full_page=True)
    reconcile_rbac(registered_cluster)
    live = client.RbacAuthorizationV1Api(sandbox.api_client).read_namespaced_role_binding(
        binding.k8s_name, access_policy["namespace"]
    )
    assert live.subjects[0].name == f"kubemate-u{newcomer.pk}"
