"""Every change in CI/CD, as a person, in one transaction, with one audit event: pipelines, uploads, runs (start,
cancel, re-run, the project's queue), webhooks and schedules, registries, base images, the policy, exceptions and
the vulnerability database. Views call these; tasks only schedule them."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.accounts import access as accounts_access
from apps.accounts.capabilities import (
    CICD_ADMIN,
    CICD_EDIT,
    CICD_EXCEPTIONS,
    CICD_RUN,
)
from apps.cicd import access, git, oci, storage, tasks, uploads
from apps.cicd.models import (
    BaseImage,
    Pipeline,
    Policy,
    Registry,
    Run,
    ScanException,
    Stage,
    Upload,
)
from apps.clusters.values import is_dns_label
from apps.core import audit, crypto
from apps.core import cron as cron_fields
from apps.core.deferred import N_, Failure, fit
from apps.core.deferred import text as D
from apps.core.jobs import cancel_job, start_job
from apps.core.locks import LockBusy, redis_lock
from apps.core.redis import ServiceUnavailable, bump

MAX_EXCEPTION_DAYS = 180
WEBHOOK_MAX_BODY = 1024 * 1024
WEBHOOK_MAX_DEPTH = 32
REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*){0,4}$")
HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")


class Refused(Failure):
    """The change is refused; the message says why and what to do."""


def _audit(actor, action: str, pipeline: Pipeline | None = None, *, request=None, detail=None, **where) -> None:
    if pipeline is not None:
        where.setdefault("cluster", pipeline.project.cluster.name)
        where.setdefault("namespace", pipeline.namespace)
        where.setdefault("kind", "Pipeline")
        where.setdefault("name", pipeline.name)
    audit.record(actor=actor, action=action, detail=detail or {}, request=request, **where)


def _require(actor, code: str, pipeline: Pipeline, sentence: str) -> None:
    if not access.may(actor, code, pipeline):
        raise Refused(D(sentence, name=pipeline.name, namespace=pipeline.namespace))


def policy_of(project) -> Policy:
    policy, _created = Policy.objects.get_or_create(project=project)
    return policy


# Pipelines ---------------------------------------------------------------------------------------------------


def _check_pipeline(actor, pipeline: Pipeline) -> None:
    if not is_dns_label(pipeline.name):
        raise Refused(D(N_("A pipeline's name is lower-case letters, digits and dashes (63 at most).")))
    if pipeline.namespace not in pipeline.project.namespaces:
        raise Refused(
            D(
                N_("Namespace %(namespace)s is not in project %(project)s."),
                namespace=pipeline.namespace,
                project=pipeline.project.name,
            )
        )
    if not access.may(actor, CICD_EDIT, pipeline):
        raise Refused(D(N_("You may not edit pipelines in namespace %(namespace)s."), namespace=pipeline.namespace))
    if not REPOSITORY.fullmatch(pipeline.repository or ""):
        raise Refused(D(N_("An image repository is lower-case words separated by / . _ or -, e.g. payments/api.")))
    if pipeline.registry_id not in set(access.registries(actor).values_list("pk", flat=True)) or not (
        pipeline.registry.project_id == pipeline.project_id
        or (pipeline.registry.project_id is None and pipeline.registry.cluster_id == pipeline.project.cluster_id)
    ):
        raise Refused(D(N_("Registry %(registry)s is not one of this project's."), registry=pipeline.registry.name))
    if pipeline.kind == Pipeline.Kind.JAR:
        if pipeline.base_image is None or pipeline.base_image.project_id != pipeline.project_id:
            raise Refused(D(N_("Pick an approved base image of the project.")))
        if not pipeline.base_image.active:
            raise Refused(D(N_("Base image %(name)s is no longer approved."), name=pipeline.base_image.name))
        if pipeline.template not in uploads.TEMPLATES:
            raise Refused(D(N_("Pick a start template.")))
    else:
        git.check_url(pipeline.git_url)
        git.check_branch(pipeline.git_branch)
    if pipeline.release_name and not is_dns_label(pipeline.release_name):
        raise Refused(D(N_("A release's name is lower-case letters, digits and dashes (63 at most).")))
    if pipeline.schedule:
        try:
            cron_fields.parse(pipeline.schedule)
        except cron_fields.BadCron as exc:
            raise Refused(exc.stored) from None
    if pipeline.webhook_owner_id and not access.may(pipeline.webhook_owner, CICD_RUN, pipeline):
        raise Refused(
            D(
                N_("%(user)s may not run this pipeline, so webhook runs cannot act as them."),
                user=pipeline.webhook_owner.get_username(),
            )
        )


def save_pipeline(*, actor, pipeline: Pipeline, git_token: str | None = None, request=None) -> Pipeline:
    """Create or change ``pipeline`` (unsaved fields set by the form). ``git_token``: None keeps the stored one,
    "" removes it. The schedule's beat entry follows the row; a schedule acts as the person who set it."""
    creating = pipeline.pk is None
    _check_pipeline(actor, pipeline)
    previous = "" if creating else Pipeline.objects.filter(pk=pipeline.pk).values_list("schedule", flat=True).first()
    with transaction.atomic():
        if git_token is not None:
            pipeline.git_token_encrypted = crypto.encrypt(git_token) if git_token else ""
        if creating:
            pipeline.created_by = actor
            pipeline.webhook_secret_encrypted = crypto.encrypt(secrets.token_urlsafe(32))
        if pipeline.schedule:
            pipeline.schedule = " ".join(pipeline.schedule.split())
            # A schedule acts as the person who set (or changed) it.
            if pipeline.schedule_owner_id is None or previous != pipeline.schedule:
                pipeline.schedule_owner = actor
        else:
            pipeline.schedule_owner = None
        pipeline.save()
        _sync_schedule(pipeline)
        _audit(
            actor,
            "cicd.pipeline.create" if creating else "cicd.pipeline.update",
            pipeline,
            request=request,
            detail={
                "kind": pipeline.kind,
                "image": pipeline.image_repository,
                "deploy": pipeline.deploy_mode,
                "schedule": pipeline.schedule,
                "git": pipeline.git_url if pipeline.kind == Pipeline.Kind.REPOSITORY else "",
                "git_token": "changed" if git_token is not None else "kept",
            },
        )
    return pipeline


