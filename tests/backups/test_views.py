"""The backups pages (apps/backups/views.py, velero/views.py, runbook.py, platform/views.py): who sees which
cluster's plans, snapshots and Velero backups (a project's people their own namespaces only; missing and forbidden
answer 404), each plan's freshness against its recovery point objective with its size trend, the plan forms, the
etcd restore runbook, the platform's storage targets, etcd access, Velero namespaces and Kubemate's database plans;
a cluster that cannot be read shows a sentence, never a server error. The last tests run against the real Velero
server (tests/plugins/velero.py) and storage (tests/plugins/s3.py)."""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.accounts.models import Project
from apps.backups import runbook
from apps.backups.models import Backup, EtcdAccess, Kind, Plan, Restore, Target
from apps.core import crypto
from apps.core.models import AuditEvent, Job
from tests.backups.rows import backup_row
from tests.factories import PASSWORD, AdminFactory, ClusterFactory, UserFactory
from tests.helpers import grant, login, unique

pytestmark = pytest.mark.django_db

KEY = "AKIA-never-shown"
SECRET = "s3cret-never-shown"


@pytest.fixture
def place():
    """A cluster with Velero, its two projects, and people: a platform admin, the cluster's admin and viewer,
    a project's owner, developer and viewer, someone of another cluster, and someone with no capability."""
    cluster = ClusterFactory(name=unique("prod"), velero_namespace="velero")
    payments = Project.objects.create(cluster=cluster, slug=unique("pay"), name="Payments", namespaces=["payments"])
    lending = Project.objects.create(cluster=cluster, slug=unique("loan"), name="Lending", namespaces=["lending"])
    people = {"admin": AdminFactory()}
    for role in ("cluster-admin", "viewer"):
        people[f"cluster-{role}"] = UserFactory()
        grant(people[f"cluster-{role}"], role, cluster=cluster)
    for role in ("project-owner", "developer", "viewer"):
        people[role] = UserFactory()
        grant(people[role], role, project=payments)
    people["outsider"] = UserFactory()
    grant(people["outsider"], "cluster-admin", cluster=ClusterFactory(name=unique("dev")))
    people["nobody"] = UserFactory()
    return {"cluster": cluster, "payments": payments, "lending": lending, **people}


@pytest.fixture
def target():
    return Target.objects.create(
        name=unique("store"),
        endpoint="http://127.0.0.1:9",
        bucket="backups",
        prefix="kubemate/prod",
        access_key_encrypted=crypto.encrypt(KEY),
        secret_key_encrypted=crypto.encrypt(SECRET),
        used_bytes=5 * 1024 * 1024,
        object_count=12,
        last_checked_at=timezone.now(),
    )


def _plan(place, target, name="etcd-nightly", kind=Kind.ETCD, **fields) -> Plan:
    values = {"cron": "0 2 * * *", "rpo_hours": 24}
    if kind != Kind.VELERO:
        values["target"] = target
    if kind != Kind.DATABASE:
        values["cluster"] = place["cluster"]
    return Plan.objects.create(kind=kind, name=name, **{**values, **fields})


_backup = backup_row


def _get(client, user, view, *args, recent=False, **params):
    login(client, user, recent_auth=recent)
    return client.get(reverse(view, args=args), params)


def _rows(html: str, testid: str, attribute: str) -> dict[str, str]:
    """``data-<attribute>`` of each element with ``testid``, by the element's first data- name after the testid."""
    found = {}
    for tag in re.findall(rf'<tr data-testid="{testid}"[^>]*>', html):
        name = re.search(r'data-(?:plan|snapshot|backup|target|cluster|restore)="([^"]+)"', tag)
        value = re.search(rf'data-{attribute}="([^"]*)"', tag)
        if name and value:
            found[name.group(1)] = value.group(1)
    return found


# Who may open what ---------------------------------------------------------------------------------------------


