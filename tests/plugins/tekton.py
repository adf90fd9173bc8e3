"""pytest plugin: the real Tekton Pipelines controller (v1.0.0, built by ``deploy/sandbox/build --only tekton``) run
out of cluster against the sandbox, so that PipelineRuns and TaskRuns move through Tekton's own reconcilers.

Fixtures (both session-scoped, on the ``sandbox`` fixture's cluster):

- ``tekton_crds``: applies Tekton's CRDs (``tekton-crds.yaml`` beside the binary in the build cache: the module's
  ``config/300-crds`` without the conversion-webhook stanza) and waits until they are Established; for tests that
  only need "a cluster with Tekton's CRDs". Yields the file's path.
- ``tekton``: also applies ``tekton-config.yaml`` (namespace ``tekton-pipelines``, the release's RBAC and
  ConfigMaps, with a quick leader election), starts the controller as its own ServiceAccount
  ``tekton-pipelines/tekton-pipelines-controller`` (a TokenRequest token, so the upstream RBAC is what it may do),
  and waits until a probe TaskRun in a namespace of its own has Succeeded: the controller reconciles and the kwok
  stage ``deploy/sandbox/kwok/tekton-taskrun-pod.yaml`` finishes TaskRun pods. Yields a ``Tekton``:

    def test_something(sandbox, tekton):
        tekton.create(namespace, pipeline)
        run = tekton.create(namespace, pipeline_run)
        done = tekton.wait_for_run(namespace, run["metadata"]["name"])
        assert done["status"]["conditions"][0]["reason"] == "Succeeded"
        taskruns = tekton.taskruns(done)

No Tekton webhook runs: objects are not defaulted or validated at admission (the controller applies the defaults
in memory and fails an invalid run itself), and only ``tekton.dev/v1`` (v1beta1 for CustomRun and StepAction) should
be written. Several test sessions may share one sandbox: each starts its controller, leader election picks one.
If the binary is missing and cannot be built, the sandbox's kwok lacks the stage, or the controller does not
become ready, the fixture raises: tests fail, they are never skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.plugins.served import free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "deploy" / "sandbox" / "build"
STAGE = "tekton-taskrun-pod"  # deploy/sandbox/kwok/tekton-taskrun-pod.yaml
VERSION = "v1.0.0"
NAMESPACE = "tekton-pipelines"
SERVICE_ACCOUNT = "tekton-pipelines-controller"
GROUP = "tekton.dev"
PLURALS = {
    "Task": ("v1", "tasks"),
    "Pipeline": ("v1", "pipelines"),
    "TaskRun": ("v1", "taskruns"),
    "PipelineRun": ("v1", "pipelineruns"),
    "StepAction": ("v1beta1", "stepactions"),
    "CustomRun": ("v1beta1", "customruns"),
}
# The images the controller puts into TaskRun pods. Never pulled: kwok plays the pods. A local registry's names,
# as an air-gapped installation mirrors them.
IMAGES = {
    "entrypoint": f"127.0.0.1:5000/tekton/entrypoint:{VERSION}",
    "nop": f"127.0.0.1:5000/tekton/nop:{VERSION}",
    "sidecarlogresults": f"127.0.0.1:5000/tekton/sidecarlogresults:{VERSION}",
    "workingdirinit": f"127.0.0.1:5000/tekton/workingdirinit:{VERSION}",
    "shell": "127.0.0.1:5000/tekton/busybox:1.37",
    "shell-win": "127.0.0.1:5000/tekton/powershell:nanoserver",
}
# Leader election: one controller per sandbox leads; a lease left by a killed controller expires in 15 s (the
# release's 60 s would hold a restarted session that long). A controller that stops cleanly releases its leases.
LEADER_ELECTION = {"lease-duration": "15s", "renew-deadline": "10s", "retry-period": "2s", "buckets": "1"}


def artifacts() -> tuple[Path, Path, Path]:
    """(controller binary, tekton-crds.yaml, tekton-config.yaml) from the build cache; builds them when missing."""

    def paths() -> tuple[Path, Path, Path]:
        done = subprocess.run([str(BUILD), "--print-paths"], capture_output=True, text=True, timeout=60)
        for line in done.stdout.splitlines():
            if line.startswith("TEKTON="):
                binary = Path(line.split("=", 1)[1])
                return binary, binary.parent / "tekton-crds.yaml", binary.parent / "tekton-config.yaml"
        raise RuntimeError(f"deploy/sandbox/build --print-paths names no TEKTON: {done.stdout}{done.stderr}")

    found = paths()
    if not all(p.is_file() for p in found) or not (found[0].parent / ".complete").is_file():
        built = subprocess.run([str(BUILD), "--only", "tekton"], capture_output=True, text=True, timeout=1800)
        if built.returncode != 0:
            raise RuntimeError(
                f"deploy/sandbox/build --only tekton failed:\n{built.stdout[-3000:]}{built.stderr[-3000:]}"
            )
        found = paths()
    missing = [str(p) for p in found if not p.is_file()]
    if missing:
        raise RuntimeError(f"missing after deploy/sandbox/build --only tekton: {', '.join(missing)}")
    return found


def apply(sandbox, docs: list[dict] | Path) -> None:
    """Server-side apply (Tekton's CRDs are too large for client-side apply's annotation)."""
    args = ["apply", "--server-side", "--force-conflicts", "--field-manager=kubemate-tests"]
    if isinstance(docs, Path):
        sandbox.kubectl(*args, "-f", str(docs))
    else:
        sandbox.kubectl(*args, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))


def install_crds(sandbox) -> Path:
    """Apply Tekton's CRDs to the sandbox and wait until they are Established; the file's path."""
    _, crds, _ = artifacts()
    apply(sandbox, crds)
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(crds.read_text()) if d]
    sandbox.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names))
    return crds


def config_documents(path: Path) -> list[dict]:
    """tekton-config.yaml's objects, with the tests' leader election."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "config-leader-election-controller":
            doc["data"] = dict(LEADER_ELECTION)
    return docs


