"""Access reviews against the sandbox: the quarter's report lists each grant with who granted it, since when, the last
sign-in and the last use of its rights; a revoked line's RoleBinding leaves the cluster; unreviewed grants expire
where the project says so; the report is mailed and kept."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from apps.accounts import services as account_services
from apps.accounts.models import Binding, Project, Role
from apps.accounts.reconcile import reconcile_rbac
from apps.compliance.models import AccessReview, AccessReviewItem, ReviewSettings
from apps.compliance.reviews import services
from apps.core import audit
from apps.core.models import AuditEvent
from kubemate.celery import app as celery_app
from tests.factories import UserFactory
from tests.helpers import login
from tests.plugins.alertmanager import Mailbox

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]


@pytest.fixture
def granted(registered_cluster, team_namespaces, admin_user):
    """Project Team A with a developer bound by the administrator, and a group of auditors (viewer)."""
    project = account_services.save_project(
        actor=admin_user,
        project=Project(cluster=registered_cluster, slug="team-a", name="Team A", namespaces=["team-a"]),
    )
    developer = UserFactory(username="wu.lei", last_login=timezone.now() - timedelta(days=3))
    binding = account_services.create_binding(
        actor=admin_user, role=Role.objects.get(slug="developer"), user=developer, project=project
    )
    auditors = Group.objects.create(name="team-a-auditors")
    auditors.user_set.add(UserFactory(username="he.min"))
    account_services.create_binding(
        actor=admin_user, role=Role.objects.get(slug="viewer"), group=auditors, project=project
    )
    reconcile_rbac(registered_cluster)
    audit.record(actor=developer, action="releases.release.deploy", cluster=registered_cluster.name, namespace="team-a")
    return {"project": project, "developer": developer, "binding": binding}


def role_binding(sandbox, name: str):
    return k8s.RbacAuthorizationV1Api(sandbox.api_client).read_namespaced_role_binding(name, "team-a")


def test_the_review_lists_each_grant_and_a_revoked_one_leaves_the_cluster(
    granted, admin_user, client, sandbox, registered_cluster
):
    review = services.start_review(granted["project"])
    line = review.items.get(subject="wu.lei")
    assert line.role == "Developer" and line.granted_by == admin_user.username
    assert line.granted_at is not None and line.last_login == granted["developer"].last_login
    assert "releases.deploy" in line.last_used and "workloads.view" not in line.last_used
    group_line = review.items.get(subject="@team-a-auditors")
    assert group_line.members == ["he.min"]
    name = granted["binding"].k8s_name
    assert role_binding(sandbox, name).subjects[0].name == f"kubemate-u{granted['developer'].pk}"

    page = login(client, admin_user, recent_auth=True).get(reverse("compliance:review_detail", args=[review.pk]))
    assert "wu.lei" in page.content.decode() and admin_user.username in page.content.decode()
    client.post(reverse("compliance:review_decide", args=[line.pk]), {"decision": "revoked", "reason": "left the team"})
    client.post(reverse("compliance:review_decide", args=[group_line.pk]), {"decision": "confirmed"})

    line.refresh_from_db()
    assert line.decision == AccessReviewItem.Decision.REVOKED and line.decided_by == admin_user
    assert not Binding.objects.filter(pk=granted["binding"].pk).exists()
    reconcile_rbac(registered_cluster)
    with pytest.raises(ApiException) as gone:
        role_binding(sandbox, name)
    assert gone.value.status == 404
    revoked = AuditEvent.objects.get(action="access_review.revoked")
    assert revoked.actor_id == admin_user.pk and revoked.reason == "left the team"
    assert AuditEvent.objects.filter(action="accounts.binding.delete", object_name=name).exists()
    assert AccessReviewItem.objects.get(pk=group_line.pk).decision == AccessReviewItem.Decision.CONFIRMED


def test_unreviewed_grants_expire_only_where_the_project_says_so(granted, registered_cluster):
    review = services.start_review(granted["project"])
    AccessReview.objects.filter(pk=review.pk).update(due_at=timezone.now() - timedelta(minutes=1))

    assert services.expire_due() == 0  # the default: nothing is removed without a person deciding
    assert Binding.objects.filter(pk=granted["binding"].pk).exists()
    assert AccessReview.objects.get(pk=review.pk).closed_at is not None
    assert not ReviewSettings.objects.filter(project=granted["project"]).exists()  # a report enrols nothing

    ReviewSettings.objects.create(project=granted["project"], expire_unreviewed=True)
    later = services.start_review(granted["project"], now=timezone.now() + timedelta(days=95))
    AccessReview.objects.filter(pk=later.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    assert services.expire_due() == 2
    assert not Binding.objects.filter(project=granted["project"]).exists()
    assert AuditEvent.objects.filter(action="access_review.expired", actor_name="access-review").count() == 2
    assert AuditEvent.objects.filter(action="accounts.binding.delete", actor_name="access-review").count() == 2


def test_a_project_reviewer_reviews_only_their_project_and_the_report_is_mailed(
    granted, client, settings, django_capture_on_commit_callbacks
):
    box = Mailbox()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", box.port, False
    celery_app.conf.task_always_eager = True
    try:
        reviewer = UserFactory(email="lead@bank.example")
        ReviewSettings.objects.create(project=granted["project"], reviewer=reviewer)
        with django_capture_on_commit_callbacks(execute=True):
            assert services.start_due() == 1
        mail = box.wait_for(lambda m: m["To"] == "lead@bank.example")
        assert "Team A" in mail["Subject"] and "wu.lei" in Mailbox.text(mail)
    finally:
        celery_app.conf.task_always_eager = False
        box.stop()
    review = AccessReview.objects.get()
    assert services.start_due() == 0  # once a quarter

    login(client, reviewer)
    assert client.get(reverse("compliance:review_detail", args=[review.pk])).status_code == 200
    client.post(
        reverse("compliance:review_decide", args=[review.items.get(subject="wu.lei").pk]), {"decision": "confirmed"}
    )
    assert AuditEvent.objects.get(action="access_review.confirmed").actor_id == reviewer.pk

    stranger = login(client, UserFactory())
    assert stranger.get(reverse("compliance:review_detail", args=[review.pk])).status_code == 404
    line = review.items.get(subject="@team-a-auditors")
    assert (
        stranger.post(reverse("compliance:review_decide", args=[line.pk]), {"decision": "revoked"}).status_code == 404
    )
    assert AccessReviewItem.objects.get(pk=line.pk).decision == AccessReviewItem.Decision.PENDING


def test_opening_the_review_settings_enrols_nothing(granted, admin_user, client):
    url = reverse("compliance:review_settings", args=[granted["project"].pk])
    page = login(client, admin_user, recent_auth=True).get(url)
    assert page.status_code == 200
    assert not ReviewSettings.objects.filter(project=granted["project"]).exists()
    assert services.start_due() == 0  # nothing enrolled: no quarterly report is made