def _every_url(place, target):
    cluster = place["cluster"].pk
    plan = _plan(place, target)
    return [
        ("backups:home", ()),
        ("backups:cluster", (cluster,)),
        ("backups:runbook", (cluster,)),
        ("backups:plan_create", (cluster,)),
        ("backups:cluster_velero", (cluster,)),
        ("backups:velero_restore", (cluster, "nightly")),
        ("backups:velero_backup_log", (cluster, "nightly")),
        ("backups:velero_restore_log", (cluster, "nightly")),
        ("backups:plan_edit", (plan.pk,)),
        ("backups:platform", ()),
        ("backups:target_create", ()),
        ("backups:target_edit", (target.pk,)),
        ("backups:etcd_access", (cluster,)),
        ("backups:database_plan_create", ()),
    ]


def test_anonymous_visitors_are_sent_to_sign_in(client, place, target):
    for view, args in _every_url(place, target):
        response = client.get(reverse(view, args=args))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), view


def test_people_without_a_backup_capability_there_get_404_everywhere(client, place, target):
    urls = _every_url(place, target)
    for who in ("nobody", "outsider"):
        login(client, place[who], recent_auth=True)
        answers = {view: client.get(reverse(view, args=args)) for view, args in urls}
        home = answers.pop("backups:home")
        # Someone who sees backups elsewhere has a home page, without this cluster on it.
        assert home.status_code == (200 if who == "outsider" else 404)
        assert place["cluster"].name not in home.content.decode()
        assert {view: r.status_code for view, r in answers.items()} == dict.fromkeys(answers, 404), who
    # The actions too, whatever the method, and nothing changes.
    plan = Plan.objects.get()
    posts = [
        ("backups:plan_run", (plan.pk,)),
        ("backups:plan_delete", (plan.pk,)),
        ("backups:target_delete", (target.pk,)),
        ("backups:target_check", (target.pk,)),
        ("backups:velero_namespace", (place["cluster"].pk,)),
        ("backups:velero_backup", (place["cluster"].pk,)),
    ]
    for view, args in posts:
        assert client.post(reverse(view, args=args), {"password": PASSWORD}).status_code == 404, view
    assert Plan.objects.count() == 1 and Target.objects.count() == 1 and not Backup.objects.exists()
    place["cluster"].refresh_from_db()
    assert place["cluster"].velero_namespace == "velero"


def test_the_platform_pages_are_for_backup_administrators_only(client, place, target):
    for who in ("cluster-cluster-admin", "project-owner"):
        for view, args in [
            ("backups:platform", ()),
            ("backups:target_create", ()),
            ("backups:target_edit", (target.pk,)),
            ("backups:etcd_access", (place["cluster"].pk,)),
            ("backups:database_plan_create", ()),
        ]:
            assert _get(client, place[who], view, *args).status_code == 404, (who, view)
    page = _get(client, place["admin"], "backups:platform").content.decode()
    assert f'data-target="{target.name}"' in page and 'data-testid="target-create"' in page
    assert "5.0\xa0MB" in page and "12 objects" in page
    assert KEY not in page and SECRET not in page


# Freshness ---------------------------------------------------------------------------------------------------------


def test_home_shows_each_plan_within_or_beyond_its_recovery_point_with_its_size_trend(client, place, target):
    fresh = _plan(place, target, "etcd-fresh")
    for hours, size in ((50, 900), (26, 950), (2, 1200)):
        _backup(fresh, hours, size=size)
    _backup(fresh, 1, status=Backup.Status.FAILED, size=None)
    stale = _plan(place, target, "etcd-stale", cron="")
    _backup(stale, 30)
    _plan(place, target, "etcd-never")
    database = _plan(place, target, "kubemate-nightly", kind=Kind.DATABASE, rpo_hours=12)
    _backup(database, 3)

    page = _get(client, place["admin"], "backups:home").content.decode()

    assert _rows(page, "plan-row", "state") == {
        "etcd-fresh": "fresh",
        "etcd-stale": "stale",
        "etcd-never": "none",
        "kubemate-nightly": "fresh",
    }
    assert 'data-testid="failed-since">1 failed after it' in page  # the failure after the last good backup
    assert 'data-points="3"' in page  # the sparkline of the three good sizes
    assert "At 02:00" in page and "by hand only" in page  # the schedule in words
    assert 'data-testid="cluster-stale">2 plans need attention' in page
    assert 'data-testid="targets-summary"' in page and 'data-testid="database-summary"' in page

    # The cluster's viewer sees the cluster's plans, not the platform's.
    viewer = _get(client, place["cluster-viewer"], "backups:home").content.decode()
    assert set(_rows(viewer, "plan-row", "state")) == {"etcd-fresh", "etcd-stale", "etcd-never"}
    assert 'data-testid="targets-summary"' not in viewer and "kubemate-nightly" not in viewer