def delete_pipeline(*, actor, pipeline: Pipeline, request=None) -> None:
    _require(actor, CICD_EDIT, pipeline, N_("You may not delete pipeline %(name)s."))
    if pipeline.runs.filter(status__in=Run.ACTIVE).exists():
        raise Refused(D(N_("Pipeline %(name)s has a run in progress: cancel it first."), name=pipeline.name))
    with transaction.atomic():
        PeriodicTask.objects.filter(name=_schedule_name(pipeline)).delete()
        _audit(actor, "cicd.pipeline.delete", pipeline, request=request)
        run_ids = list(pipeline.runs.values_list("pk", flat=True))
        upload_paths = list(pipeline.uploads.values_list("path", flat=True))
        pipeline.delete()
    for run_id in run_ids:
        storage.remove_run(run_id)
    for path in upload_paths:
        if not Upload.objects.filter(path=path).exists():
            storage.remove(path)


def rotate_webhook_secret(*, actor, pipeline: Pipeline, request=None) -> str:
    """A new webhook secret, returned once to be shown once; the old one stops working at once."""
    _require(actor, CICD_EDIT, pipeline, N_("You may not change pipeline %(name)s."))
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        Pipeline.objects.filter(pk=pipeline.pk).update(webhook_secret_encrypted=crypto.encrypt(secret))
        _audit(actor, "cicd.pipeline.webhook_secret", pipeline, request=request)
    return secret


def webhook_secret(pipeline: Pipeline) -> str:
    return crypto.decrypt(pipeline.webhook_secret_encrypted) if pipeline.webhook_secret_encrypted else ""


def _schedule_name(pipeline: Pipeline) -> str:
    return f"cicd pipeline {pipeline.pk}"


def _sync_schedule(pipeline: Pipeline) -> None:
    if not pipeline.schedule:
        PeriodicTask.objects.filter(name=_schedule_name(pipeline)).delete()
        return
    cron_fields.sync_entry(
        entry=None,
        name=_schedule_name(pipeline),
        task="cicd.run_scheduled",
        args=[pipeline.pk],
        cron=pipeline.schedule,
        tz=settings.TIME_ZONE,
        enabled=True,
        description=f"{pipeline.project.name}/{pipeline.name}",
    )


# Uploads -----------------------------------------------------------------------------------------------------


def add_upload(*, actor, pipeline: Pipeline, filename: str, chunks, request=None) -> Upload:
    """Keep an uploaded jar or war for ``pipeline``: stored by SHA-256 after checking it is a Java archive
    (uploads.inspect: bounded reading of its zip directory)."""
    _require(actor, CICD_RUN, pipeline, N_("You may not run pipeline %(name)s."))
    if pipeline.kind != Pipeline.Kind.JAR:
        raise Refused(D(N_("Pipeline %(name)s builds from a repository; it takes no upload."), name=pipeline.name))
    suffix = ".war" if filename.lower().endswith(".war") else ".jar"
    try:
        path, size, sha = storage.save_stream(chunks, "uploads", suffix, settings.KUBEMATE_CICD_MAX_UPLOAD)
    except storage.TooLarge:
        raise Refused(D(N_("The file is larger than %(mb)s MB."), mb=settings.KUBEMATE_CICD_MAX_UPLOAD >> 20)) from None
    try:
        facts = uploads.inspect(storage.resolve(path))
    except uploads.NotAnArchive:
        if not Upload.objects.filter(path=path).exists():
            storage.remove(path)
        raise
    with transaction.atomic():
        upload = Upload.objects.create(
            pipeline=pipeline,
            filename=uploads.safe_name(filename),
            size=size,
            sha256=sha,
            path=path,
            version=facts.version,
            uploaded_by=actor,
        )
        _audit(
            actor,
            "cicd.upload.create",
            pipeline,
            request=request,
            detail={"file": upload.filename, "sha256": sha, "size": size, "version": facts.version},
        )
    return upload


