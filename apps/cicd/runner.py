"""The body of a pipeline run (the Job ``cicd.run``): its stages in order, each with its status, times, log lines
and detail, the run's Job moving its progress bar.

- source: the upload (its SHA-256 checked again) or the branch's commit (git.py);
- build: for a jar, the approved base plus one layer holding the archive, configured from the start template, by
  crane into a local image archive (oci.build; nothing pushed yet); for a repository, an in-cluster build
  (incluster.py: a Tekton PipelineRun when the cluster serves Tekton, else a Kubernetes Job) that pushes its
  image, which is then pulled back into a local archive to be scanned;
- scan: osv-scanner offline against the newest imported database (scanner.py); findings stored, the project's
  exceptions applied, the policy decides: blocking findings end the run Blocked and nothing is pushed;
- push: crane push of the archive, the digest read back from the registry (a repository build has pushed already:
  the digest is read and compared);
- deploy: the image by digest into the pipeline's release, as the run's actor (releases.services), as a new
  revision whose rollout is followed to the end, or as a canary.

A failure anywhere fails its stage with the sentence, skips the stages after it and fails the run; a cancel ends
the running stage cancelled. A run whose worker died is ended by the reaper (tasks.when_orphaned), naming its stage.
The image archive and checkouts are removed when the run ends; the reports and the SBOM stay as artefacts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.capabilities import CICD_DEPLOY
from apps.cicd import access, git, incluster, oci, scanner, storage, uploads
from apps.cicd.models import (
    Artifact,
    Finding,
    Pipeline,
    Policy,
    Registry,
    Run,
    ScanException,
    Stage,
    VulnDatabase,
    at_or_above,
)
from apps.cicd.stagelog import StageLog, update, word
from apps.core import crypto
from apps.core.deferred import N_, Failure, fit, sentence_of
from apps.core.deferred import text as D
from apps.core.jobs import JobCancelled, JobRecorder
from apps.core.models import Job
from apps.releases import canaries, render
from apps.releases import services as releases
from apps.releases.models import Release
from apps.releases.tasks import wait_rollout

logger = logging.getLogger(__name__)

ROLLOUT_POLL = 1.0
# Each stage's share of the progress bar: (start, end) percent.
SPAN = {
    Stage.Key.SOURCE: (0, 10),
    Stage.Key.BUILD: (10, 45),
    Stage.Key.SCAN: (45, 70),
    Stage.Key.PUSH: (70, 80),
    Stage.Key.DEPLOY: (80, 100),
}


class Blocked(Failure):
    """The scan found what the project's policy blocks on; nothing is pushed."""


class StageFailed(Failure):
    """A stage could not do its work; the sentence says why."""


@dataclass
class Context:
    run: Run
    pipeline: Pipeline
    job: JobRecorder
    folder: Path
    tag: str = ""
    archive: Path | None = None
    build_digest: str = ""
    _access: oci.Access | None = field(default=None, repr=False)

    @property
    def access(self) -> oci.Access:
        if self._access is None:
            self._access = oci.access_for(self.pipeline.registry)
        return self._access

    @property
    def reference(self) -> str:
        return f"{self.pipeline.image_repository}:{self.tag}"


def execute(run_id: int, job: JobRecorder) -> Run:
    run = Run.objects.select_related(
        "pipeline__project__cluster", "pipeline__registry", "pipeline__base_image", "upload", "actor"
    ).get(pk=run_id)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, started_at=timezone.now())
    context = Context(run=run, pipeline=run.pipeline, job=job, folder=storage.run_dir(run.pk))
    try:
        for stage in run.stages.order_by("position"):
            if stage.status != Stage.Status.PENDING:
                continue
            _run_stage(context, stage)
    finally:
        _clean(context)
    _finish(run, Run.Status.SUCCEEDED, _summary(run))
    return run