def test_a_project_sees_the_velero_plans_of_its_namespaces_only_and_no_etcd(client, place, target):
    _plan(place, target, "etcd-nightly")
    _plan(place, target, "pay-nightly", kind=Kind.VELERO, namespaces=["payments"])
    _plan(place, target, "loan-nightly", kind=Kind.VELERO, namespaces=["lending"])
    _plan(place, target, "everything", kind=Kind.VELERO, namespaces=[])

    page = _get(client, place["viewer"], "backups:cluster", place["cluster"].pk).content.decode()

    # The cluster cannot be read (its credentials point nowhere): the Velero plan's freshness is unknown.
    assert _rows(page, "plan-row", "state") == {"pay-nightly": "unknown"}
    assert 'data-testid="etcd-section"' not in page and 'data-testid="runbook-link"' not in page
    assert 'data-testid="plan-run"' not in page and 'data-testid="plan-edit"' not in page  # a viewer
    admin = _get(client, place["cluster-cluster-admin"], "backups:cluster", place["cluster"].pk).content.decode()
    assert set(_rows(admin, "plan-row", "state")) == {"etcd-nightly", "pay-nightly", "loan-nightly", "everything"}
    assert admin.count('data-testid="plan-run"') == 4 and 'data-testid="etcd-section"' in admin


def test_the_list_pages_cost_the_same_queries_for_many_plans_and_backups(
    client, place, target, django_assert_max_num_queries
):
    def add(n):
        for i in range(n):
            plan = _plan(place, target, unique(f"etcd-{i}"))
            for hours in range(1, 6):
                _backup(plan, hours * 10)
            _backup(_plan(place, target, unique("db"), kind=Kind.DATABASE), 2)

    def counts():
        found = {}
        for view, args in (
            ("backups:home", ()),
            ("backups:cluster", (place["cluster"].pk,)),
            ("backups:platform", ()),
        ):
            admin = AdminFactory()
            login(client, admin)
            with CaptureQueriesContext(connection) as queries:
                assert client.get(reverse(view, args=args)).status_code == 200
            found[view] = len(queries)
        return found

    add(1)
    few = counts()
    add(6)
    many = counts()

    assert many == few
    login(client, place["admin"])
    with django_assert_max_num_queries(20):
        client.get(reverse("backups:home"))
    with django_assert_max_num_queries(20):
        client.get(reverse("backups:cluster", args=[place["cluster"].pk]))
    with django_assert_max_num_queries(20):
        client.get(reverse("backups:platform"))


# A cluster: etcd snapshots, the runbook -----------------------------------------------------------------------------


def test_the_cluster_page_lists_the_etcd_snapshots_with_their_facts(client, place, target):
    plan = _plan(place, target)
    good = _backup(plan, 2, size=3 * 1024 * 1024, revision=4242, total_keys=1234, sha256="ab12" * 16)
    failed = _backup(plan, 5, status=Backup.Status.FAILED, size=None, message="etcd refused the snapshot: timeout")
    removed = _backup(plan, 200, removed_at=timezone.now())

    page = _get(client, place["cluster-viewer"], "backups:cluster", place["cluster"].pk).content.decode()

    assert _rows(page, "snapshot-row", "status") == {
        good.name: "succeeded",
        failed.name: "failed",
        removed.name: "succeeded",
    }
    assert "4242" in page and "1234" in page and "3.0\xa0MB" in page
    assert 'title="' + "ab12" * 16 + '"' in page and ">ab12ab12ab12<" in page
    assert "etcd refused the snapshot: timeout" in page
    assert page.count('data-testid="snapshot-removed"') == 1
    assert 'data-testid="runbook-link"' in page
    assert 'data-testid="etcd-no-access"' in page  # no etcd access given yet
    assert 'data-testid="plan-new-etcd"' not in page  # a viewer does not schedule