# Runs --------------------------------------------------------------------------------------------------------


def _stages_for(pipeline: Pipeline) -> list[Stage]:
    skipped = {Stage.Key.DEPLOY} if pipeline.deploy_mode == Pipeline.DeployMode.NONE else set()
    return [
        Stage(key=key, position=n, status=Stage.Status.SKIPPED if key in skipped else Stage.Status.PENDING)
        for n, key in enumerate(Stage.ORDER)
    ]


def start_run(
    *,
    actor,
    pipeline: Pipeline,
    trigger: str = Run.Trigger.MANUAL,
    upload: Upload | None = None,
    commit: str = "",
    rerun_of: Run | None = None,
    request=None,
    detail: dict | None = None,
) -> Run:
    """Queue a run of ``pipeline`` acting as ``actor``; it starts when the project has a free slot (its policy's
    runs at once). A jar pipeline builds ``upload`` (default: the latest); a repository pipeline the branch's
    head at start (or ``commit``)."""
    if actor is None or not access.may(actor, CICD_RUN, pipeline):
        who = actor.get_username() if actor is not None else D(N_("nobody"))
        raise Refused(D(N_("%(user)s may not run pipeline %(name)s."), user=who, name=pipeline.name))
    if pipeline.kind == Pipeline.Kind.JAR:
        upload = upload or pipeline.uploads.first()
        if upload is None:
            raise Refused(D(N_("Upload a jar or war to build first.")))
        if upload.pipeline_id != pipeline.pk:
            raise Refused(D(N_("That upload belongs to another pipeline.")))
    with transaction.atomic():
        # Numbers per pipeline: lock the pipeline row so two starts never take the same number.
        Pipeline.objects.select_for_update().filter(pk=pipeline.pk).first()
        number = (pipeline.runs.aggregate(n=Max("number"))["n"] or 0) + 1
        run = Run.objects.create(
            pipeline=pipeline,
            number=number,
            trigger=trigger,
            actor=actor,
            upload=upload,
            commit=commit,
            rerun_of=rerun_of,
        )
        Stage.objects.bulk_create([*(_set_run(s, run) for s in _stages_for(pipeline))])
        _audit(
            actor,
            "cicd.run.start",
            pipeline,
            request=request,
            detail={
                "run": number,
                "trigger": trigger,
                **({"upload": upload.sha256} if upload else {}),
                **({"commit": commit} if commit else {}),
                **({"rerun_of": rerun_of.number} if rerun_of else {}),
                **(detail or {}),
            },
        )
        project_id = pipeline.project_id
        transaction.on_commit(lambda: dispatch(project_id))
    return run


def _set_run(stage: Stage, run: Run) -> Stage:
    stage.run = run
    return stage


def rerun(*, actor, run: Run, request=None) -> Run:
    """The same source again (the same upload or commit), as ``actor``."""
    if not run.is_finished:
        raise Refused(D(N_("Run #%(number)s has not finished."), number=run.number))
    if run.pipeline.kind == Pipeline.Kind.JAR and run.upload is None:
        raise Refused(D(N_("The upload run #%(number)s built was removed; upload it again."), number=run.number))
    return start_run(
        actor=actor,
        pipeline=run.pipeline,
        trigger=Run.Trigger.RERUN,
        upload=run.upload,
        commit=run.commit,
        rerun_of=run,
        request=request,
    )