def _kwok_has_stage(sandbox) -> bool | None:
    """Whether the sandbox's kwok was started with the TaskRun-pod stage (None: no run folder to tell)."""
    if sandbox.run_dir is None or not (sandbox.run_dir / "config" / "kwok.yaml").is_file():
        return None
    return f"name: {STAGE}\n" in (sandbox.run_dir / "config" / "kwok.yaml").read_text()


def _kubeconfig_for_token(sandbox, token: str) -> dict:
    cfg = yaml.safe_load(sandbox.kubeconfig.read_text())
    current = cfg.get("current-context")
    context = next(c["context"] for c in cfg["contexts"] if c["name"] == current)
    cluster = dict(next(c["cluster"] for c in cfg["clusters"] if c["name"] == context["cluster"]))
    if "certificate-authority" in cluster:  # a relative path would be read from the new file's folder
        cluster["certificate-authority"] = str((sandbox.kubeconfig.parent / cluster["certificate-authority"]).resolve())
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": cluster}],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "tekton", "context": {"cluster": "sandbox", "user": SERVICE_ACCOUNT}}],
        "current-context": "tekton",
    }


def done_condition(obj: dict) -> dict | None:
    """The ``Succeeded`` condition of a run once it is True or False (None while it runs)."""
    for condition in obj.get("status", {}).get("conditions", []):
        if condition.get("type") == "Succeeded" and condition.get("status") in ("True", "False"):
            return condition
    return None


