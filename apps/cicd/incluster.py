"""In-cluster builds of repository pipelines: a Tekton PipelineRun where the cluster serves Tekton (tekton.dev/v1),
else a Kubernetes Job; both clone the commit with a git image and build and push with Kaniko, images taken from
the pipeline's own registry (settings.KUBEMATE_CICD_GIT_IMAGE / KUBEMATE_CICD_BUILDER_IMAGE), so nothing is pulled
from outside the bank.

Everything is created as the run's actor through the one Kubernetes door (clusters/kube.py), so the cluster
authorizes it (cicd.run's rules). The registry and repository credentials travel in a Secret owned by the build
object (removed with it, and deleted as soon as the build ends); they are never in the object's spec, a log or a
task argument. ``build`` follows the object's status every few seconds into the stage's detail (tasks and steps,
with their times), deletes it when the run is cancelled, and returns the digest the build reported ("" when it
reported none: the push stage then reads it from the registry).
"""

from __future__ import annotations

import base64
import json
import shutil
import time
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from apps.cicd.models import Stage
from apps.clusters import kube
from apps.core import crypto
from apps.core.deferred import N_, Failure, fit
from apps.core.deferred import text as D
from apps.core.jobs import JobCancelled

MANAGED = {"app.kubernetes.io/managed-by": "kubemate"}
PIPELINE_LABEL = "kubemate.io/pipeline"
RUN_LABEL = "kubemate.io/run"


class BuildFailed(Failure):
    """The in-cluster build failed or could not start; the sentence says why."""


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def serves_tekton(k: kube.Client) -> bool:
    """Whether the cluster serves Tekton's v1 PipelineRuns (its CRDs are installed)."""
    try:
        found = k.json("GET", "/apis/tekton.dev/v1")
    except kube.NotFound:
        return False
    return any(r.get("name") == "pipelineruns" for r in found.get("resources") or [])


def object_name(pipeline, number: int) -> str:
    suffix = f"-{number}"
    return f"km-{pipeline.name}"[: 63 - len(suffix)].rstrip("-") + suffix


def _images(registry) -> tuple[str, str]:
    host = registry.host
    return (
        settings.KUBEMATE_CICD_GIT_IMAGE.replace("{registry}", host),
        settings.KUBEMATE_CICD_BUILDER_IMAGE.replace("{registry}", host),
    )


CLONE_SCRIPT = """set -eu
git config --global credential.helper \
  '!f() { test -n "${GIT_TOKEN:-}" || exit 0; echo "username=${GIT_USERNAME:-git}"; echo "password=${GIT_TOKEN}"; }; f'
git clone --quiet --depth 20 --single-branch --branch "$BRANCH" -- "$URL" "$DEST"
cd "$DEST" && git checkout --quiet --detach "$REVISION" && git log -1 --format='%H %s'
"""


def _kaniko_args(pipeline, destination: str, source: str, digest_file: str) -> list[str]:
    registry = pipeline.registry
    args = [
        f"--dockerfile={source}/{pipeline.context_dir.strip('/') or '.'}/{pipeline.dockerfile}",
        f"--context=dir://{source}/{pipeline.context_dir.strip('/') or '.'}",
        f"--destination={destination}",
        f"--digest-file={digest_file}",
        "--reproducible",
        "--cleanup",
    ]
    if registry.insecure:
        args += ["--insecure", "--insecure-pull", "--skip-tls-verify", "--skip-tls-verify-pull"]
    if registry.ca_pem:
        args += [f"--registry-certificate={registry.host}=/kaniko/.docker/ca.crt"]
    return args


def _clone_env(secret: str, pipeline, revision: str, dest: str) -> list[dict]:
    def from_secret(name: str, key: str) -> dict:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": True}}}

    return [
        {"name": "URL", "value": pipeline.git_url},
        {"name": "BRANCH", "value": pipeline.git_branch},
        {"name": "REVISION", "value": revision},
        {"name": "DEST", "value": dest},
        {"name": "HOME", "value": "/tmp"},  # noqa: S108 (the build container's own, emptied with it)
        from_secret("GIT_USERNAME", "username"),
        from_secret("GIT_TOKEN", "token"),
    ]


def secret_manifest(name: str, namespace: str, pipeline, labels: dict) -> dict:
    """The build's credentials: the registry's Docker config (and CA), the repository's user name and token."""
    registry = pipeline.registry
    config: dict = {"auths": {}}
    if registry.username:
        password = crypto.decrypt(registry.password_encrypted) if registry.password_encrypted else ""
        token = base64.b64encode(f"{registry.username}:{password}".encode()).decode()
        config["auths"][registry.host] = {"auth": token}
    data = {"config.json": json.dumps(config)}
    if registry.ca_pem:
        data["ca.crt"] = registry.ca_pem
    if pipeline.git_token_encrypted:
        data["username"] = pipeline.git_username or "git"
        data["token"] = crypto.decrypt(pipeline.git_token_encrypted)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "type": "Opaque",
        "stringData": data,
    }


