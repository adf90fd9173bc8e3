"""pytest plugin: the real Velero server (v1.18.3, with velero-plugin-for-aws v1.14.3; both built by
``deploy/sandbox/build --only velero,velero-plugin-for-aws``) run out of cluster against the sandbox, its backup
storage location on versitygw (tests/plugins/s3.py). Resources only: no node agent, no volume snapshots, no uploader.

The module-scoped fixture ``velero`` (on the ``sandbox`` and ``s3_server`` fixtures):

1. applies ``velero-crds.yaml`` (beside the binary in the build cache: the CRDs ``velero install`` applies) server-side
   and waits until they are Established;
2. takes a namespace: ``velero``, unless a Velero server of another live process already works there (two servers
   in one namespace would take each other's Backups, and a starting server marks every InProgress backup of its
   namespace Failed), then ``velero-<random>``. The namespace carries the annotation ``kubemate.dev/velero-server``
   (``<host> <pid> <process start>`` of its holder) while the fixture holds it;
3. writes there the Secret ``cloud-credentials`` (key ``cloud``, AWS shared-credentials format, versitygw's keys),
   makes a fresh bucket on versitygw (Velero wants a bucket, or prefix, of its own: other top-level folders make the
   location Unavailable) and (re)creates the BackupStorageLocation ``default`` (provider ``aws``, the bucket, config
   ``region``, ``s3ForcePathStyle: "true"``, ``s3Url`` = versitygw's endpoint; ``default: true``), the way
   ``velero install`` sets them up; plus the Deployment ``velero`` scaled to 0, a stand-in: Velero reads its image
   for every restore (without it each Restore ends PartiallyFailed: ``deployments.apps "velero" not found``);
4. starts::

       velero server --kubeconfig K --namespace NS --plugin-dir D --metrics-address 127.0.0.1:P \\
         --profiler-address= --log-level info

   where D holds (a link to) the velero-plugin-for-aws binary. Velero finds its plugins by listing D for executable
   files (recursively) and asking each for its plugin list; its own built-in plugins run as ``velero run-plugins``
   through ``os.Args[0]``, so the binary is started by its absolute path. The AWS plugin is a child process of the
   server (hashicorp go-plugin), inherits its environment and, with no ``credentialsFile`` in the location's config,
   reads ``$AWS_SHARED_CREDENTIALS_FILE`` (as in the release's Deployment, which mounts the Secret there). So the
   server runs with ``AWS_SHARED_CREDENTIALS_FILE`` = a file holding the Secret's content, ``AWS_*`` variables of
   this process removed (``AWS_ACCESS_KEY_ID`` would win), ``AWS_EC2_METADATA_DISABLED=true``, ``HOME`` and
   ``TMPDIR`` in its own folder (Velero keeps credential files under ``$TMPDIR/credentials``), and no ``KUBECONFIG``;
5. waits until the location's phase is ``Available`` (Velero validated the bucket through the plugin).

It yields a ``Velero``:

    def test_something(velero, s3_server):
        velero.create({"kind": "Backup", "metadata": {"name": "b1"}, "spec": {"includedNamespaces": ["ns"]}})
        done = velero.wait("Backup", "b1", "Completed", timeout=120)
        assert s3_server.keys(velero.bucket, "backups/b1/")

``namespace``, ``bucket``, ``bsl`` (``default``), ``s3`` (the S3Server), ``create(obj)`` (a ``velero.io`` object in
the namespace; ``apiVersion`` and ``metadata.namespace`` filled in), ``get(kind, name)``, ``list(kind)``,
``delete(kind, name)``, ``wait(kind, name, phases, timeout)`` (the object once ``status.phase`` is one of
``phases``; AssertionError at once when it ends in another final phase, or on timeout, with its status and the
server's log), ``logs()`` (the server's log text) and ``log_path``, ``cli(*args)`` (the velero CLI on the same
cluster and namespace). On teardown the fixture deletes the Restores (while the server runs: they carry Velero's
finalizer), stops the server (SIGTERM to its process group, plugins included), deletes the other Velero objects it
leaves in the namespace, the Secret and the stand-in Deployment, and gives the namespace back (a ``velero-<random>``
one is deleted). If anything is missing or does not come up, the fixture raises: tests fail, they are never skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.plugins.s3 import built_binary, unique_bucket
from tests.plugins.served import free_port

GROUP = "velero.io"
CLAIM = "kubemate.dev/velero-server"
NAMESPACE = "velero"
BSL = "default"
SECRET = "cloud-credentials"
DEPLOYMENT = "velero"  # a stand-in, see stand_in_deployment()
VERSION = "v1.18.3"
KINDS = {
    "Backup": ("v1", "backups"),
    "Restore": ("v1", "restores"),
    "Schedule": ("v1", "schedules"),
    "BackupStorageLocation": ("v1", "backupstoragelocations"),
    "VolumeSnapshotLocation": ("v1", "volumesnapshotlocations"),
    "DeleteBackupRequest": ("v1", "deletebackuprequests"),
    "DownloadRequest": ("v1", "downloadrequests"),
    "ServerStatusRequest": ("v1", "serverstatusrequests"),
    "BackupRepository": ("v1", "backuprepositories"),
    "PodVolumeBackup": ("v1", "podvolumebackups"),
    "PodVolumeRestore": ("v1", "podvolumerestores"),
    "DataUpload": ("v2alpha1", "datauploads"),
    "DataDownload": ("v2alpha1", "datadownloads"),
}
# The phases after which Velero does no more with a Backup or a Restore.
FINAL = {
    "Backup": {"Completed", "PartiallyFailed", "Failed", "FailedValidation", "Deleting"},
    "Restore": {"Completed", "PartiallyFailed", "Failed", "FailedValidation"},
}


def artifacts() -> tuple[Path, Path, Path]:
    """(velero binary, velero-crds.yaml, velero-plugin-for-aws binary) from the build cache, built when missing."""
    velero = built_binary("VELERO", "velero")
    crds = velero.parent / "velero-crds.yaml"
    if not crds.is_file():
        raise RuntimeError(f"{crds} is missing: rebuild with deploy/sandbox/build --force --only velero")
    plugin = built_binary("VELERO_PLUGIN_FOR_AWS", "velero-plugin-for-aws")
    return velero, crds, plugin


def crd_names(path: Path) -> list[str]:
    names = []
    for doc in yaml.safe_load_all(path.read_text()):
        for item in (doc or {}).get("items", [doc] if doc else []):
            if item.get("kind") == "CustomResourceDefinition":
                names.append(item["metadata"]["name"])
    return names


def install_crds(sandbox) -> Path:
    """Apply Velero's CRDs (server-side, so that sessions sharing a sandbox need no last-applied annotation) and wait
    until they are Established; the file's path."""
    _, crds, _ = artifacts()
    sandbox.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=kubemate-tests", "-f", str(crds))
    names = crd_names(crds)
    if len(names) < 13:
        raise RuntimeError(f"{crds} holds {len(names)} CRDs, Velero has 13")
    sandbox.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names))
    return crds