def test_the_runbook_is_filled_in_with_the_cluster_endpoints_and_newest_good_snapshot(client, place, target):
    EtcdAccess.objects.create(
        cluster=place["cluster"], endpoints=["https://10.0.0.11:2379", "https://cp-2.bank.local:2379"]
    )
    plan = _plan(place, target)
    _backup(plan, 30, revision=1, sha256="0" * 64, key="old")
    newest = _backup(plan, 2, revision=777, total_keys=99, sha256="f" * 64, key="kubemate/prod/etcd/x.db.gz.sealed")
    _backup(plan, 1, status=Backup.Status.FAILED, revision=888, key="broken")

    page = _get(client, place["cluster-viewer"], "backups:runbook", place["cluster"].pk).content.decode()

    assert 'data-testid="runbook-key" translate="no">kubemate/prod/etcd/x.db.gz.sealed<' in page
    assert "f" * 64 in page and 'data-testid="runbook-revision">777<' in page
    assert f's3://backups/{newest.key}" {newest.name}.db.gz.sealed' in page
    assert f"manage.py open_backup {newest.name}.db.gz.sealed --out snapshot.db --as" in page
    assert "etcdutl snapshot status snapshot.db" in page and "revision 777, 99 keys" in page
    cluster_list = "etcd-1=https://10.0.0.11:2380,cp-2=https://cp-2.bank.local:2380"
    assert page.count(f"--initial-cluster {cluster_list}") == 2
    assert "--name etcd-1" in page and "--name cp-2" in page
    assert "--initial-advertise-peer-urls https://cp-2.bank.local:2380" in page
    assert page.count('data-testid="runbook-step"') == 7
    # A project's people do not see the cluster's etcd.
    assert _get(client, place["project-owner"], "backups:runbook", place["cluster"].pk).status_code == 404


def test_members_are_named_after_their_hosts():
    found = runbook.members_of(["https://etcd-a.bank.local:2379", "http://10.1.2.3:2379", "https://[fd00::1]:2379"])
    assert [(m.name, m.peer_url) for m in found] == [
        ("etcd-a", "https://etcd-a.bank.local:2380"),
        ("etcd-2", "http://10.1.2.3:2380"),
        ("etcd-3", "https://[fd00::1]:2380"),
    ]


# Plans -------------------------------------------------------------------------------------------------------------


def test_a_cluster_admin_schedules_an_etcd_plan_edits_it_and_deletes_it(client, place, target):
    admin = place["cluster-cluster-admin"]
    cluster = place["cluster"]
    url = reverse("backups:plan_create", args=[cluster.pk]) + "?kind=etcd"
    login(client, admin)
    assert 'data-testid="plan-form"' in client.get(url).content.decode()

    bad = client.post(url, {"name": "etcd-nightly", "target": target.pk, "cron": "every night", **_keep()})
    assert bad.status_code == 400 and "five fields" in bad.content.decode()
    saved = client.post(url, {"name": "etcd-nightly", "target": target.pk, "cron": "0 2 * * *", **_keep()})

    assert saved.status_code == 302 and saved["Location"] == reverse("backups:cluster", args=[cluster.pk])
    plan = Plan.objects.get(name="etcd-nightly")
    assert (plan.kind, plan.cluster, plan.target, plan.created_by) == (Kind.ETCD, cluster, target, admin)
    entry = PeriodicTask.objects.get(name=plan.beat_name)
    assert entry.crontab.hour == "2" and entry.enabled
    assert AuditEvent.objects.filter(action="backups.plan.create", object_name="etcd-nightly").exists()
    again = client.post(url, {"name": "etcd-nightly", "target": target.pk, "cron": "", **_keep()})
    assert again.status_code == 400 and "exists already" in again.content.decode()

    edit = reverse("backups:plan_edit", args=[plan.pk])
    assert 'data-testid="plan-name">etcd-nightly<' in client.get(edit).content.decode()
    changed = client.post(edit, {"name": "renamed", "target": target.pk, "cron": "30 3 * * *", **_keep(rpo_hours=6)})
    assert changed.status_code == 302
    plan.refresh_from_db()
    assert (plan.name, plan.cron, plan.rpo_hours) == ("etcd-nightly", "30 3 * * *", 6)

    deleted = client.post(reverse("backups:plan_delete", args=[plan.pk]))
    assert deleted.status_code == 302 and not Plan.objects.exists()
    assert not PeriodicTask.objects.filter(name=plan.beat_name).exists()