def cancel_run(*, actor, run: Run, request=None) -> str:
    """Stop a run: a queued one at once, a running one at its next step (its in-cluster build is deleted)."""
    _require(actor, CICD_RUN, run.pipeline, N_("You may not run pipeline %(name)s."))
    if run.is_finished:
        raise Refused(D(N_("Run #%(number)s has already finished."), number=run.number))
    with transaction.atomic():
        ended = Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
            status=Run.Status.CANCELLED,
            finished_at=timezone.now(),
            message=D(N_("Cancelled by %(user)s before it started."), user=actor.get_username()),
        )
        if ended:
            Stage.objects.filter(run=run, status=Stage.Status.PENDING).update(status=Stage.Status.CANCELLED)
            _audit(actor, "cicd.run.cancel", run.pipeline, request=request, detail={"run": run.number})
            sentence = D(N_("Run #%(number)s cancelled."), number=run.number)
        else:
            run.refresh_from_db()
            if run.job is None:
                raise Refused(D(N_("Run #%(number)s has already finished."), number=run.number))
            sentence = cancel_job(actor=actor, job=run.job, request=request)
            run.job.refresh_from_db()
            if run.job.is_finished:  # its job had not started: it never will, so the run ends here
                Run.objects.filter(pk=run.pk, status__in=Run.ACTIVE).update(
                    status=Run.Status.CANCELLED, finished_at=timezone.now(), message=sentence
                )
                Stage.objects.filter(run=run, status=Stage.Status.PENDING).update(status=Stage.Status.CANCELLED)
            _audit(actor, "cicd.run.cancel", run.pipeline, request=request, detail={"run": run.number})
    return sentence


def dispatch(project_id: int) -> list[Run]:
    """Start queued runs of the project, oldest first, while it has fewer running than its policy allows. Under a
    lock per project so two finishing runs never start the same queued one."""
    started: list[Run] = []
    try:
        with redis_lock(f"cicd:dispatch:{project_id}", timeout=120, wait=5):
            limit = Policy.objects.filter(project_id=project_id).values_list("max_concurrent_runs", flat=True).first()
            limit = limit or Policy._meta.get_field("max_concurrent_runs").default
            running = Run.objects.filter(pipeline__project_id=project_id, status=Run.Status.RUNNING).count()
            free = max(0, limit - running)
            queued = Run.objects.filter(pipeline__project_id=project_id, status=Run.Status.QUEUED).select_related(
                "pipeline__project__cluster", "actor"
            )
            for run in queued.order_by("created_at", "pk")[:free]:
                with transaction.atomic():
                    job = start_job(
                        task=tasks.execute_run,
                        title=D(N_("Pipeline %(name)s run #%(number)s"), name=run.pipeline.name, number=run.number),
                        actor=run.actor,
                        target=f"cluster/{run.pipeline.project.cluster.name}/namespace/{run.pipeline.namespace}"
                        f"/pipeline/{run.pipeline.name}",
                        args=(run.pk,),
                    )
                    moved = Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
                        status=Run.Status.RUNNING, job=job
                    )
                    if not moved:  # cancelled meanwhile: the job never starts
                        transaction.set_rollback(True)
                        continue
                started.append(run)
    except (LockBusy, ServiceUnavailable):
        pass  # another dispatcher of the project is at it, or Redis is away: the next pass (beat, 30 s) starts these
    return started


def dispatch_all() -> int:
    """What beat runs every 30 s: every project with queued runs (after a reaped run freed its slot)."""
    started = 0
    for project_id in set(Run.objects.filter(status=Run.Status.QUEUED).values_list("pipeline__project_id", flat=True)):
        started += len(dispatch(project_id))
    return started


def run_scheduled(pipeline_id: int) -> Run | None:
    """What beat starts for a pipeline's schedule: a run as the person who set the schedule; refused (audited)
    when they may no longer run it, or when the last scheduled run has not finished."""
    pipeline = Pipeline.objects.select_related("project__cluster", "schedule_owner").filter(pk=pipeline_id).first()
    if pipeline is None or not pipeline.schedule:
        return None
    owner = pipeline.schedule_owner
    if pipeline.runs.filter(trigger=Run.Trigger.SCHEDULE, status__in=Run.ACTIVE).exists():
        return None
    try:
        return start_run(actor=owner, pipeline=pipeline, trigger=Run.Trigger.SCHEDULE)
    except (Refused, git.GitError) as exc:
        audit.record(
            actor=owner,
            action="cicd.run.refused",
            result=audit.AuditEvent.Result.DENIED,
            cluster=pipeline.project.cluster.name,
            namespace=pipeline.namespace,
            kind="Pipeline",
            name=pipeline.name,
            detail={"trigger": "schedule", "reason": str(exc)},
        )
        return None


# Webhooks ----------------------------------------------------------------------------------------------------


class WebhookRefused(Failure):
    """A webhook delivery that starts nothing; ``status`` is the HTTP answer."""

    def __init__(self, sentence: str, status: int):
        super().__init__(sentence)
        self.status = status


def _depth(value, limit: int) -> int:
    depth, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        depth = max(depth, level)
        if depth > limit:
            return depth
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return depth


def signature_ok(secret: str, body: bytes, header: str) -> bool:
    """``header`` is ``sha256=<hex HMAC-SHA256 of the body>`` (GitHub, Gitea, GitLab's signing tokens alike), or
    the bare hex digest (Gitea's X-Gitea-Signature)."""
    if not secret or not header:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = header.strip().removeprefix("sha256=")
    return hmac.compare_digest(expected, given)


