"""Four-eyes approval of production deploys against the sandbox: a developer's deploy becomes a change request, its
maker cannot approve it, another approver applies exactly what was recorded as the maker, a hand edit makes a
request stale, break glass applies at once and is mailed to the security contact, requests expire."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.capabilities import CHANGES_APPROVE, CHANGES_BREAK_GLASS
from apps.accounts.models import Role
from apps.compliance.approvals import services
from apps.compliance.models import ApprovalPolicy, ChangeRequest, ChangeWindow
from apps.core.models import AuditEvent
from apps.releases.models import Canary, Release
from tests.factories import UserFactory
from tests.helpers import grant, login
from tests.plugins.alertmanager import Mailbox
from tests.releases.helpers import NEW, OLD, form_data

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]
V3 = "registry.bank.example/payments-api:3.0.0"


@pytest.fixture
def prod(deployed, team):
    """The release's cluster labelled env=prod, and a policy asking approval for deploys and rollbacks there."""
    cluster = team["cluster"]
    cluster.labels = {"env": "prod"}
    cluster.save(update_fields=["labels"])
    ApprovalPolicy.objects.create(
        name="Production changes", cluster_labels={"env": "prod"}, actions=["releases.deploy", "releases.rollback"]
    )
    return deployed


def role_with(*codes: str, slug: str) -> Role:
    return Role.objects.create(slug=slug, name_en=slug, name_zh=slug, capabilities=list(codes))


@pytest.fixture
def approver():
    person = UserFactory(email="checker@bank.example")
    role = Role.objects.filter(slug="change-approver").first() or role_with(CHANGES_APPROVE, slug="change-approver")
    grant(person, role.slug)
    return person


def request_deploy(client, release: Release, image: str, **extra):
    data = form_data(
        project=release.project.pk, namespace=release.namespace, name=release.name, image=image, replicas_seen=2
    )
    return client.post(reverse("releases:release_edit", args=[release.pk]), {**data, **extra}, follow=True)


def live_deployment(apps_api, release: Release):
    return apps_api.read_namespaced_deployment(release.name, release.namespace)


def recorded(cr: ChangeRequest, kind: str) -> dict:
    return next(m for m in cr.manifests if m["kind"] == kind)