def _keep(**fields) -> dict:
    return {"enabled": "on", "keep_count": 7, "keep_days": 7, "rpo_hours": 24, **fields}


def test_people_who_may_not_schedule_or_run_get_404(client, place, target):
    plan = _plan(place, target)
    cluster = place["cluster"].pk
    for who in ("cluster-viewer", "developer", "project-owner"):  # a project's people: no etcd, no whole cluster
        login(client, place[who])
        assert client.get(reverse("backups:plan_create", args=[cluster]) + "?kind=etcd").status_code == 404, who
        assert client.get(reverse("backups:plan_edit", args=[plan.pk])).status_code == 404, who
        assert client.post(reverse("backups:plan_run", args=[plan.pk])).status_code == 404, who
        assert client.post(reverse("backups:plan_delete", args=[plan.pk])).status_code == 404, who
    # A project owner may schedule Velero backups of their own namespaces: the form offers only those.
    login(client, place["project-owner"])
    form = client.get(reverse("backups:plan_create", args=[cluster]) + "?kind=velero").content.decode()
    assert 'data-namespace="payments"' in form and 'data-namespace="lending"' not in form
    assert 'name="other_namespaces"' not in form and 'name="target"' not in form
    Plan.objects.get(pk=plan.pk)


def test_run_now_queues_a_backup_as_the_person_and_the_page_links_its_job(client, place, target):
    plan = _plan(place, target)
    login(client, place["cluster-cluster-admin"])

    response = client.post(reverse("backups:plan_run", args=[plan.pk]))

    backup = Backup.objects.get(plan=plan)
    assert backup.status == Backup.Status.RUNNING and backup.actor == place["cluster-cluster-admin"]
    assert response["Location"] == reverse("backups:cluster", args=[plan.cluster_id]) + f"?job={backup.job_id}"
    page = client.get(response["Location"]).content.decode()
    assert reverse("core:job_detail", args=[backup.job_id]) in page and 'data-testid="started-job"' in page
    # Someone else's job is not linked.
    login(client, place["cluster-viewer"])
    assert 'data-testid="started-job"' not in client.get(response["Location"]).content.decode()
    # A second run while the first runs is refused with a sentence.
    login(client, place["cluster-cluster-admin"])
    again = client.post(reverse("backups:plan_run", args=[plan.pk]), follow=True)
    assert "is running; wait for it to end" in again.content.decode() and Backup.objects.count() == 1


def test_database_plans_are_the_platforms_and_ask_for_the_password(client, place, target):
    admin = place["admin"]
    url = reverse("backups:database_plan_create")
    data = {"name": "kubemate-nightly", "target": target.pk, "cron": "15 1 * * *", **_keep()}

    login(client, admin, recent_auth=False)
    stale = client.post(url, data)
    assert stale.status_code == 302 and reverse("security:reauth") in stale["Location"] and not Plan.objects.exists()
    form = client.get(url).content.decode()
    assert "data-confirm-password" in form and 'name="namespaces"' not in form

    saved = client.post(url, {**data, "password": PASSWORD})
    assert saved["Location"] == reverse("backups:platform")
    plan = Plan.objects.get(kind=Kind.DATABASE)
    assert plan.cluster is None and plan.target == target
    platform = client.get(reverse("backups:platform")).content.decode()
    assert 'data-plan="kubemate-nightly"' in platform

    ran = client.post(reverse("backups:plan_run", args=[plan.pk]))
    backup = Backup.objects.get(plan=plan)
    assert ran["Location"] == reverse("backups:platform") + f"?job={backup.job_id}"
    assert Job.objects.get(pk=backup.job_id).actor == admin
    # A cluster administrator is not the platform's.
    login(client, place["cluster-cluster-admin"], recent_auth=True)
    assert client.post(reverse("backups:plan_run", args=[plan.pk])).status_code == 404


# Velero, when the cluster cannot be read ---------------------------------------------------------------------------