WEBHOOK_REFUSALS_AUDITED = 20  # per pipeline and minute; more are refused without a row each


def _refusals_flooding(pipeline_id: int) -> bool:
    """Whether this minute's refused deliveries to the pipeline passed the number audited one by one (a flood of
    forged pushes must not flood the audit log); the first one past it is audited as the flood's start."""
    key = f"kubemate:cicd:webhook-refusals:{pipeline_id}:{int(timezone.now().timestamp() // 60)}"
    count = bump(key, 120)
    return count is not None and count > WEBHOOK_REFUSALS_AUDITED


def receive_webhook(*, pipeline_id: int, body: bytes, signature: str, event: str = "push") -> Run | None:
    """A push webhook for a repository pipeline: checked against the pipeline's secret before anything is read;
    a push to the pipeline's branch starts a run of that commit as the webhook's owner. Every delivery is
    audited; the refusal says why with the status to answer."""
    pipeline = Pipeline.objects.select_related("project__cluster", "webhook_owner").filter(pk=pipeline_id).first()
    if pipeline is None:
        raise WebhookRefused(D(N_("No such pipeline.")), 404)
    where = {
        "cluster": pipeline.project.cluster.name,
        "namespace": pipeline.namespace,
        "kind": "Pipeline",
        "name": pipeline.name,
    }
    if len(body) > WEBHOOK_MAX_BODY:
        raise WebhookRefused(D(N_("The delivery is larger than %(kb)s KB."), kb=WEBHOOK_MAX_BODY >> 10), 413)
    if not signature_ok(webhook_secret(pipeline), body, signature):
        if not _refusals_flooding(pipeline.pk):
            audit.record(
                actor=None,
                actor_name="webhook",
                action="cicd.webhook.refused",
                result=audit.AuditEvent.Result.DENIED,
                detail={"reason": "bad signature"},
                **where,
            )
        raise WebhookRefused(D(N_("The signature does not match this pipeline's webhook secret.")), 403)
    if event and event not in ("push", "Push Hook"):
        raise WebhookRefused(D(N_("Only push events start runs; %(event)s was ignored."), event=event[:50]), 202)
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookRefused(D(N_("The delivery is not JSON.")), 400) from None
    if not isinstance(payload, dict) or _depth(payload, WEBHOOK_MAX_DEPTH) > WEBHOOK_MAX_DEPTH:
        raise WebhookRefused(D(N_("The delivery is not a push event.")), 400)
    ref, after = str(payload.get("ref") or ""), str(payload.get("after") or payload.get("checkout_sha") or "")
    if pipeline.kind != Pipeline.Kind.REPOSITORY:
        raise WebhookRefused(
            D(N_("Pipeline %(name)s builds uploads; pushes do not start it."), name=pipeline.name), 202
        )
    if ref != f"refs/heads/{pipeline.git_branch}":
        raise WebhookRefused(
            D(N_("A push to %(ref)s, not to %(branch)s: nothing to run."), ref=ref[:200], branch=pipeline.git_branch),
            202,
        )
    if not git.SHA.fullmatch(after) or set(after) == {"0"}:
        raise WebhookRefused(D(N_("The push names no commit (a deleted branch?): nothing to run.")), 202)
    owner = pipeline.webhook_owner
    if owner is None:
        raise WebhookRefused(D(N_("Pipeline %(name)s has no webhook owner to run as."), name=pipeline.name), 409)
    try:
        return start_run(actor=owner, pipeline=pipeline, trigger=Run.Trigger.WEBHOOK, commit=after, detail={"ref": ref})
    except Refused as exc:
        audit.record(
            actor=owner,
            action="cicd.run.refused",
            result=audit.AuditEvent.Result.DENIED,
            detail={"trigger": "webhook", "reason": str(exc)},
            **where,
        )
        raise WebhookRefused(exc.stored, 403) from None


# Registries and base images ----------------------------------------------------------------------------------

REGISTRY_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$")
MAX_TAGS_SHOWN = 50