def test_a_production_deploy_waits_is_not_approved_by_its_maker_and_is_applied_as_approved(
    prod, team, client, apps_api, approver
):
    maker = team["user"]
    grant(maker, "change-approver")  # even an approver may not approve their own change
    response = request_deploy(client, prod, NEW, ticket="CHG-1042", reason="new fee schedule")

    cr = ChangeRequest.objects.get()
    assert cr.status == ChangeRequest.Status.PENDING and cr.maker == maker
    assert (cr.ticket, cr.reason) == ("CHG-1042", "new fee schedule")
    assert f"change request #{cr.pk}" in response.content.decode()
    assert live_deployment(apps_api, prod).spec.template.spec.containers[0].image == OLD  # nothing applied yet
    assert recorded(cr, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"] == NEW
    assert f"image: {NEW}" in cr.diff and f"image: {OLD}" in cr.diff
    assert AuditEvent.objects.filter(action="changes.request", actor_id=maker.pk).count() == 1

    own = login(client, maker, recent_auth=True).post(reverse("compliance:change_approve", args=[cr.pk]), follow=True)
    assert "another person must approve" in own.content.decode()
    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.PENDING

    login(client, approver, recent_auth=True).post(
        reverse("compliance:change_approve", args=[cr.pk]), {"comment": "CAB approved"}
    )

    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.APPLIED and cr.decided_by == approver and cr.comment == "CAB approved"
    live = live_deployment(apps_api, prod).spec.template.spec
    approved = recorded(cr, "Deployment")["spec"]["template"]["spec"]
    assert live.containers[0].image == approved["containers"][0]["image"] == NEW
    assert [p.container_port for p in live.containers[0].ports or []] == [
        p["containerPort"] for p in approved["containers"][0].get("ports", [])
    ]
    revision = prod.revisions.order_by("-number").first()
    assert revision.actor == maker and revision.spec["image"] == NEW  # applied as the maker
    assert AuditEvent.objects.get(action="changes.approve").actor_id == approver.pk
    assert AuditEvent.objects.filter(action="releases.release.deploy", actor_id=maker.pk).exists()


def test_a_request_made_stale_by_a_hand_edit_is_refused_at_approval_with_the_reason(
    prod, team, client, apps_api, approver
):
    login(client, team["user"])
    request_deploy(client, prod, V3)
    cr = ChangeRequest.objects.get()
    apps_api.patch_namespaced_deployment(
        prod.name, prod.namespace, {"spec": {"template": {"metadata": {"annotations": {"hotfix": "by-hand"}}}}}
    )

    response = login(client, approver, recent_auth=True).post(
        reverse("compliance:change_approve", args=[cr.pk]), follow=True
    )

    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.STALE
    assert "was changed in the cluster since the request" in response.content.decode()
    assert "changed in the cluster" in str(services.DecisionRefused(cr.outcome))
    assert live_deployment(apps_api, prod).spec.template.spec.containers[0].image == OLD
    failed = AuditEvent.objects.get(action="changes.approve")
    assert failed.result == AuditEvent.Result.FAILURE and "generation" in str(failed.detail["error"])


def test_a_change_outside_the_policy_is_applied_at_once(deployed, team, client, apps_api):
    ApprovalPolicy.objects.create(name="Production", cluster_labels={"env": "prod"}, actions=["releases.deploy"])
    login(client, team["user"])

    request_deploy(client, deployed, NEW)  # the cluster is not labelled env=prod

    assert not ChangeRequest.objects.exists()
    assert live_deployment(apps_api, deployed).spec.template.spec.containers[0].image == NEW


def test_break_glass_applies_at_once_audits_and_mails_the_security_contact(
    prod, team, client, apps_api, approver, mailbox, django_capture_on_commit_callbacks
):
    maker = team["user"]
    refused = request_deploy(login(client, maker), prod, NEW, break_glass="payments down, fix rolling out")
    assert "marked for emergencies" in refused.content.decode()
    assert live_deployment(apps_api, prod).spec.template.spec.containers[0].image == OLD
    assert AuditEvent.objects.get(action="changes.break_glass").result == AuditEvent.Result.DENIED

    grant(maker, role_with(CHANGES_BREAK_GLASS, slug="emergency").slug)
    with django_capture_on_commit_callbacks(execute=True):
        request_deploy(client, prod, NEW, break_glass="payments down, fix rolling out")

    assert live_deployment(apps_api, prod).spec.template.spec.containers[0].image == NEW
    cr = ChangeRequest.objects.get(status=ChangeRequest.Status.BREAK_GLASS)
    assert cr.reason == "payments down, fix rolling out" and cr.maker == maker
    loud = AuditEvent.objects.filter(action="changes.break_glass", result=AuditEvent.Result.SUCCESS).get()
    assert loud.actor_id == maker.pk and loud.reason == "payments down, fix rolling out"
    mail = mailbox.wait_for(lambda m: "security@bank.example" in m["To"])
    assert "BREAK GLASS" in mail["Subject"] and maker.username in mail["Subject"]
    assert "payments down, fix rolling out" in Mailbox.text(mail)


def test_approvers_are_mailed_and_the_maker_reads_the_rejection(
    prod, team, client, approver, mailbox, django_capture_on_commit_callbacks
):
    maker = team["user"]
    maker.email = "maker@bank.example"
    maker.save(update_fields=["email"])
    with django_capture_on_commit_callbacks(execute=True):
        request_deploy(login(client, maker), prod, NEW)
    cr = ChangeRequest.objects.get()
    asked = mailbox.wait_for(lambda m: m["To"] == "checker@bank.example")
    assert f"#{cr.pk}" in asked["Subject"] and reverse("compliance:change_detail", args=[cr.pk]) in Mailbox.text(asked)

    empty = login(client, approver).post(
        reverse("compliance:change_reject", args=[cr.pk]), {"comment": " "}, follow=True
    )
    assert "Say why" in empty.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("compliance:change_reject", args=[cr.pk]), {"comment": "not in the change window"})

    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.REJECTED
    told = mailbox.wait_for(lambda m: m["To"] == "maker@bank.example")
    assert "rejected" in told["Subject"] and "not in the change window" in Mailbox.text(told)