def _run_stage(context: Context, stage: Stage) -> None:
    start, _end = SPAN[stage.key]
    log = StageLog(stage)
    update(stage, status=Stage.Status.RUNNING, started_at=timezone.now())
    context.job.progress(start, D(N_("Stage %(stage)s started."), stage=word(stage.key)))
    try:
        status, message = STAGES[stage.key](context, stage, log)
    except JobCancelled:
        update(stage, status=Stage.Status.CANCELLED, finished_at=timezone.now())
        raise
    except Exception as exc:
        sentence = sentence_of(exc) if isinstance(exc, Failure) else ""
        if not sentence:
            logger.exception("pipeline stage failed", extra={"run": context.run.pk, "stage": stage.key})
            sentence = D(
                N_("The %(stage)s stage stopped because of an unexpected error; see the worker log."),
                stage=word(stage.key),
            )
        log(sentence, "error")
        update(stage, status=Stage.Status.FAILED, finished_at=timezone.now(), message=fit(sentence, 500))
        Stage.objects.filter(run=context.run, status=Stage.Status.PENDING).update(status=Stage.Status.SKIPPED)
        outcome = Run.Status.BLOCKED if isinstance(exc, Blocked) else Run.Status.FAILED
        _finish(context.run, outcome, sentence)
        if isinstance(exc, Failure):
            raise
        raise StageFailed(sentence) from exc
    update(stage, status=status, finished_at=timezone.now(), message=fit(message, 500))
    log(message, "warning" if status == Stage.Status.WARNING else "info")


def _finish(run: Run, status: str, message: str) -> None:
    Run.objects.filter(pk=run.pk, status__in=Run.ACTIVE).update(
        status=status, finished_at=timezone.now(), message=fit(message, 500)
    )


def _summary(run: Run) -> str:
    run.refresh_from_db()
    if run.revision:
        return D(N_("Built, scanned, pushed and deployed as revision %(number)s."), number=run.revision)
    if run.digest:
        return D(N_("Built, scanned and pushed %(image)s."), image=f"{run.image}@{run.digest[:19]}")
    return D(N_("Finished."))


def _clean(context: Context) -> None:
    for name in ("image.tar", "layer.tar"):
        (context.folder / name).unlink(missing_ok=True)
    incluster.remove_tree(context.folder / "src")


# Source ------------------------------------------------------------------------------------------------------


def _source_of(pipeline: Pipeline) -> git.Source:
    token = crypto.decrypt(pipeline.git_token_encrypted) if pipeline.git_token_encrypted else ""
    return git.Source(url=pipeline.git_url, branch=pipeline.git_branch, username=pipeline.git_username, token=token)


def stage_source(context: Context, stage: Stage, log: StageLog) -> tuple[str, str]:
    run, pipeline = context.run, context.pipeline
    if pipeline.kind == Pipeline.Kind.JAR:
        upload = run.upload
        if upload is None:
            raise StageFailed(D(N_("The upload this run builds was removed; upload it again.")))
        path = storage.resolve(upload.path)
        if not path.exists() or storage.file_sha256(path) != upload.sha256:
            raise StageFailed(
                D(N_("The stored upload %(file)s is missing or changed; upload it again."), file=upload.filename)
            )
        context.tag = f"{run.number}-{upload.sha256[:12]}"
        update(
            stage,
            detail={"file": upload.filename, "sha256": upload.sha256, "size": upload.size, "version": upload.version},
        )
        return Stage.Status.SUCCEEDED, D(
            N_("%(file)s (%(size)s bytes, SHA-256 %(sha)s…)%(version)s"),
            file=upload.filename,
            size=upload.size,
            sha=upload.sha256[:12],
            version=f", {upload.version}" if upload.version else "",
        )
    source = _source_of(pipeline)
    log(D(N_("Reading %(branch)s of %(url)s."), branch=pipeline.git_branch, url=pipeline.git_url))
    sha = run.commit or git.head(source)
    commit = git.checkout(source, context.folder / "src", sha)
    dockerfile = context.folder / "src" / pipeline.context_dir / pipeline.dockerfile
    if not dockerfile.resolve().is_relative_to((context.folder / "src").resolve()) or not dockerfile.is_file():
        raise StageFailed(
            D(N_("The repository has no %(file)s at commit %(sha)s."), file=pipeline.dockerfile, sha=commit.sha[:12])
        )
    Run.objects.filter(pk=run.pk).update(commit=commit.sha, commit_message=commit.subject[:300])
    run.commit = commit.sha
    context.tag = f"{run.number}-{commit.sha[:12]}"
    update(stage, detail={"commit": commit.sha, "subject": commit.subject, "author": commit.author})
    return Stage.Status.SUCCEEDED, D(
        N_("Commit %(sha)s: %(subject)s (%(author)s)"),
        sha=commit.sha[:12],
        subject=commit.subject,
        author=commit.author,
    )


# Build -------------------------------------------------------------------------------------------------------