def test_velero_pages_say_the_cluster_cannot_be_read_never_a_server_error(client, place):
    cluster = place["cluster"].pk  # its credentials point nowhere
    login(client, place["project-owner"])

    part = client.get(reverse("backups:cluster_velero", args=[cluster]))
    restore = client.get(reverse("backups:velero_restore", args=[cluster, "nightly"]))
    log = client.get(reverse("backups:velero_backup_log", args=[cluster, "nightly"]))

    assert part.status_code == 200 and 'data-testid="velero-error"' in part.content.decode()
    # While the page follows a backup, a moment the cluster does not answer is said, and the page keeps asking.
    lists = client.get(reverse("backups:cluster_velero", args=[cluster]), {"part": "lists"}).content.decode()
    assert 'data-testid="velero-lists-error"' in lists and 'hx-trigger="every 3s"' in lists
    assert restore.status_code == 200 and 'data-testid="restore-error"' in restore.content.decode()
    assert log.status_code == 200 and 'data-testid="log-error"' in log.content.decode()
    page = client.get(reverse("backups:cluster", args=[cluster])).content.decode()
    assert reverse("backups:cluster_velero", args=[cluster]) in page  # loaded with htmx


def test_a_cluster_without_velero_says_what_to_do(client, place):
    other = ClusterFactory(name=unique("edge"))
    grant(place["cluster-viewer"], "viewer", cluster=other)
    login(client, place["cluster-viewer"])

    page = client.get(reverse("backups:cluster", args=[other.pk])).content.decode()

    assert 'data-testid="velero-not-set-up"' in page and "Velero is not set up for this cluster" in page
    assert client.get(reverse("backups:cluster_velero", args=[other.pk])).status_code == 404
    assert client.get(reverse("backups:velero_restore", args=[other.pk, "x"])).status_code == 404


# The platform ------------------------------------------------------------------------------------------------------


def test_a_target_that_does_not_answer_is_not_saved_and_keys_are_never_shown(client, place, target):
    login(client, place["admin"], recent_auth=True)
    data = {
        "name": "store-b",
        "endpoint": "http://127.0.0.1:1",
        "bucket": "b",
        "region": "us-east-1",
        "path_style": "on",
        "access_key": KEY,
        "secret_key": SECRET,
    }

    refused = client.post(reverse("backups:target_create"), data)

    assert refused.status_code == 400 and 'data-testid="form-error"' in refused.content.decode()
    assert KEY not in refused.content.decode() and SECRET not in refused.content.decode()
    assert not Target.objects.filter(name="store-b").exists()
    edit = client.get(reverse("backups:target_edit", args=[target.pk])).content.decode()
    assert KEY not in edit and SECRET not in edit and "leave empty to keep it" in edit
    missing = client.post(reverse("backups:target_create"), {**data, "access_key": ""})
    assert missing.status_code == 400 and not Target.objects.filter(name="store-b").exists()


def test_target_changes_ask_for_the_password_again(client, place, target):
    login(client, place["admin"], recent_auth=False)
    for view in ("backups:target_edit", "backups:target_delete"):
        stale = client.post(reverse(view, args=[target.pk]), {"name": "x"})
        assert stale.status_code == 302 and reverse("security:reauth") in stale["Location"], view
    Target.objects.get(pk=target.pk)
    page = client.get(reverse("backups:platform")).content.decode()
    assert "data-confirm-password" in page
    # A target still written to by a plan is not removed.
    _plan(place, target)
    kept = client.post(reverse("backups:target_delete", args=[target.pk]), {"password": PASSWORD}, follow=True)
    assert "move or delete them first" in kept.content.decode()
    Target.objects.get(pk=target.pk)


def test_check_now_records_why_a_target_does_not_answer(client, place, target):
    login(client, place["admin"])

    response = client.post(reverse("backups:target_check", args=[target.pk]), follow=True)

    target.refresh_from_db()
    assert target.last_error and target.last_checked_at is not None
    assert 'data-testid="target-error"' in response.content.decode()


