"""etcd snapshots of the sandbox's own etcd, through etcd's own client, to versitygw (S3), read back and checked
with ``etcdutl snapshot status``; retention by count; a storage target that stops mid-upload leaves a failed run
and no object listed as a good backup."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.backups import etcd, progress, runner, s3, seal, services
from apps.backups.models import Backup, Kind, Plan, Target
from apps.core.audit import AuditEvent, verify
from apps.core.deferred import Failure
from apps.core.models import Job
from tests.backups.rows import versitygw_target
from tests.factories import AdminFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def target(s3_server, s3_bucket, admin_user):
    return versitygw_target(admin_user, s3_server, s3_bucket)


@pytest.fixture
def etcd_plan(sandbox, registered_cluster, target, admin_user):
    services.save_etcd_access(actor=admin_user, cluster=registered_cluster, endpoints=[sandbox.etcd_url])
    plan = Plan(
        kind=Kind.ETCD,
        name="etcd-nightly",
        cluster=registered_cluster,
        target=target,
        keep_count=2,
        keep_days=7,
        rpo_hours=24,
    )
    return services.save_plan(actor=admin_user, plan=plan)


def test_a_snapshot_is_uploaded_and_its_downloaded_copy_has_the_revision_recorded(
    sandbox, etcd_plan, target, admin_user, tmp_path
):
    before = sandbox.etcd_revision()

    backup = services.take_backup_now(actor=admin_user, plan=etcd_plan)

    assert backup.status == Backup.Status.SUCCEEDED
    assert backup.revision >= before
    assert backup.total_keys > 0
    assert backup.key.startswith("kubemate/test/etcd/sandbox/")
    sealed = tmp_path / "snapshot.sealed"
    sha = s3.download(s3.access_for(target), backup.key, sealed, max_bytes=1 << 30)
    assert sha == backup.sha256
    assert sealed.stat().st_size == backup.size_bytes
    assert b"kubernetes.io" not in sealed.read_bytes()  # sealed: the keys of the objects are not readable
    opened = tmp_path / "snapshot.db"
    seal.open_sealed(sealed, opened, max_bytes=1 << 30)
    status = etcd.status(opened)
    assert status.revision == backup.revision
    assert status.hash == backup.etcd_hash
    assert status.total_keys == backup.total_keys
    actions = list(AuditEvent.objects.filter(object_name=backup.name).order_by("seq").values_list("action", flat=True))
    assert actions == ["backups.backup.start", "backups.backup.succeeded"]
    assert list(verify()) == []


def test_retention_deletes_the_oldest_beyond_the_count(etcd_plan, target, admin_user):
    taken = [services.take_backup_now(actor=admin_user, plan=etcd_plan) for _ in range(3)]

    oldest, middle, newest = (Backup.objects.get(pk=b.pk) for b in taken)
    assert oldest.removed_at is not None
    assert middle.removed_at is None and newest.removed_at is None
    keys = {o.key for o in s3.objects(s3.access_for(target), "kubemate/test/etcd/")}
    assert keys == {middle.key, newest.key}
    assert AuditEvent.objects.filter(action="backups.backup.expired", object_name=oldest.name).count() == 1


def test_the_storage_stopped_mid_upload_gives_a_failed_run_and_no_good_backup(
    s3_server, etcd_plan, target, admin_user, monkeypatch
):
    good = services.take_backup_now(actor=admin_user, plan=etcd_plan)
    real_progress = progress.upload_progress
    stopped = []

    def stop_after_the_first_bytes(job, start, end, total):
        report = real_progress(job, start, end, total)

        def progress(sent: int) -> None:
            report(sent)
            if sent > 0 and not stopped:
                stopped.append(sent)
                s3_server.stop()

        return progress

    monkeypatch.setattr(progress, "upload_progress", stop_after_the_first_bytes)
    monkeypatch.setattr(s3, "part_size", lambda: 5 * 1024 * 1024)
    try:
        with pytest.raises(Failure) as failed:
            services.take_backup_now(actor=admin_user, plan=etcd_plan)
    finally:
        if stopped:
            s3_server.start()

    assert stopped, "the upload never reported progress"
    backup = Backup.objects.exclude(pk=good.pk).get(plan=etcd_plan)
    assert backup.status == Backup.Status.FAILED
    assert "storage" in backup.message.lower() or "storage" in str(failed.value).lower()
    assert Job.objects.get(pk=backup.job_id).status == Job.Status.FAILED
    good_ones = Backup.objects.filter(plan=etcd_plan, status=Backup.Status.SUCCEEDED)
    assert list(good_ones) == [good]
    listed = {o.key for o in s3.objects(s3.access_for(target), "kubemate/test/etcd/")}
    assert listed == {good.key}
    assert backup.key not in listed


def test_a_person_without_the_capability_cannot_take_a_snapshot(etcd_plan, django_user_model):
    nobody = django_user_model.objects.create_user("nobody", password="x")
    with pytest.raises(services.Refused):
        services.take_backup_now(actor=nobody, plan=etcd_plan)
    assert not Backup.objects.filter(plan=etcd_plan).exists()


def test_etcd_that_cannot_be_reached_is_refused_on_save(registered_cluster, admin_user, settings):
    settings.KUBEMATE_BACKUP_ETCD_CHECK_SECONDS = 1  # etcdctl retries until then
    with pytest.raises(Failure):
        services.save_etcd_access(actor=admin_user, cluster=registered_cluster, endpoints=["http://127.0.0.1:9"])


def test_a_target_with_wrong_keys_is_refused_on_save(s3_server, s3_bucket):
    admin = AdminFactory()
    found = Target(name="wrong", endpoint=s3_server.endpoint, bucket=s3_bucket, region=s3_server.region)
    with pytest.raises(s3.StorageError) as refused:
        services.save_target(actor=admin, target=found, access_key=s3_server.access_key, secret_key="not-it")
    assert "key" in str(refused.value)
    assert not Target.objects.filter(name="wrong").exists()


def test_retention_by_age_keeps_the_newest_good_backup_whatever_its_age(etcd_plan, target, admin_user):
    first, second = (services.take_backup_now(actor=admin_user, plan=etcd_plan) for _ in range(2))
    long_ago = timezone.now() - timedelta(days=etcd_plan.keep_days + 1)
    Backup.objects.filter(pk__in=[first.pk, second.pk]).update(started_at=long_ago)
    Backup.objects.filter(pk=second.pk).update(started_at=long_ago + timedelta(minutes=1))

    removed = runner.apply_retention(etcd_plan)

    assert [b.pk for b in removed] == [first.pk]  # older than the plan's days; the newest good one stays
    assert Backup.objects.get(pk=second.pk).removed_at is None
    assert not s3.exists(s3.access_for(target), first.key)
    assert s3.exists(s3.access_for(target), second.key)


def test_a_schedule_starts_a_backup_as_the_person_who_set_it(etcd_plan, admin_user):
    assert PeriodicTask.objects.filter(name=etcd_plan.beat_name).count() == 0  # no cron: on demand only
    etcd_plan.cron = "15 2 * * *"
    services.save_plan(actor=admin_user, plan=etcd_plan)
    entry = PeriodicTask.objects.get(name=etcd_plan.beat_name)
    assert (entry.task, entry.crontab.minute, entry.crontab.hour) == ("backups.run_scheduled", "15", "2")

    backup = services.run_scheduled(etcd_plan.pk)

    assert backup.actor == admin_user
    assert Job.objects.get(pk=backup.job_id).actor == admin_user
    assert services.run_scheduled(etcd_plan.pk) is None  # one still running: the next tick starts none
    refused = AuditEvent.objects.filter(action="backups.backup.refused", object_name=etcd_plan.name)
    assert refused.count() == 1