def stage_build(context: Context, stage: Stage, log: StageLog) -> tuple[str, str]:
    pipeline = context.pipeline
    if pipeline.kind == Pipeline.Kind.REPOSITORY:
        context.build_digest = incluster.build(context, stage, log)
        context.archive = context.folder / "image.tar"
        log(D(N_("Reading the built image %(image)s back to scan it."), image=context.reference))
        oci.pull(context.access, context.reference, context.archive)
        return Stage.Status.SUCCEEDED, D(N_("Built %(image)s in the cluster."), image=context.reference)
    base = pipeline.base_image
    if base is None or not base.active:
        raise StageFailed(D(N_("The pipeline's base image is no longer approved; pick another.")))
    template = uploads.TEMPLATES.get(pipeline.template)
    if template is None:
        raise StageFailed(D(N_("The pipeline's start template no longer exists; pick another.")))
    upload = context.run.upload
    layer = context.folder / "layer.tar"
    uploads.layer(storage.resolve(upload.path), template, layer, int(upload.uploaded_at.timestamp()))
    context.archive = context.folder / "image.tar"
    labels = {
        "org.opencontainers.image.base.name": base.reference,
        "org.opencontainers.image.base.digest": base.digest,
        "org.opencontainers.image.version": upload.version or context.tag,
        "io.kubemate.pipeline": f"{pipeline.project.slug}/{pipeline.name}",
        "io.kubemate.run": str(context.run.number),
        "io.kubemate.upload.sha256": upload.sha256,
    }
    log(
        D(
            N_("Adding %(file)s to %(base)s as %(target)s."),
            file=upload.filename,
            base=base.pinned,
            target=template.target,
        )
    )
    base_access = oci.access_for(pipeline.registry)
    if not base.reference.startswith(pipeline.registry.host + "/"):
        owner = Registry.objects.filter(host=base.reference.split("/", 1)[0]).first()
        if owner is not None:
            base_access = oci.access_for(owner)
    oci.build(
        base_access,
        oci.Build(
            base=base.pinned,
            layer=layer,
            tag=context.reference,
            entrypoint=uploads.entrypoint(template),
            env=uploads.environment(template, pipeline.jvm_options, pipeline.env or []),
            labels=labels,
            workdir=template.workdir,
            user=template.user,
        ),
        context.archive,
    )
    size = context.archive.stat().st_size
    update(
        stage,
        detail={"base": base.pinned, "template": pipeline.template, "image": context.reference, "archive_size": size},
    )
    return Stage.Status.SUCCEEDED, D(
        N_("Image %(image)s assembled on %(base)s (%(mb)s MB), not pushed yet."),
        image=context.reference,
        base=base.name,
        mb=round(size / 1048576, 1),
    )


# Scan --------------------------------------------------------------------------------------------------------


def _store_artifact(run: Run, kind: str, name: str, path: Path) -> Artifact:
    artifact, _created = Artifact.objects.update_or_create(
        run=run,
        kind=kind,
        defaults={
            "name": name,
            "path": storage.relative(path),
            "size": path.stat().st_size,
            "sha256": storage.file_sha256(path),
        },
    )
    return artifact


def _exceptions(project_id: int) -> list[ScanException]:
    now = timezone.now()
    return list(ScanException.objects.filter(project_id=project_id, revoked_at__isnull=True, expires_at__gt=now))


