"""Repository pipelines: the push webhook (signed with the pipeline's secret; a bad signature is refused, a good one
starts a run of the pushed commit as the webhook's owner), and the in-cluster build as a Kubernetes Job where the
cluster has no Tekton (kwok completes the Job's pod; the image the build pushes is put in the registry by the test,
since nothing runs Kaniko here)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.urls import reverse
from kubernetes import client as k8s

from apps.cicd import incluster, services, tasks
from apps.cicd.models import Run
from apps.core.models import AuditEvent
from tests.cicd.conftest import git
from tests.plugins.tekton import done_condition

pytestmark = [pytest.mark.sandbox, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def push_event(branch: str, after: str) -> bytes:
    return json.dumps({"ref": f"refs/heads/{branch}", "after": after, "repository": {"name": "app"}}).encode()


def signed(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_badly_signed_push_is_refused_and_a_well_signed_one_starts_a_run(client, repo_pipeline, bare_repository):
    _url, head, _work = bare_repository
    url = reverse("cicd:webhook", args=[repo_pipeline.pk])
    body = push_event("main", head)
    secret = services.webhook_secret(repo_pipeline)

    refused = client.post(url, body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signed("wrong", body))
    assert refused.status_code == 403
    unsigned = client.post(url, body, content_type="application/json")
    assert unsigned.status_code == 403
    tampered = client.post(
        url,
        push_event("main", "f" * 40),
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=signed(secret, body),
    )
    assert tampered.status_code == 403
    assert not Run.objects.filter(pipeline=repo_pipeline).exists()
    assert AuditEvent.objects.filter(action="cicd.webhook.refused", object_name=repo_pipeline.name).count() == 3

    other = push_event("feature", head)
    ignored = client.post(url, other, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signed(secret, other))
    assert ignored.status_code == 202 and not Run.objects.filter(pipeline=repo_pipeline).exists()

    started = client.post(
        url,
        body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT="push",
        HTTP_X_HUB_SIGNATURE_256=signed(secret, body),
    )
    assert started.status_code == 201, started.content
    run = Run.objects.get(pipeline=repo_pipeline)
    assert started.json()["run"] == run.number == 1
    assert run.trigger == Run.Trigger.WEBHOOK and run.commit == head and run.actor == repo_pipeline.webhook_owner
    event = AuditEvent.objects.get(action="cicd.run.start", object_name=repo_pipeline.name)
    assert event.actor_id == repo_pipeline.webhook_owner_id and event.detail["trigger"] == "webhook"

    # The secret is per pipeline: a new one stops the old one at once.
    services.rotate_webhook_secret(actor=repo_pipeline.webhook_owner, pipeline=repo_pipeline)
    stale = client.post(url, body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signed(secret, body))
    assert stale.status_code == 403


def test_without_tekton_a_repository_builds_as_a_kubernetes_job(
    team, repo_pipeline, bare_repository, vulndb, oci_registry, samples, sandbox, monkeypatch, tmp_path
):
    _url, head, work = bare_repository
    (work / "README").write_text("second\n")
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "Second version", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)
    newest = git("rev-parse", "HEAD", cwd=work).strip()
    monkeypatch.setattr(incluster, "serves_tekton", lambda k: False)
    services.save_policy(
        actor=team["admin"], project=team["project"], block_on="none", max_concurrent_runs=2, keep_days=30, keep_runs=10
    )
    # What Kaniko would push for run #1: kwok runs no container, so the test puts the image there.
    built = oci_registry.ref(repo_pipeline.repository, f"1-{newest[:12]}")
    samples.push_base_image(str(oci_registry.crane_path), built, folder=tmp_path / "img")

    run = services.start_run(actor=team["user"], pipeline=repo_pipeline)
    run.refresh_from_db()
    tasks.execute_run(str(run.job_id), run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.message
    assert run.commit == newest and run.commit_message == "Second version"
    assert run.digest == oci_registry.digest(built)
    build = run.stages.get(key="build")
    assert build.detail["engine"] == "job" and build.detail["kind"] == "Job"
    steps = {s["name"]: s["status"] for t in build.detail["tasks"] for s in t["steps"]}
    assert steps.get("build-and-push") == "succeeded"
    job = k8s.BatchV1Api(sandbox.api_client).read_namespaced_job(build.detail["object"], team["namespace"])
    assert job.metadata.labels["kubemate.io/pipeline"] == repo_pipeline.name
    container = job.spec.template.spec.containers[0]
    assert f"--destination={built}" in container.args
    assert job.spec.template.spec.init_containers[0].name == "clone"
    secrets = k8s.CoreV1Api(sandbox.api_client).list_namespaced_secret(team["namespace"]).items
    assert build.detail["object"] not in {s.metadata.name for s in secrets}, "the build's credentials are deleted"
    assert head != newest


def test_with_tekton_a_repository_builds_as_a_pipelinerun_the_console_shows(
    team, repo_pipeline, bare_repository, vulndb, oci_registry, samples, sandbox, tekton, client, tmp_path
):
    _url, head, _work = bare_repository
    services.save_policy(
        actor=team["admin"], project=team["project"], block_on="none", max_concurrent_runs=2, keep_days=30, keep_runs=10
    )
    built = oci_registry.ref(repo_pipeline.repository, f"1-{head[:12]}")
    samples.push_base_image(str(oci_registry.crane_path), built, folder=tmp_path / "img")

    run = services.start_run(actor=team["user"], pipeline=repo_pipeline)
    run.refresh_from_db()
    tasks.execute_run(str(run.job_id), run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED, run.message
    build = run.stages.get(key="build")
    assert build.detail["engine"] == "tekton" and build.detail["kind"] == "PipelineRun"
    # The real controller took the rendered PipelineRun to Succeeded, through a TaskRun whose steps kwok ran.
    pipeline_run = tekton.get("PipelineRun", team["namespace"], build.detail["object"])
    assert done_condition(pipeline_run)["status"] == "True"
    assert pipeline_run["spec"]["pipelineRef"]["name"] == f"km-{repo_pipeline.name}"
    assert {"name": "revision", "value": head} in pipeline_run["spec"]["params"]
    (task,) = build.detail["tasks"]
    assert task["name"] == "build" and task["status"] == "succeeded"
    assert [(s["name"], s["status"]) for s in task["steps"]] == [
        ("clone", "succeeded"),
        ("build-and-push", "succeeded"),
    ]
    assert all(s["started"] and s["finished"] for s in task["steps"])
    assert run.digest == oci_registry.digest(built)

    client.force_login(team["user"])
    page = client.get(reverse("cicd:run_detail", args=[run.pk])).content.decode()
    assert f"Tekton PipelineRun {build.detail['object']}" in page
    assert 'data-step="clone" data-status="succeeded"' in page
    assert 'data-step="build-and-push" data-status="succeeded"' in page
    assert 'data-stage="build" data-status="succeeded"' in page