def tekton_manifests(pipeline, run, name: str, secret: str) -> tuple[dict, dict]:
    """The Tekton Pipeline (one per Kubemate pipeline, applied again each run) and the run's PipelineRun."""
    git_image, builder_image = _images(pipeline.registry)
    labels = {**MANAGED, PIPELINE_LABEL: pipeline.name}
    tekton_pipeline = {
        "apiVersion": "tekton.dev/v1",
        "kind": "Pipeline",
        "metadata": {"name": f"km-{pipeline.name}"[:63], "namespace": pipeline.namespace, "labels": labels},
        "spec": {
            "description": f"Kubemate pipeline {pipeline.project.slug}/{pipeline.name}: clone, build and push.",
            "params": [{"name": "revision", "type": "string"}, {"name": "image", "type": "string"}],
            "workspaces": [{"name": "source"}, {"name": "credentials"}],
            # No pipeline-level result: one the build did not report would fail the run; the digest is read from
            # the TaskRun's results when Kaniko wrote it, and always from the registry by the push stage.
            "tasks": [
                {
                    "name": "build",
                    "params": [
                        {"name": "revision", "value": "$(params.revision)"},
                        {"name": "image", "value": "$(params.image)"},
                    ],
                    "workspaces": [
                        {"name": "source", "workspace": "source"},
                        {"name": "credentials", "workspace": "credentials"},
                    ],
                    "taskSpec": {
                        "params": [{"name": "revision", "type": "string"}, {"name": "image", "type": "string"}],
                        "workspaces": [{"name": "source"}, {"name": "credentials", "mountPath": "/kaniko/.docker"}],
                        "results": [{"name": "IMAGE_DIGEST", "description": "The pushed image's digest."}],
                        "steps": [
                            {
                                "name": "clone",
                                "image": git_image,
                                "env": _clone_env(
                                    secret, pipeline, "$(params.revision)", "$(workspaces.source.path)/src"
                                ),
                                "script": CLONE_SCRIPT,
                            },
                            {
                                "name": "build-and-push",
                                "image": builder_image,
                                # Named, so the controller never asks the registry for the image's entrypoint.
                                "command": ["/kaniko/executor"],
                                "env": [{"name": "DOCKER_CONFIG", "value": "/kaniko/.docker"}],
                                "args": _kaniko_args(
                                    pipeline,
                                    "$(params.image)",
                                    "$(workspaces.source.path)/src",
                                    "$(results.IMAGE_DIGEST.path)",
                                ),
                            },
                        ],
                    },
                }
            ],
        },
    }
    pipeline_run = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {
            "name": name,
            "namespace": pipeline.namespace,
            "labels": {**labels, RUN_LABEL: str(run.number)},
        },
        "spec": {
            "pipelineRef": {"name": tekton_pipeline["metadata"]["name"]},
            "params": [
                {"name": "revision", "value": run.commit},
                {"name": "image", "value": f"{pipeline.image_repository}:{run_tag(run)}"},
            ],
            "workspaces": [
                {"name": "source", "emptyDir": {}},
                {"name": "credentials", "secret": {"secretName": secret}},
            ],
            "timeouts": {"pipeline": f"{settings.KUBEMATE_CICD_BUILD_TIMEOUT_SECONDS}s"},
        },
    }
    return tekton_pipeline, pipeline_run


def run_tag(run) -> str:
    return f"{run.number}-{run.commit[:12]}"


def job_manifest(pipeline, run, name: str, secret: str) -> dict:
    """The Job fallback: the clone as an init container, Kaniko as the container; the digest in its termination
    message."""
    git_image, builder_image = _images(pipeline.registry)
    labels = {**MANAGED, PIPELINE_LABEL: pipeline.name, RUN_LABEL: str(run.number)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": pipeline.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": settings.KUBEMATE_CICD_BUILD_TIMEOUT_SECONDS,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "initContainers": [
                        {
                            "name": "clone",
                            "image": git_image,
                            "command": ["sh", "-c", CLONE_SCRIPT],
                            "env": _clone_env(secret, pipeline, run.commit, "/workspace/src"),
                            "volumeMounts": [{"name": "source", "mountPath": "/workspace"}],
                        }
                    ],
                    "containers": [
                        {
                            "name": "build-and-push",
                            "image": builder_image,
                            "command": ["/kaniko/executor"],
                            "args": _kaniko_args(
                                pipeline,
                                f"{pipeline.image_repository}:{run_tag(run)}",
                                "/workspace/src",
                                "/dev/termination-log",
                            ),
                            "env": [{"name": "DOCKER_CONFIG", "value": "/kaniko/.docker"}],
                            "volumeMounts": [
                                {"name": "source", "mountPath": "/workspace"},
                                {"name": "credentials", "mountPath": "/kaniko/.docker", "readOnly": True},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "source", "emptyDir": {}},
                        {"name": "credentials", "secret": {"secretName": secret}},
                    ],
                },
            },
        },
    }


