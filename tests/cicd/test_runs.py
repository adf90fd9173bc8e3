"""Runs without a cluster: the project's queue (runs at once), cancel, the pages (pipelines, a pipeline with its
history and trends, a run, the scan report, the artefacts), uploads refused with a sentence, the pipeline form, and
the retention of run files. Builds and scans are real (crane, osv-scanner, the registry); nothing is deployed."""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Project
from apps.cicd import runner, services, storage, tasks
from apps.cicd.models import Artifact, Pipeline, Registry, Run, VulnDatabase
from apps.core.deferred import render as R
from apps.core.jobs import JobCancelled, JobRecorder
from apps.core.models import AuditEvent, Job
from tests.factories import AdminFactory, ClusterFactory, UserFactory
from tests.helpers import grant, unique
from tests.plugins.registry import cicd_samples

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_storage(settings, tmp_path):
    settings.KUBEMATE_CICD_STORAGE = tmp_path / "cicd"


@pytest.fixture
def office(oci_registry, tmp_path):
    """A project of a cluster never called, a developer, the registry with an approved base, the sample database."""
    samples = cicd_samples()
    cluster = ClusterFactory(name=unique("prod"))
    project = Project.objects.create(cluster=cluster, slug=unique("pay"), name="Payments", namespaces=["payments"])
    developer, viewer, outsider, admin = UserFactory(), UserFactory(), UserFactory(), AdminFactory()
    grant(developer, "developer", project=project)
    grant(viewer, "viewer", project=project)
    registry = Registry.objects.create(name=unique("reg"), host=oci_registry.host, insecure=True, cluster=cluster)
    ref = oci_registry.ref(f"base/{unique('jre')}", "17")
    samples.push_base_image(str(oci_registry.crane_path), ref, folder=tmp_path / "base")
    base = services.approve_base(actor=developer, project=project, name="JRE 17", reference=ref, registry=registry)
    folder = unique("db")
    samples.build_osv_db(storage.root() / "vulndb" / folder)
    VulnDatabase.objects.create(
        data_date=timezone.now(),
        filename="s.zip",
        sha256="0" * 64,
        size=1,
        folder=folder,
        ecosystems={"Maven": 1, "Debian": 1},
    )
    pipeline = services.save_pipeline(
        actor=developer,
        pipeline=Pipeline(
            project=project,
            namespace="payments",
            name=unique("orders"),
            base_image=base,
            registry=registry,
            repository=f"pay/{unique('orders')}",
            deploy_mode=Pipeline.DeployMode.NONE,
        ),
    )
    jar = samples.build_sample_jar(tmp_path / "orders.jar")
    upload = services.add_upload(actor=developer, pipeline=pipeline, filename="orders.jar", chunks=[jar.read_bytes()])
    return {
        "registry_crane": oci_registry.crane_path,
        "project": project,
        "developer": developer,
        "viewer": viewer,
        "outsider": outsider,
        "admin": admin,
        "pipeline": pipeline,
        "upload": upload,
        "samples": samples,
        "registry": registry,
    }


def execute(run: Run) -> Run:
    run.refresh_from_db()
    tasks.execute_run(str(run.job_id), run.pk)
    run.refresh_from_db()
    return run


def test_the_project_runs_as_many_at_once_as_its_policy_says_and_queues_the_rest(
    office, django_capture_on_commit_callbacks
):
    services.save_policy(
        actor=office["admin"],
        project=office["project"],
        block_on="none",
        max_concurrent_runs=1,
        keep_days=30,
        keep_runs=10,
    )
    with django_capture_on_commit_callbacks(execute=True):
        first = services.start_run(actor=office["developer"], pipeline=office["pipeline"])
    with django_capture_on_commit_callbacks(execute=True):
        second = services.start_run(actor=office["developer"], pipeline=office["pipeline"])
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.number, second.number) == (1, 2)
    assert first.status == Run.Status.RUNNING and first.job_id
    assert second.status == Run.Status.QUEUED and second.job_id is None
    assert services.dispatch(office["project"].pk) == [], "no free slot while the first runs"

    assert execute(first).status == Run.Status.SUCCEEDED, first.message
    services.dispatch(office["project"].pk)
    second.refresh_from_db()
    assert second.status == Run.Status.RUNNING and second.job_id
    assert execute(second).status == Run.Status.SUCCEEDED
    # The same upload built twice: two images (each labelled with its run), each under its own tag.
    assert first.image != second.image and first.digest != second.digest
    assert office["samples"].crane_run(str(office["registry_crane"]), "digest", second.image) == second.digest


