"""The rollout wait, the body of the ``releases.wait_rollout`` task (tasks.py) that every deploy queues as a Job.

It follows the release's Deployment as the user who deployed it (Job.actor) until the new pods are ready, the
progress deadline passes, or pods are stuck for a reason that does not pass by itself, and says which in words.
The objects were applied before the job began (services.deploy_release); when the worker following the rollout
dies, ``rollout_orphaned`` marks the revision failed with the way out (deploy again, or roll back), so no
revision stays "rolling out" for ever.
"""

from __future__ import annotations

import time

from django.conf import settings

from apps.clusters import kube
from apps.core.deferred import N_, fit, join
from apps.core.deferred import text as D
from apps.core.jobs import JobRecorder
from apps.core.models import Job, JobLogLine
from apps.releases import k8s, render
from apps.releases.models import Release, Revision

STUCK_REASONS = (
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
)


def selector_of(release: Release) -> str:
    return ",".join(f"{k}={v}" for k, v in render.selector(release.name).items())


class RolloutFailed(Exception):
    """The rollout did not finish; the message says why in plain words."""


def rollout_job(job: JobRecorder, *, revision_id: int) -> None:
    """Follow the Deployment until its new pods are ready, the progress deadline passes, or pods are stuck."""
    revision = Revision.objects.select_related("release__project__cluster").get(pk=revision_id)
    release = revision.release
    cluster = release.project.cluster
    actor = Job.objects.select_related("actor").get(pk=job.id).actor
    timeout = settings.KUBEMATE_RELEASE_ROLLOUT_TIMEOUT_SECONDS
    deadline = time.monotonic() + timeout
    last_message = ""
    job.progress(5, D(N_("Waiting for the new pods of %(name)s."), name=release.name))
    with kube.client(cluster, as_user=actor) as k:
        while True:
            state = k8s.rollout_state(k, release.namespace, release.name, selector_of(release))
            message = progress_message(state)
            if message != last_message:
                percent = 5 + (95 * state.updated_ready() // state.desired if state.desired else 95)
                job.progress(min(percent, 99), message)
                last_message = message
            if state.complete:
                _finish(revision, Revision.Result.SUCCEEDED, message)
                job.log(D(N_("%(name)s is rolled out: %(message)s"), name=release.name, message=message))
                return
            stuck = stuck_pods(k, release)
            if state.failed_reason or stuck or time.monotonic() > deadline:
                sentence = failure_sentence(release, revision, state, stuck, timeout)
                for line in k8s.warning_events(k, release.namespace, release.name):
                    job.log(line, JobLogLine.Level.WARNING)
                events = k8s.warning_events(k, release.namespace, release.name, limit=3)
                if events:
                    sentence = join(sentence, D(N_("What the cluster says: %(events)s"), events=" · ".join(events)))
                _finish(revision, Revision.Result.FAILED, sentence)
                raise RolloutFailed(sentence)
            time.sleep(settings.KUBEMATE_RELEASE_POLL_SECONDS)
            job.check_cancelled()


def rollout_cancelled(job: Job) -> str:
    """The words for a rollout wait someone cancelled (JobTask.when_cancelled): Kubemate stops following, the
    cluster goes on; the revision says so."""
    revision = Revision.objects.select_related("release").filter(job_id=job.pk).first()
    who = job.cancelled_by.get_username() if job.cancelled_by else D(N_("the system"))
    name = revision.release.name if revision else ""
    sentence = D(
        N_(
            "Cancelled by %(user)s at %(progress)s%%: Kubemate no longer follows the rollout of %(name)s; the cluster "
            "goes on with it. Its pods show on the Deployment's page."
        ),
        user=who,
        progress=job.progress,
        name=name,
    )
    if revision is not None:
        Revision.objects.filter(pk=revision.pk).update(message=fit(sentence, 2000))
    return sentence


def rollout_orphaned(job: Job) -> str:
    """The reaper's words for a rollout wait whose worker died (JobTask.when_orphaned); fails its revision."""
    revision = Revision.objects.select_related("release").filter(job_id=job.pk).first()
    if revision is None:
        return ""
    sentence = D(
        N_(
            "The worker following the rollout of %(name)s revision %(number)s stopped at %(progress)s%% and did not "
            "come back, so nobody checked that the new pods became ready. Its objects were applied: deploy again to "
            "follow the rollout, or roll back to an earlier revision."
        ),
        name=revision.release.name,
        number=revision.number,
        progress=job.progress,
    )
    Revision.objects.filter(pk=revision.pk, result=Revision.Result.APPLIED).update(
        result=Revision.Result.FAILED, message=sentence
    )
    return sentence


def progress_message(state: k8s.RolloutState) -> str:
    sets = ", ".join(f"{name} {ready}/{desired}" for name, ready, desired in state.replica_sets)
    text = D(
        N_("%(ready)s of %(desired)s pods ready on the new version"),
        ready=state.updated_ready(),
        desired=state.desired,
    )
    return D(N_("%(text)s (ReplicaSets: %(sets)s)"), text=text, sets=sets) if sets else text


def stuck_pods(k: kube.Client, release: Release) -> list[tuple[str, str, str]]:
    """Pods waiting for a reason that does not pass by itself: (pod, reason, message)."""
    stuck = []
    for pod in k8s.pods(k, release.namespace, selector_of(release)):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in STUCK_REASONS:
                stuck.append((pod["metadata"]["name"], waiting["reason"], waiting.get("message") or ""))
    return stuck


def failure_sentence(release: Release, revision: Revision, state, stuck, timeout: int) -> str:
    values = {"name": release.name, "number": revision.number}
    if stuck:
        pod, reason, _message = stuck[0]
        if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
            return D(
                N_(
                    "%(name)s revision %(number)s did not roll out: the image %(image)s cannot be pulled (%(reason)s "
                    "on pod %(pod)s). Check the name and tag, and that the cluster may read the registry."
                ),
                **{**values, "image": revision.spec.get("image", ""), "reason": reason, "pod": pod},
            )
        return D(
            N_(
                "%(name)s revision %(number)s did not roll out: its container keeps failing (%(reason)s on pod "
                "%(pod)s); read the pod's log."
            ),
            **{**values, "reason": reason, "pod": pod},
        )
    if state.failed_reason:
        return D(
            N_(
                "%(name)s revision %(number)s did not roll out: Kubernetes gave up after %(seconds)s seconds without "
                "ready new pods (ProgressDeadlineExceeded); %(ready)s of %(desired)s are ready."
            ),
            **{
                **values,
                "seconds": revision.spec.get("progress_deadline_seconds"),
                "ready": state.updated_ready(),
                "desired": state.desired,
            },
        )
    return D(
        N_(
            "%(name)s revision %(number)s did not become ready within %(seconds)s seconds; %(ready)s of %(desired)s "
            "new pods are ready."
        ),
        **{**values, "seconds": timeout, "ready": state.updated_ready(), "desired": state.desired},
    )


def _finish(revision: Revision, result: str, message: str) -> None:
    Revision.objects.filter(pk=revision.pk).update(result=result, message=fit(message, 2000))
