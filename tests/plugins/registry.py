"""pytest plugin: a real OCI registry, go-containerregistry's ``crane registry serve`` (v0.22.1, built by
``deploy/sandbox/build --only crane``), on a free loopback port, blobs on disk in a temporary folder.

The session fixture ``oci_registry`` starts it (``crane registry serve --address 127.0.0.1:PORT --disk DIR``) and
waits until ``GET /v2/`` answers 200. It speaks plain HTTP: crane reaches it with its global ``--insecure`` flag
(``crane push image.tar 127.0.0.1:PORT/repo:tag --insecure``; go-containerregistry also picks HTTP by itself for a
loopback or ``localhost`` host, but an in-cluster address needs the flag). Manifests are kept in memory, so what
was pushed is gone when it stops; tests use their own repository names.

    def test_something(oci_registry):
        ref = oci_registry.ref("demo/orders", "1.0.0")          # 127.0.0.1:PORT/demo/orders:1.0.0
        pushed = oci_registry.crane("push", "image.tar", ref)   # prints 127.0.0.1:PORT/demo/orders@sha256:…
        assert oci_registry.digest(ref) == pushed.split("@")[1]
        assert "1.0.0" in oci_registry.tags("demo/orders")

``host`` is ``127.0.0.1:PORT``, ``url`` ``http://127.0.0.1:PORT``, ``crane_path`` the binary. If the binary is
missing or the registry does not start, the fixture raises: tests fail, they are never skipped. ``cicd_samples()``
loads deploy/local/cicd_samples.py (the base image, the jar and the offline OSV database of the tests and the demo).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.plugins.served import Served, free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "deploy" / "sandbox" / "build"
CICD_SAMPLES = ROOT / "deploy" / "local" / "cicd_samples.py"


def cicd_samples():
    """deploy/local/cicd_samples.py as a module (the base image, jar and OSV database samples; a script beside the
    demo, not a package)."""
    if "kubemate_cicd_samples" in sys.modules:
        return sys.modules["kubemate_cicd_samples"]
    spec = importlib.util.spec_from_file_location("kubemate_cicd_samples", CICD_SAMPLES)
    module = importlib.util.module_from_spec(spec)
    sys.modules["kubemate_cicd_samples"] = module
    spec.loader.exec_module(module)
    return module


def crane_binary() -> Path:
    """The crane binary the sandbox build put in its cache."""
    done = subprocess.run([str(BUILD), "--print-paths"], capture_output=True, text=True, timeout=60)
    for line in done.stdout.splitlines():
        if line.startswith("CRANE="):
            path = Path(line.split("=", 1)[1])
            if path.exists():
                return path
            raise RuntimeError(f"{path} is missing: build it with deploy/sandbox/build --only crane")
    raise RuntimeError(f"deploy/sandbox/build --print-paths names no CRANE: {done.stdout}{done.stderr}")


@dataclass
class Registry(Served):
    name = "OCI registry"
    log_name = "registry"

    host: str  # 127.0.0.1:PORT, the registry part of an image reference
    folder: Path
    crane_path: Path
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def command(self) -> list[str]:
        return [str(self.crane_path), "registry", "serve", "--address", self.host, "--disk", str(self.folder / "blobs")]

    def ready_url(self) -> str:
        return f"{self.url}/v2/"

    # --- reading and writing with crane -----------------------------------------------------------------------

    def ref(self, repository: str, tag: str = "latest") -> str:
        return f"{self.host}/{repository}:{tag}"

    def crane(self, *args: str, timeout: float = 60) -> str:
        """Run ``crane ARGS --insecure``; its standard output, stripped. AssertionError with its error output if it
        fails."""
        argv = [str(self.crane_path), *args, "--insecure"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.strip()}")
        return done.stdout.strip()

    def digest(self, ref: str) -> str:
        """The manifest digest (``sha256:…``) the registry holds for ``ref`` (``crane digest``)."""
        return self.crane("digest", ref)

    def tags(self, repository: str) -> list[str]:
        """The tags of ``repository`` (``crane ls``); [] for a repository the registry does not know."""
        argv = [str(self.crane_path), "ls", f"{self.host}/{repository}", "--insecure"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            if "NAME_UNKNOWN" in done.stderr:
                return []
            raise AssertionError(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.strip()}")
        return done.stdout.split()

    def repositories(self) -> list[str]:
        """The repositories of the registry (``crane catalog``)."""
        return self.crane("catalog", self.host).split()

    def config(self, ref: str) -> dict:
        """The image's config file (``crane config``): ``config.Entrypoint``, ``config.Env``, ``os``, …"""
        return json.loads(self.crane("config", ref))

    def manifest(self, ref: str) -> dict:
        return json.loads(self.crane("manifest", ref))


@pytest.fixture(scope="session")
def oci_registry():
    folder = Path(tempfile.mkdtemp(prefix="kubemate-registry-"))
    (folder / "blobs").mkdir()  # crane's disk store writes uploads into it and does not create it
    server = Registry(host=f"127.0.0.1:{free_port()}", folder=folder, crane_path=crane_binary())
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)
