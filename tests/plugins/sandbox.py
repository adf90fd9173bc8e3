"""pytest plugin: a real Kubernetes control plane (deploy/sandbox) for tests.

Load it with ``-p tests.plugins.sandbox`` or ``pytest_plugins = ["tests.plugins.sandbox"]``
in the root conftest.py. Tests that need Kubernetes carry ``@pytest.mark.sandbox`` and
take the session-scoped ``sandbox`` fixture:

    @pytest.mark.sandbox
    def test_something(sandbox):
        core = kubernetes.client.CoreV1Api(sandbox.api_client)

The fixture starts ``deploy/sandbox/up --name test-<pid>`` once per test session and
runs ``deploy/sandbox/down`` at the end. With ``KUBEMATE_SANDBOX`` set to a run folder
(``.run/sandbox/demo``), a sandbox name (``demo``) or a kubeconfig path, it reuses that
cluster and never stops it. If the sandbox cannot start, the fixture raises: tests fail,
they are never skipped.

Environment:
    KUBEMATE_SANDBOX            reuse an existing sandbox (run folder, name or kubeconfig)
    KUBEMATE_SANDBOX_NODES      fake nodes for a sandbox started here (default 3)
    KUBEMATE_SANDBOX_UP_TIMEOUT seconds allowed for `up` including a cold build (default 3600)
    KUBEMATE_SANDBOX_KEEP=1     leave a sandbox started here running after the session
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SANDBOX_DIR = REPO / "deploy" / "sandbox"
RUN_ROOT = Path(os.environ.get("KUBEMATE_SANDBOX_RUN_ROOT", REPO / ".run" / "sandbox"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sandbox: needs the real Kubernetes sandbox (deploy/sandbox); use the `sandbox` fixture",
    )


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


@dataclass
class Sandbox:
    """A running sandbox: admin access plus helpers to act as other identities."""

    name: str
    kubeconfig: Path
    server: str
    run_dir: Path | None
    env: dict[str, str] = field(default_factory=dict)
    started_here: bool = False
    _api_client: object = None

    @property
    def api_client(self):
        """kubernetes.client.ApiClient authenticated as the sandbox admin (system:masters)."""
        if self._api_client is None:
            self._api_client = self.new_admin_client()
        return self._api_client

    def new_admin_client(self, headers: dict[str, str] | None = None):
        """A fresh admin ApiClient; `headers` become default headers (e.g. Impersonate-User)."""
        from kubernetes import config

        api_client = config.new_client_from_config(config_file=str(self.kubeconfig))
        for key, value in (headers or {}).items():
            api_client.set_default_header(key, value)
        return api_client

    @property
    def ca_file(self) -> str:
        return self.api_client.configuration.ssl_ca_cert

    def client_for_token(self, token: str, headers: dict[str, str] | None = None):
        """An ApiClient that authenticates with a bearer token (e.g. a ServiceAccount's)."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.server
        cfg.ssl_ca_cert = self.ca_file
        cfg.verify_ssl = True
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        api_client = client.ApiClient(cfg)
        for key, value in (headers or {}).items():
            api_client.set_default_header(key, value)
        return api_client

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A bound token for an existing ServiceAccount (TokenRequest API)."""
        from kubernetes import client

        core = client.CoreV1Api(self.api_client)
        req = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
        )
        return core.create_namespaced_service_account_token(name, namespace, req).status.token

    @property
    def etcd_url(self) -> str:
        """etcd client URL (plain HTTP on loopback); only for sandboxes with a run folder."""
        return self.env["KUBEMATE_SANDBOX_ETCD"]

    def etcd(self, path: str, body: dict) -> dict:
        """POST to etcd's v3 JSON gateway, e.g. etcd('/v3/kv/compaction', {'revision': n})."""
        req = urllib.request.Request(  # noqa: S310 - the sandbox's own loopback etcd URL
            self.etcd_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return json.loads(resp.read())

    def etcd_revision(self) -> int:
        key = base64.b64encode(b"/").decode()
        header = self.etcd("/v3/kv/range", {"key": key, "limit": 1, "keys_only": True})["header"]
        return int(header["revision"])

    def kubectl(self, *args: str, input: str | None = None) -> str:
        kubectl = self.env.get("KUBEMATE_SANDBOX_KUBECTL", "kubectl")
        proc = subprocess.run(
            [kubectl, "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout


def _server_from_kubeconfig(path: Path) -> str:
    import yaml

    cfg = yaml.safe_load(path.read_text())
    current = cfg.get("current-context")
    ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == current)
    return next(c["cluster"]["server"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])


def _reuse(spec: str) -> Sandbox:
    path = Path(spec)
    if not path.exists() and (RUN_ROOT / spec).is_dir():
        path = RUN_ROOT / spec
    if path.is_dir():
        env_file = path / "env"
        if not env_file.is_file():
            raise RuntimeError(f"KUBEMATE_SANDBOX={spec}: {env_file} does not exist (is the sandbox up?)")
        env = read_env_file(env_file)
        return Sandbox(
            name=env.get("KUBEMATE_SANDBOX_NAME", path.name),
            kubeconfig=Path(env["KUBECONFIG"]),
            server=env["KUBEMATE_SANDBOX_SERVER"],
            run_dir=path,
            env=env,
        )
    if path.is_file():
        env_file = path.parent / "env"
        env = read_env_file(env_file) if env_file.is_file() else {}
        return Sandbox(
            name=env.get("KUBEMATE_SANDBOX_NAME", path.stem),
            kubeconfig=path,
            server=_server_from_kubeconfig(path),
            run_dir=path.parent if env else None,
            env=env,
        )
    raise RuntimeError(f"KUBEMATE_SANDBOX={spec}: neither a run folder, a sandbox name nor a kubeconfig")


def _reap_orphans() -> None:
    """Stop test sandboxes left behind by test sessions that were killed (their pid is gone)."""
    for run_dir in RUN_ROOT.glob("test-*"):
        pid = run_dir.name.removeprefix("test-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _stop(run_dir.name)


def _start(name: str) -> Sandbox:
    _reap_orphans()
    nodes = os.environ.get("KUBEMATE_SANDBOX_NODES", "3")
    timeout = float(os.environ.get("KUBEMATE_SANDBOX_UP_TIMEOUT", "3600"))
    log_dir = Path(tempfile.gettempdir())
    log_path = log_dir / f"kubemate-sandbox-{name}-up.log"
    with open(log_path, "w") as log:
        proc = subprocess.run(
            [str(SANDBOX_DIR / "up"), "--name", name, "--nodes", nodes],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
    output = log_path.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(
            f"deploy/sandbox/up --name {name} failed with exit code {proc.returncode}; "
            f"output ({log_path}):\n{output[-6000:]}"
        )
    run_dir = RUN_ROOT / name
    env = read_env_file(run_dir / "env")
    return Sandbox(
        name=name,
        kubeconfig=Path(env["KUBECONFIG"]),
        server=env["KUBEMATE_SANDBOX_SERVER"],
        run_dir=run_dir,
        env=env,
        started_here=True,
    )


def _stop(name: str) -> None:
    # The test sandbox and its folder are thrown away: no graceful stop (the API server's takes 15 s).
    subprocess.run([str(SANDBOX_DIR / "down"), "--name", name, "--kill"], check=False, timeout=120)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Build (or verify the cache of) the sandbox binaries before any test runs.

    A cold build takes ~10 minutes; doing it here keeps it out of per-test timeouts.
    Only when a selected test is marked `sandbox` and no existing sandbox is reused.
    """
    if os.environ.get("KUBEMATE_SANDBOX", "").strip():
        return
    if not any(item.get_closest_marker("sandbox") for item in items):
        return
    proc = subprocess.run([str(SANDBOX_DIR / "build")], capture_output=True, text=True)
    if proc.returncode != 0:
        raise pytest.UsageError(f"deploy/sandbox/build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    """A running Kubernetes sandbox (session-scoped); raises if it cannot start."""
    spec = os.environ.get("KUBEMATE_SANDBOX", "").strip()
    if spec:
        from kubernetes import client

        handle = _reuse(spec)
        version = client.VersionApi(handle.api_client).get_code()  # raises when it is not serving
        assert version.git_version, f"KUBEMATE_SANDBOX={spec}: no version from {handle.server}"
        yield handle
        return
    name = f"test-{os.getpid()}"
    try:
        handle = _start(name)
    except BaseException:
        _stop(name)
        raise
    try:
        yield handle
    finally:
        if os.environ.get("KUBEMATE_SANDBOX_KEEP", "") not in ("1", "true", "yes"):
            _stop(name)