def test_a_queued_run_is_cancelled_at_once_and_a_running_one_at_its_next_step(
    office, django_capture_on_commit_callbacks
):
    services.save_policy(
        actor=office["admin"],
        project=office["project"],
        block_on="none",
        max_concurrent_runs=1,
        keep_days=30,
        keep_runs=10,
    )
    with django_capture_on_commit_callbacks(execute=True):
        waiting = services.start_run(actor=office["developer"], pipeline=office["pipeline"])
        queued = services.start_run(actor=office["developer"], pipeline=office["pipeline"])
    services.cancel_run(actor=office["developer"], run=queued)
    queued.refresh_from_db()
    assert queued.status == Run.Status.CANCELLED and queued.job_id is None
    assert set(queued.stages.values_list("status", flat=True)) == {"cancelled", "skipped"}  # skipped: no deploy

    # Its job queued but not taken by a worker yet: the job and the run end at once, nothing will run.
    waiting.refresh_from_db()
    services.cancel_run(actor=office["developer"], run=waiting)
    waiting.refresh_from_db()
    assert waiting.status == Run.Status.CANCELLED and Job.objects.get(pk=waiting.job_id).status == "cancelled"
    assert execute(waiting).status == Run.Status.CANCELLED, "a late delivery of its message runs nothing"

    # Running: the cancel is asked for, and the run stops at its next step, the stage marked cancelled.
    with django_capture_on_commit_callbacks(execute=True):
        running = services.start_run(actor=office["developer"], pipeline=office["pipeline"])
    running.refresh_from_db()
    job = Job.objects.get(pk=running.job_id)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)  # as a worker's claim leaves it
    services.cancel_run(actor=office["developer"], run=running)
    job.refresh_from_db()
    assert job.cancel_requested_at is not None and job.status == Job.Status.RUNNING
    with pytest.raises(JobCancelled):
        runner.execute(running.pk, JobRecorder(job))
    assert tasks._cancelled(job)  # what JobTask does with the cancel: the task's own words
    running.refresh_from_db()
    assert running.status == Run.Status.CANCELLED and "Cancelled by" in R(running.message)
    assert dict(running.stages.values_list("key", "status"))["source"] == "cancelled"
    assert AuditEvent.objects.filter(action="cicd.run.cancel").count() == 3
    with pytest.raises(services.Refused):
        services.cancel_run(actor=office["viewer"], run=running)