def _natural(text: str) -> list:
    """A sort key that orders 1.10 after 1.9 (tags are versions more often than not)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part]


def save_registry(*, actor, registry: Registry, password: str | None = None, request=None) -> Registry:
    """Create or change a registry (platform: cicd.admin), checked first: it must list its repositories with the
    credentials given. ``password``: None keeps the stored one, "" removes it. A registry is placed on one
    cluster (every project of it may push there) or on one project."""
    if not accounts_access.may(actor, CICD_ADMIN):
        raise Refused(D(N_("You may not manage registries.")))
    registry.name = (registry.name or "").strip()
    registry.host = (registry.host or "").strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    registry.prefix = (registry.prefix or "").strip().strip("/")
    registry.username = (registry.username or "").strip()
    registry.ca_pem = (registry.ca_pem or "").strip()
    if not REGISTRY_NAME.fullmatch(registry.name):
        raise Refused(D(N_("A registry's name is lower-case letters, digits, dots and dashes (63 at most).")))
    if Registry.objects.filter(name=registry.name).exclude(pk=registry.pk).exists():
        raise Refused(D(N_("A registry named %(name)s already exists."), name=registry.name))
    if (registry.cluster_id is None) == (registry.project_id is None):
        raise Refused(D(N_("Place the registry on one cluster or on one project.")))
    if not HOST.fullmatch(registry.host):
        raise Refused(D(N_("Enter the registry's host and port, e.g. harbor.bank.local or 10.0.0.5:5000.")))
    if registry.prefix and not REPOSITORY.fullmatch(registry.prefix):
        raise Refused(D(N_("A path prefix is lower-case words separated by /, e.g. payments.")))
    if (registry.ca_pem and "-----BEGIN CERTIFICATE-----" not in registry.ca_pem) or len(registry.ca_pem) > 64 * 1024:
        raise Refused(D(N_("The certificate authority must be PEM certificates (64 KB at most).")))
    if password is not None and len(password) > 1000:
        raise Refused(D(N_("The password is longer than %(count)s characters."), count=1000))
    creating = registry.pk is None
    if password is not None:
        registry.password_encrypted = crypto.encrypt(password) if password else ""
    try:
        oci.check(oci.access_for(registry))
        registry.last_error = ""
    except oci.RegistryError as exc:
        raise Refused(
            D(N_("The registry did not answer as expected, so nothing was saved: %(error)s"), error=exc.stored)
        ) from None
    registry.last_checked_at = timezone.now()
    with transaction.atomic():
        if creating:
            registry.created_by = actor
        registry.save()
        audit.record(
            actor=actor,
            action="cicd.registry.create" if creating else "cicd.registry.update",
            cluster=registry.cluster.name if registry.cluster_id else registry.project.cluster.name,
            kind="Registry",
            name=registry.name,
            detail={
                "host": registry.host,
                "prefix": registry.prefix,
                "insecure": registry.insecure,
                "ca": bool(registry.ca_pem),
                "user": registry.username,
                "password": "changed" if password is not None else "kept",
                "place": f"project {registry.project.slug}" if registry.project_id else "cluster",
            },
            request=request,
        )
    return registry


def delete_registry(*, actor, registry: Registry, request=None) -> None:
    if not accounts_access.may(actor, CICD_ADMIN):
        raise Refused(D(N_("You may not manage registries.")))
    if registry.pipelines.exists():
        raise Refused(D(N_("Pipelines push to %(name)s: change them first."), name=registry.name))
    with transaction.atomic():
        audit.record(
            actor=actor,
            action="cicd.registry.delete",
            kind="Registry",
            name=registry.name,
            detail={"host": registry.host},
            request=request,
        )
        registry.delete()


def registries_of(project) -> list[Registry]:
    """The registries a project's pipelines and base images may use: its own and its cluster's."""
    from django.db.models import Q

    return list(
        Registry.objects.filter(Q(project=project) | Q(project__isnull=True, cluster_id=project.cluster_id))
        .select_related("cluster", "project")
        .order_by("name")
    )


def registry_repositories(registry: Registry) -> list[str]:
    """The repositories the registry lists with its credentials (``crane catalog``), sorted; RegistryError when
    it refuses or cannot be reached. Reading only: the view decides who may."""

    try:
        found = sorted(set(oci.repositories(oci.access_for(registry))))
    except oci.RegistryError as exc:
        Registry.objects.filter(pk=registry.pk).update(last_checked_at=timezone.now(), last_error=fit(exc.stored, 500))
        raise
    Registry.objects.filter(pk=registry.pk).update(last_checked_at=timezone.now(), last_error="")
    return found


def registry_tags(registry: Registry, repository: str, limit: int = MAX_TAGS_SHOWN) -> tuple[list[dict], int]:
    """The tags of ``repository`` (a path the registry listed), newest first by name, at most ``limit``, each
    with the digest the registry holds for it now: ([{"tag", "reference", "digest", "error"}], number of tags).
    RegistryError when the tags cannot be listed; a digest that cannot be read is that row's ``error``."""
    from concurrent.futures import ThreadPoolExecutor

    access_ = oci.access_for(registry)
    base = f"{registry.host}/{repository}"
    tags = sorted(set(oci.tags(access_, base)), key=_natural, reverse=True)

    def one(tag: str) -> dict:
        reference = f"{base}:{tag}"
        try:
            return {"tag": tag, "reference": reference, "digest": oci.digest(access_, reference), "error": ""}
        except oci.RegistryError as exc:
            return {"tag": tag, "reference": reference, "digest": "", "error": exc.stored}

    with ThreadPoolExecutor(max_workers=4) as pool:
        rows = list(pool.map(one, tags[:limit]))
    return rows, len(tags)