def test_an_admin_names_velero_namespace_with_an_audit_event(client, place):
    other = ClusterFactory(name=unique("edge"))
    url = reverse("backups:velero_namespace", args=[other.pk])
    login(client, place["admin"], recent_auth=True)

    assert client.post(url, {"namespace": "Not A Name"}).status_code == 302
    other.refresh_from_db()
    assert other.velero_namespace == ""
    client.post(url, {"namespace": "velero"})

    other.refresh_from_db()
    assert other.velero_namespace == "velero"
    event = AuditEvent.objects.get(action="backups.velero_namespace.set", cluster=other.name)
    assert event.detail == {"before": "", "after": "velero"}
    login(client, place["cluster-cluster-admin"], recent_auth=True)
    assert client.post(url, {"namespace": ""}).status_code == 404


def test_etcd_access_needs_the_certificate_and_its_key_together_and_never_shows_the_key(client, place):
    cluster = place["cluster"]
    EtcdAccess.objects.create(
        cluster=cluster,
        endpoints=["https://10.0.0.11:2379"],
        cert_subject="CN=kube-apiserver-etcd-client",
        cert_expires_at=timezone.now() + timedelta(days=300),
        key_encrypted=crypto.encrypt("-----BEGIN PRIVATE KEY-----secret"),
        cert_encrypted=crypto.encrypt("-----BEGIN CERTIFICATE-----"),
    )
    url = reverse("backups:etcd_access", args=[cluster.pk])
    login(client, place["admin"], recent_auth=True)

    page = client.get(url).content.decode()
    assert "CN=kube-apiserver-etcd-client" in page and "https://10.0.0.11:2379" in page
    assert "BEGIN PRIVATE KEY-----secret" not in page and "BEGIN CERTIFICATE-----<" not in page
    lonely = EtcdAccess(cluster=ClusterFactory(name=unique("x")), endpoints=["https://10.0.0.12:2379"])
    lonely.save()
    alone = client.post(
        reverse("backups:etcd_access", args=[lonely.cluster.pk]),
        {"endpoints": "https://10.0.0.12:2379", "cert_pem": "-----BEGIN CERTIFICATE-----"},
    )
    assert alone.status_code == 400 and "together" in alone.content.decode()
    wrong = client.post(url, {"endpoints": "10.0.0.11:2379"})
    assert wrong.status_code == 400 and "is not an http:// or https:// address" in wrong.content.decode()


# Against the real storage, etcd and Velero ----------------------------------------------------------------------


@pytest.mark.sandbox
def test_an_admin_adds_a_target_that_answers_and_changes_it_keeping_the_keys(client, s3_server, s3_bucket):
    admin = AdminFactory()
    login(client, admin, recent_auth=True)
    data = {
        "name": "versitygw",
        "endpoint": s3_server.endpoint,
        "bucket": s3_bucket,
        "region": s3_server.region,
        "prefix": "kubemate/ui",
        "path_style": "on",
        "access_key": s3_server.access_key,
        "secret_key": s3_server.secret_key,
    }

    created = client.post(reverse("backups:target_create"), data)

    assert created.status_code == 302, created.content.decode()[:2000]
    target = Target.objects.get(name="versitygw")
    assert target.access_key() == s3_server.access_key and target.last_error == ""
    page = client.get(reverse("backups:platform")).content.decode()
    assert s3_server.secret_key not in page and 'data-testid="target-ok"' in page
    changed = client.post(
        reverse("backups:target_edit", args=[target.pk]), {**data, "access_key": "", "secret_key": "", "region": "r1"}
    )
    assert changed.status_code == 302
    target.refresh_from_db()
    assert target.region == "r1" and target.secret_key() == s3_server.secret_key
    assert list(
        AuditEvent.objects.filter(object_name="versitygw").order_by("seq").values_list("action", flat=True)
    ) == [
        "backups.target.create",
        "backups.target.update",
    ]
    checked = client.post(reverse("backups:target_check", args=[target.pk]), follow=True)
    assert "answered" in checked.content.decode()