def stage_scan(context: Context, stage: Stage, log: StageLog) -> tuple[str, str]:
    run, pipeline = context.run, context.pipeline
    database = VulnDatabase.objects.order_by("-imported_at").first()
    if database is None:
        raise StageFailed(
            D(
                N_(
                    "No vulnerability database is imported, so the image cannot be scanned; an "
                    "administrator imports one under CI/CD → Vulnerability database."
                )
            )
        )
    folder = storage.resolve(f"vulndb/{database.folder}")
    log(
        D(
            N_("Scanning offline against the vulnerability database of %(date)s (%(records)s records)."),
            date=database.data_date.date().isoformat(),
            records=database.records,
        )
    )
    report_path, sbom_path = context.folder / "scan.json", context.folder / "sbom.cdx.json"
    report = scanner.scan(context.archive, folder, report_path, sbom_path, context.folder, name=context.reference)
    _store_artifact(run, Artifact.Kind.SCAN, "scan.json", report_path)
    _store_artifact(run, Artifact.Kind.SBOM, "sbom.cdx.json", sbom_path)
    policy = Policy.objects.filter(project_id=pipeline.project_id).first()
    block_on = policy.block_on if policy else Policy.Block.HIGH
    blocking_levels = set(at_or_above(block_on))
    exceptions = _exceptions(pipeline.project_id)
    rows, counts, blocking, excepted = [], {}, [], 0
    for v in report.vulnerabilities:
        ids = {v.id, *v.aliases}
        matched = next((e for e in exceptions if e.matches(ids, v.package)), None)
        blocks = v.severity in blocking_levels and matched is None
        counts[v.severity] = counts.get(v.severity, 0) + 1
        excepted += matched is not None
        if blocks:
            blocking.append(v)
        rows.append(
            Finding(
                run=run,
                vuln_id=v.id,
                aliases=v.aliases,
                severity=v.severity,
                score=v.score,
                ecosystem=v.ecosystem,
                package=v.package,
                version=v.version,
                fixed=", ".join(v.fixed)[:200],
                source=v.source,
                summary=v.summary,
                blocking=blocks,
                exception=matched,
            )
        )
    with transaction.atomic():
        Finding.objects.filter(run=run).delete()
        Finding.objects.bulk_create(rows, batch_size=500)
        Run.objects.filter(pk=run.pk).update(
            counts={**counts, "blocking": len(blocking), "excepted": excepted, "packages": report.packages}
        )
    detail = {
        "database": database.pk,
        "data_date": database.data_date.isoformat(),
        "packages": report.packages,
        "counts": counts,
        "blocking": len(blocking),
        "excepted": excepted,
        "policy": block_on,
        "truncated": report.truncated,
    }
    update(stage, detail=detail)
    for v in blocking[:20]:
        log(
            D(
                N_("%(severity)s %(id)s in %(package)s %(version)s (fixed in %(fixed)s)"),
                severity=word(v.severity),
                id=v.id,
                package=v.package,
                version=v.version,
                fixed=", ".join(v.fixed) or "—",
            ),
            "error",
        )
    if blocking:
        first = blocking[0]
        raise Blocked(
            D(
                N_(
                    "Blocked by the project's policy: %(count)s finding(s) at or above %(level)s, e.g. %(id)s in "
                    "%(package)s %(version)s. Fix them, or have an exception granted, and run again."
                ),
                count=len(blocking),
                level=word(block_on),
                id=first.id,
                package=first.package,
                version=first.version,
            )
        )
    total = len(report.vulnerabilities)
    if total:
        return Stage.Status.WARNING, D(
            N_("%(total)s vulnerabilities in %(packages)s packages, none blocking (%(excepted)s under an exception)."),
            total=total,
            packages=report.packages,
            excepted=excepted,
        )
    return Stage.Status.SUCCEEDED, D(N_("No known vulnerabilities in %(packages)s packages."), packages=report.packages)


# Push --------------------------------------------------------------------------------------------------------


def stage_push(context: Context, stage: Stage, log: StageLog) -> tuple[str, str]:
    run = context.run
    if context.pipeline.kind == Pipeline.Kind.REPOSITORY:
        digest = oci.digest(context.access, context.reference)
        if context.build_digest and context.build_digest != digest:
            raise StageFailed(
                D(
                    N_("The registry holds %(found)s for %(image)s, not the built %(built)s."),
                    found=digest,
                    image=context.reference,
                    built=context.build_digest,
                )
            )
        message = D(
            N_("The build pushed %(image)s; the registry holds %(digest)s."), image=context.reference, digest=digest
        )
    else:
        log(D(N_("Pushing %(image)s."), image=context.reference))
        digest = oci.push(context.access, context.archive, context.reference)
        message = D(N_("Pushed %(image)s; the registry holds %(digest)s."), image=context.reference, digest=digest)
    Run.objects.filter(pk=run.pk).update(image=context.reference, digest=digest)
    run.image, run.digest = context.reference, digest
    Artifact.objects.update_or_create(
        run=run, kind=Artifact.Kind.IMAGE, defaults={"name": f"{context.reference}@{digest}", "path": ""}
    )
    update(stage, detail={"image": context.reference, "digest": digest})
    return Stage.Status.SUCCEEDED, message


# Deploy ------------------------------------------------------------------------------------------------------


def _release_spec(pipeline: Pipeline, image: str) -> dict:
    spec = render.default_spec()
    spec["image"] = image
    spec["ports"] = [pipeline.port]
    spec["readiness"] = {"type": "tcp", "path": "", "port": pipeline.port, "initial_delay": 5, "period": 10}
    spec["liveness"] = {"type": "tcp", "path": "", "port": pipeline.port, "initial_delay": 30, "period": 20}
    spec["resources"] = {"cpu_request": "250m", "cpu_limit": "1", "memory_request": "512Mi", "memory_limit": "1Gi"}
    return spec