def approve_base(
    *, actor, project, name: str, reference: str, registry: Registry, description: str = "", request=None
) -> BaseImage:
    """Add (or approve again) a base image of the project's catalogue, pinned to the digest the registry holds
    for ``reference`` now. The registry must be one of the project's (its own or its cluster's)."""
    if not access.may_on_project(actor, CICD_EDIT, project):
        raise Refused(D(N_("You may not change the base images of project %(project)s."), project=project.name))
    name, reference, description = name.strip(), reference.strip(), description.strip()
    if not name or len(name) > 100:
        raise Refused(D(N_("Name the base image (100 characters at most), e.g. jre17.")))
    if registry.pk not in {r.pk for r in registries_of(project)}:
        raise Refused(D(N_("Registry %(registry)s is not one of this project's."), registry=registry.name))
    if not reference.startswith(registry.host + "/") or len(reference) > 400 or any(c.isspace() for c in reference):
        raise Refused(
            D(
                N_("The image must be in registry %(registry)s (%(host)s/…)."),
                registry=registry.name,
                host=registry.host,
            )
        )
    try:
        digest = oci.digest(oci.access_for(registry), reference)
    except oci.RegistryError as exc:
        raise Refused(exc.stored) from None
    with transaction.atomic():
        base, created = BaseImage.objects.update_or_create(
            project=project,
            name=name,
            defaults={
                "reference": reference,
                "digest": digest,
                "description": description[:300],
                "active": True,
                "approved_by": actor,
                "approved_at": timezone.now(),
            },
        )
        audit.record(
            actor=actor,
            action="cicd.base.approve",
            cluster=project.cluster.name,
            kind="BaseImage",
            name=f"{project.slug}/{base.name}",
            detail={"image": reference, "digest": digest, "registry": registry.name, "new": created},
            request=request,
        )
    return base


def withdraw_base(*, actor, base: BaseImage, request=None) -> None:
    """Take a base image out of the catalogue: new pipelines cannot pick it and runs of pipelines built on it are
    stop at their build until it is approved again (runner.py)."""
    if not access.may_on_project(actor, CICD_EDIT, base.project):
        raise Refused(D(N_("You may not change the base images of project %(project)s."), project=base.project.name))
    with transaction.atomic():
        changed = BaseImage.objects.filter(pk=base.pk, active=True).update(active=False)
        if not changed:
            raise Refused(D(N_("Base image %(name)s is no longer approved."), name=base.name))
        audit.record(
            actor=actor,
            action="cicd.base.withdraw",
            cluster=base.project.cluster.name,
            kind="BaseImage",
            name=f"{base.project.slug}/{base.name}",
            detail={"image": base.reference, "digest": base.digest},
            request=request,
        )


# Policy and exceptions ---------------------------------------------------------------------------------------

VULN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{1,99}")


def save_policy(
    *, actor, project, block_on: str, max_concurrent_runs: int, keep_days: int, keep_runs: int, request=None
) -> Policy:
    """Change the project's CI/CD policy (cicd.exceptions on every namespace of the project: what blocks a deploy
    is as much the project's risk decision as an exception). Queued runs start at once if the limit rose."""
    if not access.may_on_project(actor, CICD_EXCEPTIONS, project):
        raise Refused(D(N_("You may not change the CI/CD policy of project %(project)s."), project=project.name))
    if block_on not in Policy.Block.values:
        raise Refused(D(N_("Pick what the scan blocks on.")))
    if not 1 <= max_concurrent_runs <= 20 or not 1 <= keep_days <= 3650 or not 1 <= keep_runs <= 1000:
        raise Refused(D(N_("Runs at once: 1 to 20; keep runs: 1 to 3650 days, and at least 1 to 1000 runs.")))
    with transaction.atomic():
        policy = Policy.objects.select_for_update().filter(project=project).first() or policy_of(project)
        before = {
            "block_on": policy.block_on,
            "runs": policy.max_concurrent_runs,
            "keep_days": policy.keep_days,
            "keep_runs": policy.keep_runs,
        }
        policy.block_on, policy.max_concurrent_runs = block_on, max_concurrent_runs
        policy.keep_days, policy.keep_runs, policy.updated_by = keep_days, keep_runs, actor
        policy.save()
        audit.record(
            actor=actor,
            action="cicd.policy.update",
            cluster=project.cluster.name,
            kind="Project",
            name=project.slug,
            detail={
                "before": before,
                "block_on": block_on,
                "runs": max_concurrent_runs,
                "keep_days": keep_days,
                "keep_runs": keep_runs,
            },
            request=request,
        )
    project_id = project.pk
    transaction.on_commit(lambda: dispatch(project_id))
    return policy


