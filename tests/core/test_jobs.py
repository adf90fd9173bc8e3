import pytest
from celery import shared_task

from apps.core.jobs import JobTask, TransientError, start_job
from apps.core.locks import LockBusy, redis_lock
from apps.core.models import Job, JobLogLine
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


@shared_task(base=JobTask, name="tests.stepping_job")
def stepping_job(job, steps: int) -> None:
    for step in range(1, steps + 1):
        job.progress(step * 100 // steps, f"Step {step} of {steps} done.")


@shared_task(base=JobTask, name="tests.failing_job")
def failing_job(job, reason: str) -> None:
    job.progress(40, "Halfway")
    raise RuntimeError(reason)


@shared_task(base=JobTask, name="tests.transient_job", max_retries=0)
def transient_job(job) -> None:
    raise TransientError("The cluster did not answer in time.")


def test_a_job_runs_to_success_and_records_each_step():
    job = JobFactory()

    stepping_job(str(job.pk), steps=4)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.progress == 100
    assert job.started_at is not None and job.finished_at >= job.started_at
    assert list(job.log_lines.values_list("message", flat=True)) == [
        "Step 1 of 4 done.",
        "Step 2 of 4 done.",
        "Step 3 of 4 done.",
        "Step 4 of 4 done.",
    ]


def test_failed_job_keeps_progress_and_records_the_reason():
    job = JobFactory()

    failing_job(str(job.pk), "Node worker-3 has no room for the pods.")

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.progress == 40
    assert job.message == "Node worker-3 has no room for the pods."
    assert job.log_lines.filter(level=JobLogLine.Level.ERROR).count() == 1


def test_transient_error_fails_the_job_once_retries_are_used_up():
    job = JobFactory()

    transient_job(str(job.pk))

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.message == "The cluster did not answer in time."


def test_a_finished_job_delivered_again_is_left_alone():
    job = JobFactory(status=Job.Status.SUCCEEDED, progress=100, message="Finished.")

    stepping_job(str(job.pk), steps=2)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.log_lines.count() == 0


def test_start_job_queues_the_task_only_after_commit(django_capture_on_commit_callbacks, operator, monkeypatch):
    sent = []
    monkeypatch.setattr(stepping_job, "apply_async", lambda args, **options: sent.append(args))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = start_job(task=stepping_job, title="Steps", actor=operator, target="kubemate/steps", args=(3,))
    assert sent == []
    for callback in callbacks:
        callback()

    assert job.status == Job.Status.PENDING
    assert job.kind == "tests.stepping_job"
    assert sent == [(str(job.pk), 3)]


def test_progress_is_clamped_to_0_to_100():
    job = JobFactory()
    from apps.core.jobs import JobRecorder

    recorder = JobRecorder(job)
    recorder.progress(250)
    job.refresh_from_db()
    assert job.progress == 100
    recorder.progress(-5)
    job.refresh_from_db()
    assert job.progress == 0


def test_redis_lock_refuses_a_second_holder_and_frees_on_exit():
    with (
        redis_lock("cluster-sync:1"),
        pytest.raises(LockBusy, match="already working on this; try again") as busy,
        redis_lock("cluster-sync:1"),
    ):
        pass
    assert "cluster-sync" not in str(busy.value)  # internal lock names never reach a sentence
    with redis_lock("cluster-sync:1"):
        pass