# Following -----------------------------------------------------------------------------------------------------


def _condition(obj: dict, kind: str) -> dict:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return {}


def _state(container_state: dict) -> tuple[str, str, str, int | None, str]:
    """(status, started, finished, exit code, reason) of a container or step state."""
    if "terminated" in container_state:
        t = container_state["terminated"] or {}
        code = t.get("exitCode")
        status = "succeeded" if code == 0 else "failed"
        return status, t.get("startedAt") or "", t.get("finishedAt") or "", code, t.get("reason") or ""
    if "running" in container_state:
        return "running", (container_state["running"] or {}).get("startedAt") or "", "", None, ""
    return "pending", "", "", None, (container_state.get("waiting") or {}).get("reason") or ""


def _step(name: str, state: dict) -> dict:
    status, started, finished, code, reason = _state(state)
    return {
        "name": name,
        "status": status,
        "started": started,
        "finished": finished,
        "exit_code": code,
        "reason": reason[:100],
    }


def _status_of(condition: dict) -> str:
    value = condition.get("status")
    if value == "True":
        return "succeeded"
    if value == "False":
        return "failed"
    return "running" if condition else "pending"


def tekton_tasks(k: kube.Client, namespace: str, pipeline_run: dict) -> list[dict]:
    """The PipelineRun's TaskRuns (from its childReferences) with their steps."""
    tasks = []
    for child in ((pipeline_run.get("status") or {}).get("childReferences") or [])[:20]:
        if child.get("kind") != "TaskRun":
            continue
        task_run = k.read("TaskRun", namespace, child.get("name", "")) or {}
        status = task_run.get("status") or {}
        steps = []
        for step in (status.get("steps") or [])[:20]:
            state = {key: step[key] for key in ("terminated", "running", "waiting") if key in step}
            steps.append(_step(step.get("name", ""), state))
        condition = _condition(task_run, "Succeeded")
        tasks.append(
            {
                "name": child.get("pipelineTaskName") or child.get("name"),
                "object": child.get("name"),
                "status": _status_of(condition),
                "reason": fit(condition.get("reason") or "", 100),
                "started": status.get("startTime") or "",
                "finished": status.get("completionTime") or "",
                "steps": steps,
                "results": {r.get("name"): str(r.get("value"))[:100] for r in (status.get("results") or [])[:5]},
            }
        )
    return tasks


def job_tasks(k: kube.Client, namespace: str, job: dict) -> list[dict]:
    name = (job.get("metadata") or {}).get("name", "")
    pods = k.list("Pod", namespace, label_selector=f"batch.kubernetes.io/job-name={name}")
    if not pods:
        return []
    pod = sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")[-1]
    status = pod.get("status") or {}
    steps = [_step(c.get("name", ""), c.get("state") or {}) for c in status.get("initContainerStatuses") or []]
    steps += [_step(c.get("name", ""), c.get("state") or {}) for c in status.get("containerStatuses") or []]
    phase = status.get("phase") or "Pending"
    return [
        {
            "name": "build",
            "object": (pod.get("metadata") or {}).get("name", ""),
            "status": {"Succeeded": "succeeded", "Failed": "failed", "Running": "running"}.get(phase, "pending"),
            "reason": fit(status.get("reason") or "", 100),
            "started": status.get("startTime") or "",
            "finished": "",
            "steps": steps,
        }
    ]


def _job_digest(k: kube.Client, namespace: str, job: dict) -> str:
    name = (job.get("metadata") or {}).get("name", "")
    for pod in k.list("Pod", namespace, label_selector=f"batch.kubernetes.io/job-name={name}"):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            message = ((container.get("state") or {}).get("terminated") or {}).get("message") or ""
            if message.strip().startswith("sha256:"):
                return message.strip()[:71]
    return ""


def _seconds(start: str, end: str) -> float | None:
    try:
        return (
            datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(start.replace("Z", "+00:00"))
        ).total_seconds()
    except (ValueError, AttributeError):
        return None


