"""A pipeline run whose worker is killed during the build stage (issue 16): the run ends failed within the heartbeat
timeout plus one reaper pass, its reason names the stage, the stages after it are skipped and the project's slot is
free again; a re-run of the same upload succeeds. A real Celery worker process runs the job, as in production."""

from __future__ import annotations

import os
import time
import zipfile

import pytest

from apps.cicd import services, tasks
from apps.cicd.models import Run, Stage
from apps.core.deferred import render as R
from apps.core.jobs import reap_orphaned_jobs
from tests.faults.test_worker_death import kill, why_not, workers  # noqa: F401 (the fixture)
from tests.helpers import wait_for

pytestmark = [pytest.mark.sandbox, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
TIMEOUT = 5
PAYLOAD = 96 * 1024 * 1024  # incompressible: the build stage takes seconds, long enough to be caught in it


def big_jar(samples, path):
    """The sample jar with a large incompressible resource, as old monoliths' fat jars are."""
    small = samples.build_sample_jar(path.with_name("small.jar"))
    with zipfile.ZipFile(small) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr(zipfile.ZipInfo("BOOT-INF/classes/static/assets.bin"), os.urandom(PAYLOAD))
    return path


def test_a_run_whose_worker_dies_in_the_build_stage_ends_failed_and_a_rerun_succeeds(
    team,
    jar_pipeline,
    vulndb,
    samples,
    tmp_path,
    settings,
    workers,  # noqa: F811
):
    settings.KUBEMATE_JOB_HEARTBEAT_TIMEOUT = TIMEOUT
    services.save_policy(
        actor=team["admin"], project=team["project"], block_on="none", max_concurrent_runs=1, keep_days=30, keep_runs=10
    )
    jar = big_jar(samples, tmp_path / "orders.jar")
    with jar.open("rb") as f:
        upload = services.add_upload(
            actor=team["user"], pipeline=jar_pipeline, filename="orders.jar", chunks=iter(lambda: f.read(1 << 20), b"")
        )
    worker = workers()
    run = services.start_run(actor=team["user"], pipeline=jar_pipeline, upload=upload)

    building = wait_for(
        lambda: Stage.objects.filter(run=run, key="build", status=Stage.Status.RUNNING).exists(),
        timeout=60,
        interval=0.05,
    )
    assert building, why_not(worker, "the build stage never started")
    killed_at = kill(worker)
    ended = wait_for(lambda: reap_orphaned_jobs() or Run.objects.get(pk=run.pk).is_finished, timeout=TIMEOUT + 15)
    seconds = time.monotonic() - killed_at
    print(f"\nworker killed in the build stage: the run ended {seconds:.1f} s later (timeout {TIMEOUT} s)")
    assert ended
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert "build stage" in R(run.message) and "Run it again" in R(run.message)
    statuses = dict(run.stages.values_list("key", "status"))
    assert statuses == {
        "source": "succeeded",
        "build": "failed",
        "scan": "skipped",
        "push": "skipped",
        "deploy": "skipped",
    }
    assert "stopped during the build stage" in R(run.stages.get(key="build").message)
    assert not Run.objects.filter(pipeline__project=team["project"], status__in=Run.ACTIVE).exists()

    again = services.rerun(actor=team["user"], run=run)
    again.refresh_from_db()
    assert again.job_id is not None, "the freed slot starts the re-run at once"
    tasks.execute_run(str(again.job_id), again.pk)
    again.refresh_from_db()
    assert again.status == Run.Status.SUCCEEDED, again.message
    assert again.upload_id == run.upload_id and again.rerun_of_id == run.pk