@dataclass
class Tekton:
    sandbox: object
    binary: Path
    crds: Path
    folder: Path
    probes_port: int
    profiling_port: int
    metrics_port: int
    namespace: str = NAMESPACE  # where the controller's ConfigMaps and leases live
    version: str = VERSION
    images: dict = field(default_factory=lambda: dict(IMAGES))
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)
    _custom: object = field(default=None, repr=False)

    @property
    def metrics_url(self) -> str:
        """The controller's Prometheus metrics (``tekton_pipelines_controller_*``), on loopback."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def log_path(self) -> Path:
        return self.folder / "controller.log"

    def log(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    # --- the process --------------------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """What the release's Deployment sets, for a process on this machine (no KUBECONFIG or in-cluster env)."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.folder),
            "SYSTEM_NAMESPACE": self.namespace,
            "KUBERNETES_MIN_VERSION": "v1.28.0",
            "CONFIG_DEFAULTS_NAME": "config-defaults",
            "CONFIG_LOGGING_NAME": "config-logging",
            "CONFIG_OBSERVABILITY_NAME": "config-observability",
            "CONFIG_FEATURE_FLAGS_NAME": "feature-flags",
            "CONFIG_LEADERELECTION_NAME": "config-leader-election-controller",
            "CONFIG_SPIRE": "config-spire",
            "METRICS_DOMAIN": "tekton.dev/pipeline",
            "METRICS_PROMETHEUS_HOST": "127.0.0.1",
            "METRICS_PROMETHEUS_PORT": str(self.metrics_port),
            "PROBES_PORT": str(self.probes_port),
            "PROFILING_PORT": str(self.profiling_port),
        }

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--kubeconfig={self.folder / 'kubeconfig'}",
            "-entrypoint-image",
            self.images["entrypoint"],
            "-nop-image",
            self.images["nop"],
            "-sidecarlogresults-image",
            self.images["sidecarlogresults"],
            "-workingdirinit-image",
            self.images["workingdirinit"],
            "-shell-image",
            self.images["shell"],
            "-shell-image-win",
            self.images["shell-win"],
        ]

    def start(self, timeout: float = 120) -> None:
        token = self.sandbox.service_account_token(self.namespace, SERVICE_ACCOUNT, seconds=24 * 3600)
        kubeconfig = self.folder / "kubeconfig"
        kubeconfig.write_text(json.dumps(_kubeconfig_for_token(self.sandbox, token), indent=2))
        kubeconfig.chmod(0o600)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.folder,
            env=self.environment(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.wait_ready(timeout)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # releases its leader leases
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        self._log.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float) -> None:
        """Until a probe TaskRun has Succeeded: the controller (this one, or another session's that holds the
        leases on a shared sandbox) reconciles, and kwok finishes its pod."""
        namespace = f"tekton-probe-{uuid.uuid4().hex[:6]}"
        from kubernetes import client

        core = client.CoreV1Api(self.sandbox.api_client)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        try:
            probe = {
                "apiVersion": "tekton.dev/v1",
                "kind": "TaskRun",
                "metadata": {"name": "probe", "namespace": namespace},
                "spec": {
                    "taskSpec": {"steps": [{"name": "probe", "image": self.images["shell"], "command": ["true"]}]}
                },
            }
            # the namespace's default ServiceAccount comes from the controller manager, shortly
            self._wait(lambda: _exists(core, namespace), 30, f"ServiceAccount {namespace}/default")
            self.create(namespace, probe)
            self.wait_for_run(namespace, "probe", kind="TaskRun", timeout=timeout)
        finally:
            core.delete_namespace(namespace)

    def _wait(self, predicate, timeout: float, what: str, detail=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"the Tekton controller exited with {self.process.returncode} while waiting for {what}; "
                    f"its log ({self.log_path}):\n{self.log()}"
                )
            found = predicate()
            if found:
                return found
            time.sleep(0.25)
        extra = f"\n{detail()}" if detail else ""
        raise AssertionError(
            f"waited {timeout} s for {what}{extra}\nTekton controller log ({self.log_path}):\n{self.log()}"
        )

    # --- objects ------------------------------------------------------------------------------------------------

    @property
    def custom(self):
        """kubernetes.client.CustomObjectsApi as the sandbox admin."""
        if self._custom is None:
            from kubernetes import client

            self._custom = client.CustomObjectsApi(self.sandbox.api_client)
        return self._custom

    def create(self, namespace: str, body: dict) -> dict:
        version, plural = PLURALS[body["kind"]]
        body = {**body, "apiVersion": f"{GROUP}/{version}"}
        return self.custom.create_namespaced_custom_object(GROUP, version, namespace, plural, body)

    def get(self, kind: str, namespace: str, name: str) -> dict:
        version, plural = PLURALS[kind]
        return self.custom.get_namespaced_custom_object(GROUP, version, namespace, plural, name)

    def patch(self, kind: str, namespace: str, name: str, body: dict) -> dict:
        version, plural = PLURALS[kind]
        return self.custom.patch_namespaced_custom_object(GROUP, version, namespace, plural, name, body)

    def list(self, kind: str, namespace: str, selector: str = "") -> list[dict]:
        version, plural = PLURALS[kind]
        found = self.custom.list_namespaced_custom_object(GROUP, version, namespace, plural, label_selector=selector)
        return found["items"]

    def wait_for_run(self, namespace: str, name: str, kind: str = "PipelineRun", timeout: float = 90) -> dict:
        """The run once its ``Succeeded`` condition is True or False; on timeout the error holds the run's status,
        its TaskRuns' and pods' phases, and the controller's log."""
        last: dict = {}

        def finished():
            last["obj"] = self.get(kind, namespace, name)
            return last["obj"] if done_condition(last["obj"]) else None

        return self._wait(finished, timeout, f"{kind} {namespace}/{name} to finish", lambda: self.describe(namespace))

    def wait_for(self, predicate, timeout: float = 60, what: str = "a condition"):
        """``predicate()``'s first true answer; the error holds the controller's log."""
        return self._wait(predicate, timeout, what)

    def taskruns(self, pipeline_run: dict) -> dict[str, dict]:
        """The TaskRuns a PipelineRun's ``childReferences`` name, by pipeline task name."""
        namespace = pipeline_run["metadata"]["namespace"]
        return {
            ref["pipelineTaskName"]: self.get("TaskRun", namespace, ref["name"])
            for ref in pipeline_run.get("status", {}).get("childReferences", [])
            if ref.get("kind") == "TaskRun"
        }

    def describe(self, namespace: str) -> str:
        """A short account of the runs and pods of a namespace, for error messages."""
        from kubernetes import client

        lines = []
        for kind in ("PipelineRun", "TaskRun"):
            try:
                items = self.list(kind, namespace)
            except client.ApiException as error:
                lines.append(f"{kind}s: {error.status} {error.reason}")
                continue
            for item in items:
                conditions = item.get("status", {}).get("conditions", [])
                lines.append(f"{kind} {item['metadata']['name']}: {json.dumps(conditions)}")
        for pod in client.CoreV1Api(self.sandbox.api_client).list_namespaced_pod(namespace).items:
            ready = (pod.metadata.annotations or {}).get("tekton.dev/ready", "")
            lines.append(f"Pod {pod.metadata.name}: {pod.status.phase} node={pod.spec.node_name} ready={ready!r}")
        return "\n".join(lines) or f"nothing in namespace {namespace}"


