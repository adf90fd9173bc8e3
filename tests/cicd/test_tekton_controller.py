"""The real Tekton Pipelines controller (v1.0.0) against the sandbox: a Pipeline of two Tasks (clone, then build
with the commit the clone reported) runs to Succeeded through Tekton's own reconcilers, kwok playing the TaskRun
pods (deploy/sandbox/kwok/tekton-taskrun-pod.yaml); a failing step fails its TaskRun and the PipelineRun; a
cancelled PipelineRun ends Cancelled and its pod is deleted."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from kubernetes import client as k8s

from tests.helpers import create_namespace, delete_namespace, unique
from tests.plugins.tekton import done_condition

pytestmark = pytest.mark.sandbox

COMMIT = "4f2a9c1e0b7d"
GIT = "127.0.0.1:5000/tools/git:2.47"
GO = "127.0.0.1:5000/tools/golang:1.26"

CLONE = {
    "kind": "Task",
    "metadata": {
        "name": "git-clone",
        # what the kwok stage reports as the last step's results (a real clone would write /tekton/results/commit)
        "annotations": {"sandbox.kubemate.dev/tekton-results": f'{{"commit": "{COMMIT}"}}'},
    },
    "spec": {
        "params": [{"name": "url", "type": "string"}, {"name": "revision", "type": "string", "default": "main"}],
        "workspaces": [{"name": "output"}],
        "results": [{"name": "commit", "description": "the commit that was checked out"}],
        "steps": [
            {
                "name": "clone",
                "image": GIT,
                "workingDir": "$(workspaces.output.path)",
                "script": "git clone --depth 1 --branch $(params.revision) $(params.url) .",
            },
            {
                "name": "report",
                "image": GIT,
                "workingDir": "$(workspaces.output.path)",
                "script": "git rev-parse --short=12 HEAD | tr -d '\\n' > $(results.commit.path)",
            },
        ],
    },
}

BUILD = {
    "kind": "Task",
    "metadata": {"name": "go-build"},
    "spec": {
        "params": [{"name": "commit", "type": "string"}, {"name": "package", "type": "string", "default": "./..."}],
        "workspaces": [{"name": "source"}],
        "steps": [
            {
                "name": "compile",
                "image": GO,
                "workingDir": "$(workspaces.source.path)",
                "command": ["go", "build", "-ldflags", "-X main.commit=$(params.commit)", "$(params.package)"],
            },
            {
                "name": "test",
                "image": GO,
                "workingDir": "$(workspaces.source.path)",
                "command": ["go", "test", "$(params.package)"],
            },
        ],
    },
}

PIPELINE = {
    "kind": "Pipeline",
    "metadata": {"name": "repository-ci"},
    "spec": {
        "params": [{"name": "repo-url", "type": "string"}, {"name": "revision", "type": "string"}],
        "workspaces": [{"name": "source"}],
        "results": [{"name": "commit", "value": "$(tasks.clone.results.commit)"}],
        "tasks": [
            {
                "name": "clone",
                "taskRef": {"name": "git-clone"},
                "params": [
                    {"name": "url", "value": "$(params.repo-url)"},
                    {"name": "revision", "value": "$(params.revision)"},
                ],
                "workspaces": [{"name": "output", "workspace": "source"}],
            },
            {
                "name": "build",
                "taskRef": {"name": "go-build"},
                "params": [{"name": "commit", "value": "$(tasks.clone.results.commit)"}],
                "workspaces": [{"name": "source", "workspace": "source"}],
            },
        ],
    },
}


def pipeline_run(name: str, annotations: dict | None = None) -> dict:
    return {
        "kind": "PipelineRun",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "pipelineRef": {"name": "repository-ci"},
            "params": [
                {"name": "repo-url", "value": "https://git.example.internal/payments/api.git"},
                {"name": "revision", "value": "release-2.4"},
            ],
            "workspaces": [{"name": "source", "emptyDir": {}}],
        },
    }


def seconds(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def repository(sandbox, tekton):
    """A namespace holding the two Tasks and the Pipeline."""
    namespace = unique("tekton-ci")
    create_namespace(sandbox, namespace)
    tekton.wait_for(lambda: _has_default_sa(sandbox, namespace), 30, f"ServiceAccount {namespace}/default")
    for body in (CLONE, BUILD, PIPELINE):
        tekton.create(namespace, body)
    yield namespace
    delete_namespace(sandbox, namespace)


def _has_default_sa(sandbox, namespace: str) -> bool:
    try:
        k8s.CoreV1Api(sandbox.api_client).read_namespaced_service_account("default", namespace)
    except k8s.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_pipeline_run_of_two_tasks_succeeds(sandbox, tekton, repository):
    started = time.monotonic()
    tekton.create(repository, pipeline_run("ci-1"))
    run = tekton.wait_for_run(repository, "ci-1", timeout=90)
    took = time.monotonic() - started

    condition = done_condition(run)
    assert (condition["status"], condition["reason"]) == ("True", "Succeeded"), condition
    assert condition["message"] == "Tasks Completed: 2 (Failed: 0, Cancelled 0), Skipped: 0"
    assert run["status"]["results"] == [{"name": "commit", "value": COMMIT}]
    assert seconds(run["status"]["completionTime"]) >= seconds(run["status"]["startTime"])
    # the controller resolved the Pipeline and stored its spec in the run's status
    assert [t["name"] for t in run["status"]["pipelineSpec"]["tasks"]] == ["clone", "build"]

    taskruns = tekton.taskruns(run)
    assert set(taskruns) == {"clone", "build"}
    assert {ref["name"] for ref in run["status"]["childReferences"]} == {"ci-1-clone", "ci-1-build"}
    for task, steps in (("clone", ["clone", "report"]), ("build", ["compile", "test"])):
        taskrun = taskruns[task]
        assert done_condition(taskrun)["reason"] == "Succeeded", taskrun["status"]
        assert taskrun["metadata"]["labels"]["tekton.dev/pipelineRun"] == "ci-1"
        assert taskrun["metadata"]["labels"]["tekton.dev/pipelineTask"] == task
        assert [s["name"] for s in taskrun["status"]["steps"]] == steps
        for step in taskrun["status"]["steps"]:
            ended = step["terminated"]
            assert (ended["exitCode"], ended["reason"]) == (0, "Completed"), step
            # kwok lets the steps run 1 s after the controller marked the pod ready
            assert (seconds(ended["finishedAt"]) - seconds(ended["startedAt"])).total_seconds() >= 1, step
    # the build ran after the clone, with the commit the clone reported
    assert seconds(taskruns["build"]["status"]["startTime"]) >= seconds(taskruns["clone"]["status"]["completionTime"])
    assert {"name": "commit", "value": COMMIT} in taskruns["build"]["spec"]["params"]
    assert taskruns["clone"]["status"]["results"] == [{"name": "commit", "type": "string", "value": COMMIT}]

    # the pod the controller built: the entrypoint image in its init container, the steps wrapped by the
    # entrypoint with the substituted parameters, the emptyDir workspace mounted
    pod = k8s.CoreV1Api(sandbox.api_client).read_namespaced_pod(taskruns["build"]["status"]["podName"], repository)
    assert pod.status.phase == "Succeeded"
    assert pod.metadata.annotations["pipeline.tekton.dev/release"] == tekton.version
    assert pod.metadata.labels["app.kubernetes.io/managed-by"] == "tekton-pipelines"
    assert [c.image for c in pod.spec.init_containers if c.name == "prepare"] == [tekton.images["entrypoint"]]
    compile_step = next(c for c in pod.spec.containers if c.name == "step-compile")
    assert compile_step.command == ["/tekton/bin/entrypoint"]
    assert f"-X main.commit={COMMIT}" in compile_step.args
    workspace = next(v for v in pod.spec.volumes if v.name.startswith("ws-"))
    assert workspace.empty_dir is not None
    print(f"PipelineRun of two tasks: Succeeded in {took:.1f} s")


def test_failing_step_fails_the_task_run_and_the_pipeline_run(tekton, repository):
    # the annotation goes from the PipelineRun to its TaskRuns and their pods; only go-build has a step `compile`
    tekton.create(repository, pipeline_run("ci-2", {"sandbox.kubemate.dev/tekton-fail-step": "compile"}))
    run = tekton.wait_for_run(repository, "ci-2", timeout=90)

    condition = done_condition(run)
    assert (condition["status"], condition["reason"]) == ("False", "Failed"), condition
    assert condition["message"] == "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 0"
    taskruns = tekton.taskruns(run)
    assert done_condition(taskruns["clone"])["reason"] == "Succeeded"
    failed = done_condition(taskruns["build"])
    assert (failed["status"], failed["reason"]) == ("False", "Failed")
    assert failed["message"] == '"step-compile" exited with code 1'
    compile_step, test_step = taskruns["build"]["status"]["steps"]
    assert (compile_step["name"], compile_step["terminated"]["exitCode"]) == ("compile", 1)
    assert (test_step["name"], test_step["terminationReason"]) == ("test", "Skipped")
    # the clone succeeded, so the Pipeline's result that comes from it is still reported
    assert run["status"]["results"] == [{"name": "commit", "value": COMMIT}]


def test_cancelled_pipeline_run_stops_its_task_runs(sandbox, tekton, repository):
    # steps that run for a minute, so the run is cancelled while its first TaskRun's pod runs
    tekton.create(repository, pipeline_run("ci-3", {"sandbox.kubemate.dev/tekton-duration": "60s"}))
    core = k8s.CoreV1Api(sandbox.api_client)

    def running_pod():
        pods = core.list_namespaced_pod(repository, label_selector="tekton.dev/pipelineRun=ci-3").items
        return [
            p for p in pods if p.status.phase == "Running" and (p.metadata.annotations or {}).get("tekton.dev/ready")
        ]

    pod = tekton.wait_for(running_pod, 60, "the clone TaskRun's pod Running")[0]
    assert pod.metadata.labels["tekton.dev/pipelineTask"] == "clone"
    tekton.patch("PipelineRun", repository, "ci-3", {"spec": {"status": "Cancelled"}})
    run = tekton.wait_for_run(repository, "ci-3", timeout=60)

    condition = done_condition(run)
    assert (condition["status"], condition["reason"]) == ("False", "Cancelled"), condition

    def clone_done():
        # The TaskRun's own reconciler writes its status, which may land just after the PipelineRun's.
        clone = tekton.taskruns(run)["clone"]
        return clone if done_condition(clone) else None

    clone = tekton.wait_for(clone_done, 30, "the clone TaskRun's done condition")
    assert done_condition(clone)["reason"] == "TaskRunCancelled"
    assert "build" not in tekton.taskruns(run)
    # keep-pod-on-cancel is off in the release's feature-flags: the controller deletes the pod
    tekton.wait_for(lambda: not running_pod() and not _pod_exists(core, repository, pod.metadata.name), 30, "pod gone")


def _pod_exists(core, namespace: str, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, namespace)
    except k8s.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_controller_runs_with_the_release_configuration(sandbox, tekton):
    core = k8s.CoreV1Api(sandbox.api_client)
    info = core.read_namespaced_config_map("pipelines-info", tekton.namespace)
    assert info.data["version"] == tekton.version
    flags = core.read_namespaced_config_map("feature-flags", tekton.namespace).data
    assert flags["results-from"] == "termination-message"
    assert flags["keep-pod-on-cancel"] == "false"
    # the controller holds its leases as one process (another session's controller may hold them instead)
    leases = k8s.CoordinationV1Api(sandbox.api_client).list_namespaced_lease(tekton.namespace).items
    names = {lease.metadata.name for lease in leases}
    prefix = "tekton-pipelines-controller.github.com.tektoncd.pipeline.pkg.reconciler"
    for reconciler in ("taskrun", "pipelinerun"):
        assert f"{prefix}.{reconciler}.reconciler.00-of-01" in names
    # no conversion webhook: the CRDs serve every version without one
    crd = k8s.ApiextensionsV1Api(sandbox.api_client).read_custom_resource_definition("pipelineruns.tekton.dev")
    assert crd.spec.conversion.strategy == "None"
    assert [v.name for v in crd.spec.versions if v.storage] == ["v1"]
    assert tekton.alive()