# --- who holds a namespace ---------------------------------------------------------------------------------------


def _process_start(pid: int) -> str | None:
    """The start time (clock ticks since boot) of process ``pid``, or None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def holder(pid: int | None = None) -> str:
    """The claim of process ``pid`` (default: this one): ``<host> <pid> <process start>``."""
    pid = pid or os.getpid()
    return f"{socket.gethostname()} {pid} {_process_start(pid)}"


def holder_alive(value: str | None) -> bool:
    """Whether the process a claim names still runs (on this machine: the sandbox is on loopback)."""
    try:
        host, pid, start = (value or "").split()
    except ValueError:
        return False
    return host == socket.gethostname() and _process_start(int(pid)) == start


def claim_namespace(core, preferred: str = NAMESPACE, claim: str | None = None) -> tuple[str, bool]:
    """Take ``preferred`` (or, when a live process holds it or it is being deleted, a new ``velero-<random>``) for
    one Velero server: the namespace's ``kubemate.dev/velero-server`` annotation, set with optimistic concurrency.
    (name, whether it was created here)."""
    from kubernetes import client

    claim = claim or holder()
    name = preferred
    for _ in range(20):
        try:
            found = core.read_namespace(name)
        except client.ApiException as error:
            if error.status != 404:
                raise
            body = {"metadata": {"name": name, "annotations": {CLAIM: claim}}}
            try:
                core.create_namespace(body)
            except client.ApiException as error:
                if error.status == 409:
                    continue  # someone else made it in the meantime: look again
                raise
            return name, True
        current = (found.metadata.annotations or {}).get(CLAIM)
        if found.status.phase == "Terminating" or (current and current != claim and holder_alive(current)):
            name = f"{preferred}-{uuid.uuid4().hex[:6]}"
            continue
        patch = {"metadata": {"resourceVersion": found.metadata.resource_version, "annotations": {CLAIM: claim}}}
        try:
            core.patch_namespace(name, patch)
        except client.ApiException as error:
            if error.status == 409:
                continue  # changed since it was read: look again
            raise
        return name, False
    raise RuntimeError(f"could not take a namespace for Velero (last tried {name!r})")


def release_namespace(core, name: str, created: bool, claim: str | None = None) -> None:
    """Give back a namespace ``claim_namespace`` took: drop the annotation if it is still ours; delete a namespace of
    our own making other than ``velero`` (which stays, as others may use it next)."""
    from kubernetes import client

    claim = claim or holder()
    try:
        found = core.read_namespace(name)
    except client.ApiException as error:
        if error.status == 404:
            return
        raise
    if (found.metadata.annotations or {}).get(CLAIM) != claim:
        return
    if created and name != NAMESPACE:
        core.delete_namespace(name)
        return
    core.patch_namespace(name, {"metadata": {"annotations": {CLAIM: None}}})


# --- the server --------------------------------------------------------------------------------------------------


def stand_in_deployment(version: str = VERSION) -> dict:
    """The Deployment ``velero`` as ``velero install`` names it, scaled to 0: no pod runs, the server runs on this
    machine. Velero reads it even so: its built-in pod-volume RestoreItemAction is made for every restore and fails
    the restore (``deployments.apps "velero" not found``, PartiallyFailed) when it cannot read the server's image from
    it (the image it would give the restore-helper init container)."""
    labels = {"component": "velero", "deploy": "velero"}
    return {
        "metadata": {"name": DEPLOYMENT, "labels": {"component": "velero"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {**labels, "name": "velero"}},
                "spec": {
                    "containers": [
                        {
                            "name": "velero",
                            "image": f"velero/velero:{version}",
                            "command": ["/velero"],
                            "args": ["server"],
                        }
                    ]
                },
            },
        },
    }


def credentials_file_text(access_key: str, secret_key: str) -> str:
    """AWS shared-credentials format, as ``velero install --secret-file`` expects it."""
    return f"[default]\naws_access_key_id={access_key}\naws_secret_access_key={secret_key}\n"


@dataclass
class Velero:
    sandbox: object
    s3: object  # tests.plugins.s3.S3Server
    binary: Path
    plugin: Path
    folder: Path
    namespace: str
    bucket: str
    metrics_port: int
    bsl: str = BSL
    created_namespace: bool = False
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)
    _custom: object = field(default=None, repr=False)

    # --- the process --------------------------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.folder / "velero.log"

    def logs(self, chars: int | None = None) -> str:
        """The server's log (its last ``chars`` characters when given)."""
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace")
        return text[-chars:] if chars else text

    @property
    def credentials_path(self) -> Path:
        return self.folder / "cloud-credentials"

    @property
    def plugin_dir(self) -> Path:
        return self.folder / "plugins"

    @property
    def kubeconfig(self) -> Path:
        return self.sandbox.kubeconfig

    def environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "KUBERNETES_", "VELERO_")) and k not in ("KUBECONFIG", "HOME", "TMPDIR")
        }
        env.update(
            HOME=str(self.folder),
            TMPDIR=str(self.folder / "tmp"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.credentials_path),
            AWS_EC2_METADATA_DISABLED="true",
        )
        return env

    def command(self) -> list[str]:
        return [
            str(self.binary),  # absolute: the built-in plugins run as os.Args[0] run-plugins
            "server",  # first: Velero passes os.Args[2:] on to its plugin processes
            "--kubeconfig",
            str(self.kubeconfig),
            "--namespace",
            self.namespace,
            "--plugin-dir",
            str(self.plugin_dir),
            "--metrics-address",
            f"127.0.0.1:{self.metrics_port}",
            "--profiler-address=",
            "--log-level",
            "info",
        ]

    def start(self, timeout: float = 120) -> None:
        if self.alive():
            return
        (self.folder / "tmp").mkdir(parents=True, exist_ok=True)
        self.plugin_dir.mkdir(parents=True, exist_ok=True)
        link = self.plugin_dir / self.plugin.name
        if not link.exists():
            link.symlink_to(self.plugin)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.folder,
            env=self.environment(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the plugins are stopped with it
        )
        self.wait("BackupStorageLocation", self.bsl, "Available", timeout=timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(timeout=10)
        self._signal(signal.SIGKILL)  # plugin processes left behind, if any
        self.process = None
        self._log.close()

    def _signal(self, sig) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def cli(self, *args: str, timeout: float = 60) -> str:
        """``velero ARGS --kubeconfig K --namespace NS`` (the CLI); its standard output. AssertionError with its error
        output if it fails."""
        argv = [str(self.binary), *args, "--kubeconfig", str(self.kubeconfig), "--namespace", self.namespace]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.environment())
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    # --- objects ------------------------------------------------------------------------------------------------

    @property
    def custom(self):
        """kubernetes.client.CustomObjectsApi as the sandbox admin."""
        if self._custom is None:
            from kubernetes import client

            self._custom = client.CustomObjectsApi(self.sandbox.api_client)
        return self._custom

    def create(self, obj: dict) -> dict:
        """Create a ``velero.io`` object (``kind`` required) in the namespace; the object as stored."""
        version, plural = KINDS[obj["kind"]]
        body = {**obj, "apiVersion": f"{GROUP}/{version}"}
        body["metadata"] = {**obj.get("metadata", {}), "namespace": self.namespace}
        return self.custom.create_namespaced_custom_object(GROUP, version, self.namespace, plural, body)

    def get(self, kind: str, name: str) -> dict:
        version, plural = KINDS[kind]
        return self.custom.get_namespaced_custom_object(GROUP, version, self.namespace, plural, name)

    def list(self, kind: str) -> list[dict]:
        version, plural = KINDS[kind]
        return self.custom.list_namespaced_custom_object(GROUP, version, self.namespace, plural)["items"]

    def delete(self, kind: str, name: str) -> None:
        """Delete an object; nothing when it is gone already."""
        from kubernetes import client

        version, plural = KINDS[kind]
        try:
            self.custom.delete_namespaced_custom_object(GROUP, version, self.namespace, plural, name)
        except client.ApiException as error:
            if error.status != 404:
                raise

    def wait(self, kind: str, name: str, phases, timeout: float = 120) -> dict:
        """The object once its ``status.phase`` is one of ``phases`` (a string or several). AssertionError, with the
        object's status and the server's log, when it ends in another final phase, the server exits, or on
        timeout."""
        from kubernetes import client

        wanted = {phases} if isinstance(phases, str) else set(phases)
        deadline = time.monotonic() + timeout
        obj: dict = {}
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"the Velero server exited with {self.process.returncode} while waiting for {kind} {name} to be "
                    f"{'/'.join(sorted(wanted))}; its log ({self.log_path}):\n{self.logs(6000)}"
                )
            try:
                obj = self.get(kind, name)
            except client.ApiException as error:
                if error.status != 404:
                    raise
                obj = {}
            phase = obj.get("status", {}).get("phase")
            if phase in wanted:
                return obj
            ended = phase in FINAL.get(kind, ())
            if ended or time.monotonic() > deadline:
                why = f"ended {phase}" if ended else f"still {phase or 'without a phase'} after {timeout} s"
                raise AssertionError(
                    f"{kind} {self.namespace}/{name} {why}, expected {'/'.join(sorted(wanted))}; status: "
                    f"{json.dumps(obj.get('status', {}), indent=1)}\nVelero server log ({self.log_path}):\n"
                    f"{self.logs(6000)}"
                )
            time.sleep(0.5)

    # --- setting up and cleaning up -----------------------------------------------------------------------------

    def configure(self) -> None:
        """The Secret, the bucket and a fresh BackupStorageLocation, as ``velero install`` makes them."""
        from kubernetes import client

        text = credentials_file_text(self.s3.access_key, self.s3.secret_key)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.credentials_path.write_text(text)
        self.credentials_path.chmod(0o600)
        core = client.CoreV1Api(self.sandbox.api_client)
        secret = {
            "metadata": {"name": SECRET, "namespace": self.namespace, "labels": {"component": "velero"}},
            "type": "Opaque",
            "stringData": {"cloud": text},
        }
        self._put(core.create_namespaced_secret, core.replace_namespaced_secret, SECRET, secret)
        apps = client.AppsV1Api(self.sandbox.api_client)
        self._put(
            apps.create_namespaced_deployment, apps.replace_namespaced_deployment, DEPLOYMENT, stand_in_deployment()
        )
        self.s3.make_bucket(self.bucket)
        self._delete_and_wait("BackupStorageLocation", self.bsl)  # a status left by an earlier server would lie
        self.create(
            {
                "kind": "BackupStorageLocation",
                "metadata": {"name": self.bsl, "labels": {"component": "velero"}},
                "spec": {
                    "provider": "aws",
                    "default": True,
                    "objectStorage": {"bucket": self.bucket},
                    "config": {"region": self.s3.region, "s3ForcePathStyle": "true", "s3Url": self.s3.endpoint},
                },
            }
        )

    def _put(self, create, replace, name: str, body: dict) -> None:
        from kubernetes import client

        try:
            create(self.namespace, body)
        except client.ApiException as error:
            if error.status != 409:
                raise
            replace(name, self.namespace, body)

    def _delete_and_wait(self, kind: str, name: str, timeout: float = 30) -> bool:
        from kubernetes import client

        self.delete(kind, name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.get(kind, name)
            except client.ApiException as error:
                if error.status == 404:
                    return True
                raise
            time.sleep(0.25)
        return False

    def clean_up(self) -> None:
        """Restores go first, while the server runs (it removes their finalizer); then the server stops and the
        other Velero objects and the Secret are deleted (finalizers dropped: no server is left to honour them)."""
        from kubernetes import client

        for restore in self.list("Restore"):
            self.delete("Restore", restore["metadata"]["name"])
        deadline = time.monotonic() + 30
        while self.alive() and self.list("Restore") and time.monotonic() < deadline:
            time.sleep(0.5)
        self.stop()
        for kind, (version, plural) in KINDS.items():
            for item in self.list(kind):
                name = item["metadata"]["name"]
                if item["metadata"].get("finalizers"):
                    patch = {"metadata": {"finalizers": None}}
                    self.custom.patch_namespaced_custom_object(GROUP, version, self.namespace, plural, name, patch)
                self.delete(kind, name)
        for delete, name in (
            (client.CoreV1Api(self.sandbox.api_client).delete_namespaced_secret, SECRET),
            (client.AppsV1Api(self.sandbox.api_client).delete_namespaced_deployment, DEPLOYMENT),
        ):
            try:
                delete(name, self.namespace)
            except client.ApiException as error:
                if error.status != 404:
                    raise


def start_velero(sandbox, s3_server) -> Velero:
    """Velero's CRDs applied, a namespace taken and configured, the server started and its location Available."""
    from kubernetes import client

    binary, _, plugin = artifacts()
    install_crds(sandbox)
    core = client.CoreV1Api(sandbox.api_client)
    namespace, created = claim_namespace(core)
    velero = Velero(
        sandbox=sandbox,
        s3=s3_server,
        binary=binary,
        plugin=plugin,
        folder=Path(tempfile.mkdtemp(prefix="kubemate-velero-")),
        namespace=namespace,
        bucket=unique_bucket("velero"),
        metrics_port=free_port(),
        created_namespace=created,
    )
    try:
        if not s3_server.alive():
            s3_server.start()
        velero.configure()
        velero.start()
    except BaseException:
        stop_velero(velero)
        raise
    return velero


def stop_velero(velero: Velero) -> None:
    from kubernetes import client

    try:
        velero.clean_up()
    finally:
        velero.stop()
        release_namespace(client.CoreV1Api(velero.sandbox.api_client), velero.namespace, velero.created_namespace)
        shutil.rmtree(velero.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def velero(sandbox, s3_server) -> Velero:
    """The real Velero server against the sandbox (see the module's docstring), for the test module that asks for
    it; stopped after it."""
    handle = start_velero(sandbox, s3_server)
    yield handle
    stop_velero(handle)