def _exists(core, namespace: str) -> bool:
    from kubernetes import client

    try:
        core.read_namespaced_service_account("default", namespace)
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


# One controller per sandbox and test process, however many times the fixtures are collected (the plugin from
# the root conftest and a test module that imports the fixture): the last user stops it.
_RUNNING: dict[str, list] = {}


def _acquire(sandbox) -> Tekton:
    key = str(sandbox.kubeconfig)
    if key in _RUNNING:
        _RUNNING[key][1] += 1
        return _RUNNING[key][0]
    stage = _kwok_has_stage(sandbox)
    if stage is False:
        raise RuntimeError(
            f"sandbox {sandbox.name!r} runs a kwok started without deploy/sandbox/kwok/{STAGE}.yaml, so TaskRun pods "
            f"would never finish: restart it (deploy/sandbox/down --name {sandbox.name} && "
            f"deploy/sandbox/up --name {sandbox.name})"
        )
    binary, crds, config = artifacts()
    install_crds(sandbox)
    apply(sandbox, config_documents(config))
    folder = Path(tempfile.mkdtemp(prefix="kubemate-tekton-"))
    tekton = Tekton(
        sandbox=sandbox,
        binary=binary,
        crds=crds,
        folder=folder,
        probes_port=free_port(),
        profiling_port=free_port(),
        metrics_port=free_port(),
    )
    try:
        tekton.start()
    except BaseException:
        tekton.stop()
        raise
    _RUNNING[key] = [tekton, 1]
    return tekton


def _release(tekton: Tekton) -> None:
    key = str(tekton.sandbox.kubeconfig)
    _RUNNING[key][1] -= 1
    if _RUNNING[key][1] == 0:
        del _RUNNING[key]
        tekton.stop()
        shutil.rmtree(tekton.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def tekton_crds(sandbox) -> Path:
    """Tekton's CRDs applied to the sandbox (Established); the file's path."""
    return install_crds(sandbox)


@pytest.fixture(scope="module")
def tekton(sandbox) -> Tekton:
    """The real Tekton controller running against the sandbox (see the module's docstring), for the test module that
    asks for it: stopped after it, so its watches do not stay open through the rest of the session (an apiserver
    restart in another module waits for them)."""
    handle = _acquire(sandbox)
    yield handle
    _release(handle)