def grant_exception(
    *, actor, project, vuln_id: str, package: str, reason: str, days: int, request=None
) -> ScanException:
    """Accept ``vuln_id`` (in ``package``, or any) in the project's scans for ``days`` (at most 180). A finding
    matches by its id or any of its aliases (a CVE id matches the GHSA advisory that names it)."""
    if not access.may_on_project(actor, CICD_EXCEPTIONS, project):
        raise Refused(D(N_("You may not grant vulnerability exceptions in project %(project)s."), project=project.name))
    vuln_id, package, reason = vuln_id.strip(), package.strip(), " ".join(reason.split())
    if not VULN_ID.fullmatch(vuln_id):
        raise Refused(D(N_("Enter the vulnerability's id, e.g. CVE-2021-44228 or GHSA-jfh8-c2jp-5v3q.")))
    if len(package) > 255:
        raise Refused(D(N_("A package name is 255 characters at most.")))
    if len(reason) < 10:
        raise Refused(D(N_("Say why the vulnerability is accepted (10 characters at least).")))
    if not 1 <= days <= MAX_EXCEPTION_DAYS:
        raise Refused(D(N_("An exception lasts 1 to %(days)s days."), days=MAX_EXCEPTION_DAYS))
    with transaction.atomic():
        exception = ScanException.objects.create(
            project=project,
            vuln_id=vuln_id,
            package=package,
            reason=reason[:500],
            expires_at=timezone.now() + timedelta(days=days),
            created_by=actor,
        )
        audit.record(
            actor=actor,
            action="cicd.exception.grant",
            cluster=project.cluster.name,
            kind="ScanException",
            name=f"{project.slug}/{vuln_id}",
            detail={
                "package": package,
                "days": days,
                "expires": exception.expires_at.isoformat(),
                "reason": reason[:500],
            },
            request=request,
        )
    return exception


def revoke_exception(*, actor, exception: ScanException, request=None) -> None:
    """End an exception now: the project's next scans block on the vulnerability again."""
    project = exception.project
    if not access.may_on_project(actor, CICD_EXCEPTIONS, project):
        raise Refused(
            D(N_("You may not revoke vulnerability exceptions in project %(project)s."), project=project.name)
        )
    with transaction.atomic():
        ended = ScanException.objects.filter(
            pk=exception.pk, revoked_at__isnull=True, expires_at__gt=timezone.now()
        ).update(revoked_at=timezone.now(), revoked_by=actor)
        if not ended:
            raise Refused(D(N_("The exception for %(vuln)s has already ended."), vuln=exception.vuln_id))
        audit.record(
            actor=actor,
            action="cicd.exception.revoke",
            cluster=project.cluster.name,
            kind="ScanException",
            name=f"{project.slug}/{exception.vuln_id}",
            detail={"package": exception.package, "granted_by": getattr(exception.created_by, "username", "")},
            request=request,
        )


# Retention ---------------------------------------------------------------------------------------------------


def prune(now=None) -> dict[str, int]:
    """Remove the files of runs past their project's retention (older than keep_days, beyond the last keep_runs of
    their pipeline); the rows stay for the history. Uploads no kept run uses, older than the retention, go too."""
    now = now or timezone.now()
    removed = {"runs": 0, "uploads": 0}
    for pipeline in Pipeline.objects.select_related("project"):
        policy = policy_of(pipeline.project)
        cutoff = now - timedelta(days=policy.keep_days)
        kept = list(pipeline.runs.order_by("-number").values_list("pk", flat=True)[: policy.keep_runs])
        old = (
            pipeline.runs.filter(finished_at__lt=cutoff)
            .exclude(pk__in=kept)
            .filter(artifacts__removed_at__isnull=True)
            .distinct()
        )
        for run in old:
            storage.remove_run(run.pk)
            run.artifacts.filter(removed_at__isnull=True).update(removed_at=now, path="")
            removed["runs"] += 1
        in_use = set(
            Run.objects.filter(pipeline=pipeline).filter(pk__in=kept).values_list("upload_id", flat=True)
        ) | set(Run.objects.filter(pipeline=pipeline, status__in=Run.ACTIVE).values_list("upload_id", flat=True))
        latest = pipeline.uploads.values_list("pk", flat=True).first()
        for upload in pipeline.uploads.filter(uploaded_at__lt=cutoff).exclude(pk__in=in_use).exclude(pk=latest):
            path = upload.path
            upload.delete()
            if not Upload.objects.filter(path=path).exists():
                storage.remove(path)
            removed["uploads"] += 1
    return removed