def build(context, stage, log) -> str:
    """Create the build in the cluster as the run's actor and follow it to its end; the reported digest."""
    run, pipeline = context.run, context.pipeline
    namespace = pipeline.namespace
    name = object_name(pipeline, run.number)
    deadline = time.monotonic() + settings.KUBEMATE_CICD_BUILD_TIMEOUT_SECONDS + 60
    try:
        with kube.client(pipeline.project.cluster, as_user=run.actor) as k:
            tekton = serves_tekton(k)
            engine = "tekton" if tekton else "job"
            if tekton:
                tekton_pipeline, created = tekton_manifests(pipeline, run, name, name)
                k.apply(tekton_pipeline)
                _status, created = k.post("PipelineRun", namespace, body=created)
                kind = "PipelineRun"
                log(D(N_("Tekton PipelineRun %(name)s created in %(namespace)s."), name=name, namespace=namespace))
            else:
                _status, created = k.post("Job", namespace, body=job_manifest(pipeline, run, name, name))
                kind = "Job"
                log(
                    D(
                        N_("Tekton is not installed here: Kubernetes Job %(name)s created in %(namespace)s."),
                        name=name,
                        namespace=namespace,
                    )
                )
            owner = {
                "apiVersion": created.get("apiVersion"),
                "kind": kind,
                "name": name,
                "uid": (created.get("metadata") or {}).get("uid", ""),
                "blockOwnerDeletion": False,
            }
            secret = secret_manifest(name, namespace, pipeline, {**MANAGED, PIPELINE_LABEL: pipeline.name})
            secret["metadata"]["ownerReferences"] = [owner]
            k.post("Secret", namespace, body=secret)
            detail = {"engine": engine, "kind": kind, "object": name, "namespace": namespace, "tasks": []}
            Stage.objects.filter(pk=stage.pk).update(detail=detail)
            try:
                obj = _follow(context, k, kind, namespace, name, detail, stage, deadline, log)
            except JobCancelled:
                k.delete(kind, namespace, name)
                k.delete("Secret", namespace, name)
                log(D(N_("Cancelled: %(kind)s %(name)s deleted."), kind=kind, name=name), "warning")
                raise
            k.delete("Secret", namespace, name)
            if kind == "PipelineRun":
                condition = _condition(obj, "Succeeded")
                results = {r.get("name"): r.get("value") for r in (obj.get("status") or {}).get("results") or []}
                digest = str(results.get("IMAGE_DIGEST") or "")
                if not digest:
                    for task in detail["tasks"]:
                        digest = digest or task.get("results", {}).get("IMAGE_DIGEST", "")
            else:
                condition = (
                    _condition(obj, "Complete")
                    if _condition(obj, "Complete").get("status") == "True"
                    else {"status": "False", **_condition(obj, "Failed")}
                )
                digest = _job_digest(k, namespace, obj)
    except kube.KubeError as exc:
        raise BuildFailed(D(N_("The cluster refused the build: %(error)s"), error=str(exc))) from None
    if condition.get("status") != "True":
        raise BuildFailed(
            D(
                N_("The build %(name)s failed: %(reason)s %(message)s"),
                name=name,
                reason=condition.get("reason", ""),
                message=fit(condition.get("message") or "", 300),
            )
        )
    return digest.strip() if digest.strip().startswith("sha256:") else ""


def _follow(context, k, kind: str, namespace: str, name: str, detail: dict, stage, deadline: float, log) -> dict:
    seen: set[tuple[str, str, str]] = set()
    while True:
        obj = k.read(kind, namespace, name)
        if obj is None:
            raise BuildFailed(D(N_("%(kind)s %(name)s was deleted before it finished."), kind=kind, name=name))
        detail["tasks"] = tekton_tasks(k, namespace, obj) if kind == "PipelineRun" else job_tasks(k, namespace, obj)
        for task in detail["tasks"]:
            for step in task["steps"]:
                key = (task["name"], step["name"], step["status"])
                if key not in seen and step["status"] in ("running", "succeeded", "failed"):
                    seen.add(key)
                    took = _seconds(step["started"], step["finished"]) if step["finished"] else None
                    context_log = D(
                        N_("%(task)s / %(step)s: %(status)s%(took)s"),
                        task=task["name"],
                        step=step["name"],
                        status=step["status"],
                        took=f" ({took:.0f} s)" if took is not None else "",
                    )
                    log(context_log)
        detail["checked_at"] = timezone.now().isoformat(timespec="seconds")
        Stage.objects.filter(pk=stage.pk).update(detail=detail)
        if kind == "PipelineRun":
            if _condition(obj, "Succeeded").get("status") in ("True", "False"):
                return obj
        elif _condition(obj, "Complete").get("status") == "True" or _condition(obj, "Failed").get("status") == "True":
            return obj
        if time.monotonic() > deadline:
            k.delete(kind, namespace, name)
            raise BuildFailed(
                D(
                    N_("The build did not finish within %(seconds)s s; it was stopped."),
                    seconds=settings.KUBEMATE_CICD_BUILD_TIMEOUT_SECONDS,
                )
            )
        context.job.check_cancelled()
        context.job.progress(25)
        time.sleep(settings.KUBEMATE_FOLLOW_POLL_SECONDS)