@pytest.fixture
def velero_place(sandbox, registered_cluster, velero, admin_user):
    """The sandbox with Velero's namespace named, two namespaces with a ConfigMap each, a project owner of the
    first (with the RBAC projection in Velero's namespace), and a Completed backup of each namespace."""
    from kubernetes import client as k8s_client

    from apps.backups import tasks
    from apps.backups.services import set_velero_namespace
    from apps.backups.velero import services as velero_services
    from tests.helpers import bind, create_namespace

    set_velero_namespace(actor=admin_user, cluster=registered_cluster, namespace=velero.namespace)
    registered_cluster.refresh_from_db()
    mine, theirs = unique("bk-mine"), unique("bk-theirs")
    core = k8s_client.CoreV1Api(sandbox.api_client)
    for name in (mine, theirs):
        create_namespace(sandbox, name)
        core.create_namespaced_config_map(name, {"metadata": {"name": "settings"}, "data": {"mode": "live"}})
    owner = UserFactory()
    bind(admin_user, registered_cluster, owner, "project-owner", [mine])
    backups = {}
    for name in (mine, theirs):
        backup = velero_services.run_backup(
            actor=admin_user, cluster=registered_cluster, namespaces=[name], ttl_hours=24
        )
        tasks.follow_velero(str(backup.job_id), "backup", backup.pk)
        backup.refresh_from_db()
        assert backup.status == Backup.Status.SUCCEEDED, backup.message
        backups[name] = backup.name
    owner = type(owner).objects.get(pk=owner.pk)
    yield {"cluster": registered_cluster, "mine": mine, "theirs": theirs, "owner": owner, "backups": backups}
    from kubernetes.client.exceptions import ApiException

    from tests.helpers import delete_namespace

    for name in (mine, theirs):
        with contextlib.suppress(ApiException):
            delete_namespace(sandbox, name)


@pytest.mark.sandbox
def test_a_project_owner_sees_and_restores_only_the_backups_of_their_namespaces(client, sandbox, velero_place):
    from kubernetes import client as k8s_client

    from apps.backups import tasks

    cluster, owner = velero_place["cluster"], velero_place["owner"]
    mine, theirs = velero_place["backups"][velero_place["mine"]], velero_place["backups"][velero_place["theirs"]]
    login(client, owner)

    part = client.get(reverse("backups:cluster_velero", args=[cluster.pk])).content.decode()

    assert _rows(part, "velero-backup-row", "phase") == {mine: "Completed"}
    assert 'data-testid="velero-location" data-location="default"' in part
    assert f'data-namespace="{velero_place["mine"]}"' in part  # the back-up-now form offers their namespace
    assert f'data-namespace="{velero_place["theirs"]}"' not in part
    assert client.get(reverse("backups:velero_restore", args=[cluster.pk, theirs])).status_code == 404
    assert client.get(reverse("backups:velero_backup_log", args=[cluster.pk, theirs])).status_code == 404
    log = client.get(reverse("backups:velero_backup_log", args=[cluster.pk, mine])).content.decode()
    assert 'data-testid="velero-log-lines"' in log and "Backing up item" in log
    assert f"namespace={velero_place['mine']}" in log

    # Preview, then restore (the password asked again): the ConfigMap deleted since comes back.
    k8s_client.CoreV1Api(sandbox.api_client).delete_namespaced_config_map("settings", velero_place["mine"])
    url = reverse("backups:velero_restore", args=[cluster.pk, mine])
    shown = client.get(url, {"preview": "1", "namespace": velero_place["mine"]}).content.decode()
    assert f'data-kind="v1/ConfigMap" data-to="{velero_place["mine"]}/settings" data-exists="no"' in shown
    assert "data-confirm-password" in shown
    stale = client.post(url, {"namespace": velero_place["mine"]})
    assert stale.status_code == 302 and reverse("security:reauth") in stale["Location"]
    assert not Restore.objects.exists()
    started = client.post(url, {"namespace": velero_place["mine"], "password": PASSWORD})
    row = Restore.objects.get()
    assert started["Location"] == reverse("backups:cluster", args=[cluster.pk]) + f"?job={row.job_id}"
    assert row.actor == owner and row.preview["new"] >= 1
    tasks.follow_velero(str(row.job_id), "restore", row.pk)
    row.refresh_from_db()
    assert row.status == Restore.Status.SUCCEEDED, row.message
    restored = k8s_client.CoreV1Api(sandbox.api_client).read_namespaced_config_map("settings", velero_place["mine"])
    assert restored.data == {"mode": "live"}
    part = client.get(reverse("backups:cluster_velero", args=[cluster.pk])).content.decode()
    assert f'data-restore="{row.name}" data-phase="Completed"' in part
    assert "items restored" in part