def _follow_rollout(context: Context, job: Job, log: StageLog) -> Job:
    """Run the rollout wait here when no worker has taken it yet (a worker busy with this run could not), else wait
    for the worker that has; the Job at its end."""
    revision_id = (job.args or [None])[0]
    if revision_id is not None:
        wait_rollout(str(job.pk), revision_id)  # claims it only while Pending: never runs twice
    deadline = time.monotonic() + settings.KUBEMATE_RELEASE_ROLLOUT_TIMEOUT_SECONDS + 60
    while True:
        job.refresh_from_db()
        if job.is_finished:
            return job
        if time.monotonic() > deadline:
            raise StageFailed(D(N_("The rollout did not finish in time; follow it on the release's page.")))
        context.job.check_cancelled()
        time.sleep(ROLLOUT_POLL)


def stage_deploy(context: Context, stage: Stage, log: StageLog) -> tuple[str, str]:
    run, pipeline = context.run, context.pipeline
    actor = run.actor
    if actor is None or not access.may(actor, CICD_DEPLOY, pipeline):
        raise StageFailed(
            D(
                N_("%(user)s may not deploy from pipelines in namespace %(namespace)s."),
                user=actor.get_username() if actor else "—",
                namespace=pipeline.namespace,
            )
        )
    image = f"{run.image}@{run.digest}"
    release = Release.objects.filter(
        project=pipeline.project, namespace=pipeline.namespace, name=pipeline.release
    ).first()
    try:
        if release is None:
            log(
                D(
                    N_("Creating release %(name)s in %(namespace)s."),
                    name=pipeline.release,
                    namespace=pipeline.namespace,
                )
            )
            release = releases.create_release(
                actor=actor,
                project=pipeline.project,
                namespace=pipeline.namespace,
                name=pipeline.release,
                spec=_release_spec(pipeline, image),
            )
        Run.objects.filter(pk=run.pk).update(release=release)
        if pipeline.deploy_mode == Pipeline.DeployMode.CANARY and releases.last_applied(release):
            canary = canaries.start_canary(actor=actor, release=release, image=image, weight=pipeline.canary_weight)
            update(stage, detail={"release": release.pk, "canary": canary.pk, "image": image})
            return Stage.Status.SUCCEEDED, D(
                N_(
                    "Canary of %(name)s started with %(weight)s%% of the traffic; promote or abort it on the "
                    "release's page."
                ),
                name=release.name,
                weight=pipeline.canary_weight,
            )
        if pipeline.deploy_mode == Pipeline.DeployMode.CANARY:
            log(D(N_("%(name)s has no stable version yet: this first deploy is a plain one."), name=release.name))
        outcome = releases.deploy_release(actor=actor, release=release, spec={**release.spec, "image": image})
    except releases.ReleaseError as exc:
        raise StageFailed(sentence_of(exc)) from None
    if outcome.waiting:
        # Four-eyes approval: the deploy is a change request; the approver's decision applies it.
        update(stage, detail={"release": release.pk, "image": image, "change_request": outcome.change_request})
        return Stage.Status.WARNING, D(
            N_("The deploy of %(image)s waits for approval as change request #%(number)s."),
            image=image,
            number=outcome.change_request,
        )
    if outcome.revision is None:
        update(stage, detail={"release": release.pk, "image": image})
        return Stage.Status.SUCCEEDED, D(
            N_("Nothing to change: %(name)s already runs %(image)s."), name=release.name, image=image
        )
    Run.objects.filter(pk=run.pk).update(revision=outcome.revision.number)
    log(D(N_("Revision %(number)s applied; following its rollout."), number=outcome.revision.number))
    update(
        stage,
        detail={
            "release": release.pk,
            "revision": outcome.revision.number,
            "image": image,
            "rollout_job": str(outcome.job.pk),
        },
    )
    ended = _follow_rollout(context, outcome.job, log)
    if ended.status != Job.Status.SUCCEEDED:
        raise StageFailed(
            D(
                N_("Revision %(number)s did not roll out: %(reason)s"),
                number=outcome.revision.number,
                reason=ended.message,
            )
        )
    return Stage.Status.SUCCEEDED, D(
        N_("Release %(name)s runs revision %(number)s with %(image)s."),
        name=release.name,
        number=outcome.revision.number,
        image=image,
    )


STAGES: dict[str, Callable[[Context, Stage, StageLog], tuple[str, str]]] = {
    Stage.Key.SOURCE: stage_source,
    Stage.Key.BUILD: stage_build,
    Stage.Key.SCAN: stage_scan,
    Stage.Key.PUSH: stage_push,
    Stage.Key.DEPLOY: stage_deploy,
}