def test_requests_expire_and_an_expired_one_cannot_be_approved(prod, team, client, approver):
    request_deploy(login(client, team["user"]), prod, NEW)
    cr = ChangeRequest.objects.get()
    ChangeRequest.objects.filter(pk=cr.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert services.expire_due() == 1
    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.EXPIRED
    with pytest.raises(services.DecisionRefused, match="already decided"):
        services.approve(actor=approver, pk=cr.pk)
    assert AuditEvent.objects.filter(action="changes.expire").count() == 1


def test_an_approval_interrupted_halfway_does_not_stay_applying(prod, team, client):
    request_deploy(login(client, team["user"]), prod, NEW)
    ChangeRequest.objects.update(
        status=ChangeRequest.Status.APPLYING, decided_at=timezone.now() - timedelta(minutes=11)
    )

    services.expire_due()

    assert ChangeRequest.objects.get().status == ChangeRequest.Status.FAILED


def test_the_pages_show_what_waits_to_whom(prod, team, client, approver):
    request_deploy(login(client, team["user"]), prod, NEW)
    cr = ChangeRequest.objects.get()

    mine = client.get(reverse("compliance:change_list")).content.decode()
    assert f"#{cr.pk}" in mine and 'data-testid="changes-waiting"' not in mine
    page = client.get(reverse("compliance:change_detail", args=[cr.pk])).content.decode()
    assert 'data-testid="change-approve"' not in page and 'data-testid="change-cancel"' in page
    assert NEW in page  # exactly what is applied

    login(client, approver)
    dashboard = client.get(reverse("dashboard")).content.decode()
    assert 'data-testid="approvals-waiting"' in dashboard and f"#{cr.pk}" in dashboard
    detail = client.get(reverse("compliance:change_detail", args=[cr.pk])).content.decode()
    assert 'data-testid="change-approve"' in detail
    chinese = client.get(reverse("compliance:change_list"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "变更请求" in chinese

    outsider = login(client, UserFactory())
    assert outsider.get(reverse("compliance:change_detail", args=[cr.pk])).status_code == 404
    assert outsider.post(reverse("compliance:change_approve", args=[cr.pk])).status_code == 404


def test_the_maker_may_withdraw_a_waiting_request(prod, team, client):
    request_deploy(login(client, team["user"]), prod, NEW)
    cr = ChangeRequest.objects.get()

    client.post(reverse("compliance:change_cancel", args=[cr.pk]))

    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.CANCELLED
    assert AuditEvent.objects.get(action="changes.cancel").actor_id == team["user"].pk


# Change windows and freezes -------------------------------------------------------------------------------------


def freeze(**extra) -> ChangeWindow:
    now = timezone.now()
    return ChangeWindow.objects.create(
        name="Quarter-end freeze",
        kind=ChangeWindow.Kind.FREEZE,
        cluster_labels={"env": "prod"},
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=1),
        reason="quarter-end close",
        **extra,
    )


def weekly(name: str, start: time, end: time, days=(0, 1, 2, 3, 4, 5, 6)) -> ChangeWindow:
    return ChangeWindow.objects.create(
        name=name,
        kind=ChangeWindow.Kind.WINDOW,
        cluster_labels={"env": "prod"},
        weekdays=list(days),
        start_time=start,
        end_time=end,
        time_zone="Asia/Shanghai",
    )


def test_a_freeze_refuses_a_deploy_naming_the_next_window_and_break_glass_applies_it(
    prod, team, client, apps_api, mailbox, django_capture_on_commit_callbacks
):
    ApprovalPolicy.objects.all().delete()  # the freeze alone holds the change back
    freeze()
    weekly("Saturday night", time(22, 0), time(23, 59), days=(5,))
    maker = team["user"]

    refused = request_deploy(login(client, maker), prod, NEW)

    page = refused.content.decode()
    assert "Changes are frozen until" in page and "quarter-end close" in page
    assert "The next change window opens" in page and "22:00 Asia/Shanghai" in page
    assert live_deployment(apps_api, prod).spec.template.spec.containers[0].image == OLD
    assert AuditEvent.objects.get(action="changes.refused").result == AuditEvent.Result.DENIED

    grant(maker, role_with(CHANGES_BREAK_GLASS, slug="emergency").slug)
    with django_capture_on_commit_callbacks(execute=True):
        request_deploy(client, prod, NEW, break_glass="settlement batch stuck")

    assert live_deployment(apps_api, prod).spec.template.spec.containers[0].image == NEW
    loud = AuditEvent.objects.get(action="changes.break_glass", result=AuditEvent.Result.SUCCESS)
    assert "frozen" in str(loud.detail["window"]) and loud.reason == "settlement batch stuck"
    mail = mailbox.wait_for(lambda m: "security@bank.example" in m["To"])
    assert "BREAK GLASS" in mail["Subject"]


def test_outside_every_window_a_deploy_waits_for_the_next_and_inside_one_it_goes_on(prod, team, client, apps_api):
    ApprovalPolicy.objects.all().delete()
    shanghai = timezone.now().astimezone(ZoneInfo("Asia/Shanghai"))
    later = (shanghai + timedelta(hours=3)).time().replace(second=0, microsecond=0)
    closed = weekly("Later today", later, (shanghai + timedelta(hours=4)).time().replace(second=0, microsecond=0))

    refused = request_deploy(login(client, team["user"]), prod, NEW).content.decode()
    assert "outside the change windows" in refused and "Later today" in refused
    assert f"{later:%H:%M} Asia/Shanghai" in refused
    assert live_deployment(apps_api, prod).spec.template.spec.containers[0].image == OLD

    closed.delete()
    weekly("Now", (shanghai - timedelta(hours=1)).time(), (shanghai + timedelta(hours=1)).time())
    request_deploy(client, prod, NEW)
    assert live_deployment(apps_api, prod).spec.template.spec.containers[0].image == NEW


def test_an_approval_in_a_freeze_waits_and_the_request_stays_pending(prod, team, client, approver):
    request_deploy(login(client, team["user"]), prod, NEW)
    cr = ChangeRequest.objects.get()
    freeze()

    with pytest.raises(services.DecisionRefused, match="frozen"):
        services.approve(actor=approver, pk=cr.pk)

    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.PENDING


def test_the_next_opening_follows_the_window_time_zone_and_overnight_windows():
    from apps.compliance.approvals import windows

    night = ChangeWindow(
        name="night", weekdays=[4], start_time=time(22, 0), end_time=time(2, 0), time_zone="Asia/Shanghai"
    )
    friday_noon = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai, a Friday
    start, window = windows.next_opening([night], friday_noon)
    assert start == datetime(2026, 12, 4, 14, 0, tzinfo=UTC) and window is night
    assert windows.is_open([night], datetime(2026, 12, 4, 17, 30, tzinfo=UTC))  # Saturday 01:30 in Shanghai
    assert not windows.is_open([night], datetime(2026, 12, 4, 18, 30, tzinfo=UTC))


def test_policies_and_windows_are_made_from_the_console_audited_and_bad_input_is_a_sentence(client, admin_user):
    login(client, admin_user, recent_auth=True)
    bad = client.post(
        reverse("compliance:policy_create"), {"name": "p", "labels": "env prod", "actions": ["releases.deploy"]}
    )
    assert bad.status_code == 400 and "is not key=value" in bad.content.decode()
    client.post(
        reverse("compliance:policy_create"),
        {"name": "Production", "labels": "env=prod, zone=sh", "actions": ["releases.deploy"], "expiry_hours": 8},
    )
    policy = ApprovalPolicy.objects.get(name="Production")
    assert policy.cluster_labels == {"env": "prod", "zone": "sh"} and policy.expiry_hours == 8
    assert AuditEvent.objects.get(action="changes.policy.create").actor_id == admin_user.pk

    base = {"name": "w", "kind": "window", "time_zone": "Asia/Shanghai", "enabled": "on"}
    incomplete = client.post(reverse("compliance:window_create"), base)
    assert "needs its days and its hours" in incomplete.content.decode()
    zone = client.post(
        reverse("compliance:window_create"),
        {**base, "weekdays": [5], "start_time": "22:00", "end_time": "23:00", "time_zone": "Mars/Base"},
    )
    assert "is not a time zone" in zone.content.decode()
    backwards = client.post(
        reverse("compliance:window_create"),
        {**base, "kind": "freeze", "starts_at": "2026-12-30T00:00", "ends_at": "2026-12-29T00:00"},
    )
    assert "a later end" in backwards.content.decode()
    client.post(
        reverse("compliance:window_create"), {**base, "weekdays": [5, 6], "start_time": "22:00", "end_time": "02:00"}
    )
    window = ChangeWindow.objects.get(name="w")
    assert window.weekdays == [5, 6] and window.days_display == "Saturday, Sunday"
    assert AuditEvent.objects.get(action="changes.window.create").detail["weekdays"] == [5, 6]
    again = client.post(
        reverse("compliance:window_create"), {**base, "weekdays": [1], "start_time": "20:00", "end_time": "21:00"}
    )
    assert again.status_code == 400 and ChangeWindow.objects.filter(name="w").count() == 1  # a name is one window


# A YAML edit under approval ---------------------------------------------------------------------------------------


def yaml_of(client, cluster, kind: str, namespace: str, name: str) -> tuple[str, str, str]:
    url = reverse("clusters:resource_yaml_edit", args=[cluster.pk, kind, namespace, name])
    page = client.get(url)
    assert page.status_code == 200 and page.context.get("form") is not None
    form = page.context["form"]
    return url, form.initial["text"], form.initial["resource_version"]


def test_a_yaml_edit_in_production_waits_is_applied_as_recorded_and_goes_stale_after_a_hand_edit(
    prod, team, client, core_api, approver
):
    namespace, cluster = team["namespace"], team["cluster"]
    ApprovalPolicy.objects.update(actions=["yaml.edit"])
    core_api.create_namespaced_config_map(namespace, {"metadata": {"name": "fees"}, "data": {"rate": "0.1"}})
    login(client, team["user"], recent_auth=True)

    url, text, version = yaml_of(client, cluster, "configmap", namespace, "fees")
    edited = text.replace("0.1", "0.2")
    waiting = client.post(url, {"text": edited, "resource_version": version, "confirm": "1"})
    assert "change request #" in waiting.content.decode()
    assert core_api.read_namespaced_config_map("fees", namespace).data == {"rate": "0.1"}
    cr = ChangeRequest.objects.get(kind="ConfigMap")
    assert cr.manifests[0]["data"] == {"rate": "0.2"} and "+  rate: '0.2'" in cr.diff
    assert "0.2" not in cr.payload["sealed"]  # the text itself is kept sealed (it may hold a secret value)

    services.approve(actor=approver, pk=cr.pk)
    assert core_api.read_namespaced_config_map("fees", namespace).data == {"rate": "0.2"}

    url, text, version = yaml_of(client, cluster, "configmap", namespace, "fees")
    client.post(url, {"text": text.replace("0.2", "0.3"), "resource_version": version, "confirm": "1"})
    second = ChangeRequest.objects.filter(kind="ConfigMap").latest("created_at")
    core_api.patch_namespaced_config_map("fees", namespace, {"data": {"rate": "0.25"}})
    with pytest.raises(services.DecisionRefused, match="changed in the cluster"):
        services.approve(actor=approver, pk=second.pk)
    assert ChangeRequest.objects.get(pk=second.pk).status == ChangeRequest.Status.STALE
    assert core_api.read_namespaced_config_map("fees", namespace).data == {"rate": "0.25"}


def test_a_yaml_edit_links_to_its_request_and_break_glass_applies_it_at_once(
    prod, team, client, core_api, mailbox, django_capture_on_commit_callbacks
):
    namespace, cluster = team["namespace"], team["cluster"]
    ApprovalPolicy.objects.update(actions=["yaml.edit"])
    core_api.create_namespaced_config_map(namespace, {"metadata": {"name": "limits"}, "data": {"max": "10"}})
    login(client, team["user"], recent_auth=True)
    url, text, version = yaml_of(client, cluster, "configmap", namespace, "limits")
    waiting = client.post(url, {"text": text.replace("'10'", "'20'"), "resource_version": version, "confirm": "1"})
    cr = ChangeRequest.objects.get(kind="ConfigMap")
    assert reverse("compliance:change_detail", args=[cr.pk]) in waiting.content.decode()

    grant(team["user"], role_with(CHANGES_BREAK_GLASS, slug="emergency").slug)
    with django_capture_on_commit_callbacks(execute=True):
        applied = client.post(
            url,
            {
                "text": text.replace("'10'", "'30'"),
                "resource_version": version,
                "confirm": "1",
                "break_glass": "limit blocks settlement",
            },
        )
    assert applied.context["applied"] and core_api.read_namespaced_config_map("limits", namespace).data == {"max": "30"}
    glass = ChangeRequest.objects.get(status=ChangeRequest.Status.BREAK_GLASS)
    assert glass.reason == "limit blocks settlement" and glass.maker == team["user"]
    assert "limit blocks settlement" in Mailbox.text(mailbox.wait_for(lambda m: "security@bank.example" in m["To"]))


def test_removing_a_production_release_waits_and_the_approval_removes_it_as_the_maker(
    prod, team, client, apps_api, approver
):
    ApprovalPolicy.objects.update(actions=["releases.delete"])
    login(client, team["user"], recent_auth=True)

    waiting = client.post(reverse("releases:release_delete", args=[prod.pk]), follow=True)

    assert "change request #" in waiting.content.decode()
    assert live_deployment(apps_api, prod).metadata.name == prod.name  # still there
    cr = ChangeRequest.objects.get()
    assert {m["kind"] for m in cr.manifests} >= {"Deployment", "Service"}

    services.approve(actor=approver, pk=cr.pk)

    assert not Release.objects.filter(pk=prod.pk).exists()
    assert apps_api.list_namespaced_deployment(team["namespace"]).items == []
    removed = AuditEvent.objects.get(action="releases.release.delete")
    assert removed.actor_id == team["user"].pk and removed.result == AuditEvent.Result.SUCCESS


def test_promoting_a_canary_in_production_waits_and_the_approval_promotes_it(prod, team, client, apps_api, approver):
    ApprovalPolicy.objects.update(actions=["releases.promote"])
    login(client, team["user"], recent_auth=True)
    client.post(
        reverse("releases:canary_start", args=[prod.pk]), {"image": NEW, "replicas": 1, "mode": "weight", "weight": 10}
    )
    canary = Canary.objects.get(release=prod)

    waiting = client.post(reverse("releases:canary_promote", args=[prod.pk]), follow=True)

    assert "change request #" in waiting.content.decode()
    canary.refresh_from_db()
    assert canary.state == Canary.State.ACTIVE
    assert live_deployment(apps_api, prod).spec.template.spec.containers[0].image == OLD
    cr = ChangeRequest.objects.get(action="releases.promote")

    services.approve(actor=approver, pk=cr.pk)

    canary.refresh_from_db()
    assert canary.state == Canary.State.PROMOTED
    assert live_deployment(apps_api, prod).spec.template.spec.containers[0].image == NEW
    assert prod.revisions.order_by("-number").first().actor == team["user"]
