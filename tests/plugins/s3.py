"""pytest plugin: a real S3 store, versitygw (v1.8.0, built by ``deploy/sandbox/build --only versitygw``) with its
posix backend, on a free loopback port, objects as files in a temporary folder.

The session fixture ``s3_server`` starts it::

    versitygw --access K --secret S --port 127.0.0.1:P --health /health posix DIR

with a random access key and secret, and waits until ``GET /health`` answers 200 (the S3 API is served from the same
listener). It yields an ``S3Server``:

    def test_something(s3_server, s3_bucket):
        s3 = s3_server.client()                         # boto3, path-style, signed with the server's keys
        s3.put_object(Bucket=s3_bucket, Key="a/b", Body=b"x")
        assert s3_server.keys(s3_bucket, "a/") == ["a/b"]
        s3_server.stop()                                # killed: nothing answers on the port ...
        s3_server.start()                               # ... until it runs again, same port, keys and folder

``endpoint`` (``http://127.0.0.1:P``), ``access_key``, ``secret_key``, ``region`` (``us-east-1``), ``path`` (the posix
folder: one folder per bucket, one file per object), ``make_bucket(name)`` (CreateBucket through S3; S3's naming
rules apply: 3-63 lower-case letters, digits, dots and hyphens), ``stop()`` (SIGKILL, as a crash or a pulled cable:
an upload in flight gets a reset connection), ``start()``, ``close()``. The function fixture ``s3_bucket`` creates a
fresh bucket per test and gives its name. If the binary is missing and cannot be built, or the server does not start,
the fixtures raise: tests fail, they are never skipped.

``built_binary(VAR, component)`` is the sandbox build's binary for ``VAR`` of ``deploy/sandbox/build --print-paths``,
built when missing; tests/plugins/velero.py and the backup tests use it too.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import string
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.plugins.served import Served, free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "deploy" / "sandbox" / "build"
REGION = "us-east-1"


def built_binary(var: str, component: str) -> Path:
    """The file ``deploy/sandbox/build --print-paths`` names ``VAR=`` for, built with ``--only component`` when it (or
    its cache entry's ``.complete`` mark) is missing. RuntimeError when that fails."""

    def path() -> Path:
        done = subprocess.run([str(BUILD), "--print-paths"], capture_output=True, text=True, timeout=60)
        for line in done.stdout.splitlines():
            if line.startswith(f"{var}="):
                return Path(line.split("=", 1)[1])
        raise RuntimeError(f"deploy/sandbox/build --print-paths names no {var}: {done.stdout}{done.stderr}")

    found = path()
    if not found.is_file() or not (found.parent / ".complete").is_file():
        built = subprocess.run([str(BUILD), "--only", component], capture_output=True, text=True, timeout=3600)
        if built.returncode != 0:
            raise RuntimeError(
                f"deploy/sandbox/build --only {component} failed:\n{built.stdout[-3000:]}{built.stderr[-3000:]}"
            )
        found = path()
        if not found.is_file():
            raise RuntimeError(f"{found} is missing after deploy/sandbox/build --only {component}")
    return found


def random_keys() -> tuple[str, str]:
    """An access key and a secret in the shapes AWS uses (20 upper-case letters and digits; 40 characters)."""
    upper = string.ascii_uppercase + string.digits
    access = "AK" + "".join(secrets.choice(upper) for _ in range(18))
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
    return access, secret


def unique_bucket(prefix: str = "kubemate") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class S3Server(Served):
    name = "versitygw"
    log_name = "versitygw"

    host: str  # 127.0.0.1:PORT
    folder: Path  # the log; the posix backend's folder is folder/"data"
    binary: Path
    access_key: str
    secret_key: str
    region: str = REGION
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)
    _client: object = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}"

    @property
    def path(self) -> Path:
        return self.folder / "data"

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--access",
            self.access_key,
            "--secret",
            self.secret_key,
            "--region",
            self.region,
            "--port",
            self.host,
            "--health",
            "/health",
            "posix",
            str(self.path),
        ]

    def ready_url(self) -> str:
        return f"{self.endpoint}/health"

    def start(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        super().start()

    def stop(self) -> None:
        """Kill the server (SIGKILL: no graceful end for requests in flight). ``start()`` brings it back."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None
        self._log.close()

    def close(self) -> None:
        """Stop the server (SIGTERM) and remove its folder."""
        if self.process is not None:
            super().stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # --- S3 ---------------------------------------------------------------------------------------------------

    def client(self, **config):
        """A boto3 S3 client for this server: path-style addressing, the server's keys and region, one attempt
        (a stopped server fails at once instead of after boto3's retries). ``config`` goes to botocore's Config."""
        import boto3
        from botocore.config import Config

        options = {
            "s3": {"addressing_style": "path"},
            "retries": {"max_attempts": 1, "mode": "standard"},
            "connect_timeout": 5,
            "read_timeout": 30,
            **config,
        }
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(**options),
        )

    @property
    def s3(self):
        """One shared ``client()``."""
        if self._client is None:
            self._client = self.client()
        return self._client

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` through S3 (CreateBucket); its name."""
        self.s3.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """The keys under ``prefix`` in ``bucket``, sorted (every page of ListObjectsV2)."""
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(found)


def start_server() -> S3Server:
    """A new versitygw on a free port with fresh keys and an empty folder, running and answering."""
    access, secret = random_keys()
    server = S3Server(
        host=f"127.0.0.1:{free_port()}",
        folder=Path(tempfile.mkdtemp(prefix="kubemate-s3-")),
        binary=built_binary("VERSITYGW", "versitygw"),
        access_key=access,
        secret_key=secret,
    )
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server


@pytest.fixture(scope="session")
def s3_server():
    """A running versitygw for the session (see the module's docstring)."""
    server = start_server()
    yield server
    server.close()


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A new, empty bucket on ``s3_server`` for this test; its name."""
    if not s3_server.alive():  # a test that stopped it and failed before starting it again
        s3_server.start()
    return s3_server.make_bucket(unique_bucket())