def test_pages_show_pipelines_runs_stages_and_the_scan_report(office, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = services.start_run(actor=office["developer"], pipeline=office["pipeline"])
    run = execute(run)
    assert run.status == Run.Status.BLOCKED  # the default policy blocks on high and critical
    pipeline = office["pipeline"]

    client.force_login(office["viewer"])
    home = client.get(reverse("cicd:home")).content.decode()
    assert pipeline.name in home and 'data-status="blocked"' in home
    assert 'data-testid="pipeline-new"' not in home  # viewers do not create pipelines
    detail = client.get(reverse("cicd:pipeline_detail", args=[pipeline.pk])).content.decode()
    assert 'data-run="1"' in detail and 'data-testid="trend-bar"' in detail
    assert 'data-testid="upload-form"' not in detail  # nor run them
    page = client.get(reverse("cicd:run_detail", args=[run.pk])).content.decode()
    assert 'data-stage="scan" data-status="failed"' in page and 'data-stage="push" data-status="skipped"' in page
    assert "Blocked by the project" in page
    scan = client.get(reverse("cicd:run_scan", args=[run.pk])).content.decode()
    samples = office["samples"]
    assert f'data-vuln="{samples.SAMPLE_MAVEN_ID}" data-severity="critical" data-blocking="yes"' in scan
    assert "2.17.1" in scan and "CVE-2021-44228" in scan
    assert 'data-testid="finding-except"' not in scan  # viewers grant no exceptions
    sbom = client.get(reverse("cicd:run_artifact", args=[run.pk, "sbom"]))
    assert sbom.status_code == 200
    bom = json.loads(b"".join(sbom.streaming_content))
    purls = {c["purl"] for c in bom["components"]}
    assert "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1" in purls
    assert any(p.startswith("pkg:deb/debian/openssl@") for p in purls), "the Debian packages are in the SBOM"
    assert AuditEvent.objects.filter(action="cicd.artifact.download", actor_id=office["viewer"].pk).exists()

    client.force_login(office["outsider"])
    for name, args in (
        ("cicd:pipeline_detail", [pipeline.pk]),
        ("cicd:run_detail", [run.pk]),
        ("cicd:run_scan", [run.pk]),
        ("cicd:run_artifact", [run.pk, "scan"]),
    ):
        assert client.get(reverse(name, args=args)).status_code == 404, name
    client.force_login(office["developer"])
    scan = client.get(reverse("cicd:run_scan", args=[run.pk])).content.decode()
    assert 'data-testid="finding-except"' not in scan  # developers do not hold cicd.exceptions either
    owner = UserFactory()
    grant(owner, "project-owner", project=office["project"])
    client.force_login(owner)
    assert 'data-testid="finding-except"' in client.get(reverse("cicd:run_scan", args=[run.pk])).content.decode()


def test_an_upload_that_is_not_a_java_archive_is_refused_with_a_sentence(office, client, settings, tmp_path):
    client.force_login(office["developer"])
    url = reverse("cicd:pipeline_upload", args=[office["pipeline"].pk])
    zipped = tmp_path / "notes.jar"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("notes.txt", "hello")
    for name, data in (("bad.jar", b"not a zip at all"), ("notes.jar", zipped.read_bytes())):
        (tmp_path / name).write_bytes(data)
        with (tmp_path / name).open("rb") as f:
            response = client.post(url, {"archive": f}, follow=True)
        assert response.status_code == 200
        assert "jar" in response.content.decode() and "not" in response.content.decode()
    settings.KUBEMATE_CICD_MAX_UPLOAD = 1024
    with (tmp_path / "bad.jar").open("wb") as f:
        f.write(b"x" * 4096)
    with (tmp_path / "bad.jar").open("rb") as f:
        response = client.post(url, {"archive": f}, follow=True)
    assert "larger than" in response.content.decode()
    assert office["pipeline"].uploads.count() == 1, "only the fixture's upload is kept"
    assert not list((storage.root() / "uploads").glob(".incoming-*")), "no half file left"


def test_the_pipeline_form_creates_a_pipeline_and_refuses_a_bad_repository(office, client, settings):
    client.force_login(office["developer"])
    base = office["pipeline"].base_image
    data = {
        "project": office["project"].pk,
        "namespace": "payments",
        "name": "billing",
        "kind": "jar",
        "base_image": base.pk,
        "template": "java-jar",
        "jvm_options": "-Xmx512m",
        "env": "TZ=Asia/Shanghai",
        "registry": office["registry"].pk,
        "repository": "pay/billing",
        "deploy_mode": "direct",
        "port": 8080,
        "canary_weight": 10,
        "schedule": "0 2 * * 1-5",
    }
    response = client.post(reverse("cicd:pipeline_create"), data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    created = Pipeline.objects.get(name="billing")
    assert created.env == [{"name": "TZ", "value": "Asia/Shanghai"}] and created.schedule_owner == office["developer"]
    from django_celery_beat.models import PeriodicTask

    entry = PeriodicTask.objects.get(name=f"cicd pipeline {created.pk}")
    assert entry.task == "cicd.run_scheduled" and json.loads(entry.args) == [created.pk]
    assert entry.crontab.minute == "0" and entry.crontab.day_of_week == "1-5"
    bad = client.post(reverse("cicd:pipeline_create"), {**data, "name": "Bad Name!", "repository": "Pay Billing"})
    assert bad.status_code == 200 and not Pipeline.objects.filter(name="Bad Name!").exists()
    settings.KUBEMATE_CICD_LOCAL_GIT = False  # as in production: no repository on the console's own disk
    repo = client.post(
        reverse("cicd:pipeline_create"), {**data, "name": "web", "kind": "repository", "git_url": "file:///etc"}
    )
    assert repo.status_code == 200 and "not allowed" in repo.content.decode()
    assert not Pipeline.objects.filter(name="web").exists()


def test_retention_removes_old_run_files_and_keeps_the_rows(office, django_capture_on_commit_callbacks):
    services.save_policy(
        actor=office["admin"],
        project=office["project"],
        block_on="none",
        max_concurrent_runs=2,
        keep_days=7,
        keep_runs=1,
    )
    runs = []
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            run = services.start_run(actor=office["developer"], pipeline=office["pipeline"])
        runs.append(execute(run))
    old, new = runs
    Run.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=8))
    files = {a.kind: storage.resolve(a.path) for a in old.artifacts.exclude(path="")}
    assert files and all(path.exists() for path in files.values())
    removed = services.prune()
    assert removed["runs"] == 1
    assert not any(path.exists() for path in files.values())
    assert Run.objects.filter(pk=old.pk).exists(), "the history stays"
    assert all(a.removed_at for a in Artifact.objects.filter(run=old).exclude(kind="image"))
    assert all(a.removed_at is None for a in Artifact.objects.filter(run=new))


def test_a_body_larger_than_any_upload_is_refused_before_it_is_read(office, client, settings, tmp_path):
    settings.KUBEMATE_MAX_REQUEST_BODY = 4096
    client.force_login(office["developer"])
    big = tmp_path / "big.jar"
    big.write_bytes(b"x" * 8192)
    with big.open("rb") as f:
        response = client.post(reverse("cicd:pipeline_upload", args=[office["pipeline"].pk]), {"archive": f})
    assert response.status_code == 413
    assert office["pipeline"].uploads.count() == 1 and office["pipeline"].runs.count() == 0


def test_a_flood_of_forged_webhooks_is_refused_without_flooding_the_audit_log(office, client):
    pipeline = office["pipeline"]
    url = reverse("cicd:webhook", args=[pipeline.pk])
    answers = {
        client.post(
            url, b"{}", content_type="application/json", HTTP_X_HUB_SIGNATURE_256="sha256=" + "0" * 64
        ).status_code
        for _ in range(30)
    }
    assert answers == {403}
    assert AuditEvent.objects.filter(action="cicd.webhook.refused", object_name=pipeline.name).count() == (
        services.WEBHOOK_REFUSALS_AUDITED
    )
