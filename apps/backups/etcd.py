"""The one door to etcd: snapshots through etcd's own client, ``etcdctl snapshot save`` (v3.6, built from
go.etcd.io/etcd/etcdctl/v3 by deploy/sandbox/build), verified with ``etcdutl snapshot status``.

The client certificate and key of an ``EtcdAccess`` are decrypted into a private temporary folder (mode 700) for
the call and removed after; they are never in a command line, a log or a task argument. Errors become
``EtcdError`` with a sentence that says what to check.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from apps.backups import tools
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

SNAPSHOT_TIMEOUT = 600
STATUS_TIMEOUT = 120
MAX_STATUS_OUTPUT = 64 * 1024


class EtcdError(Failure):
    """etcd refused or could not be reached, or a snapshot is not valid; the sentence says what to check."""


@dataclass(frozen=True)
class Access:
    endpoints: tuple[str, ...]
    ca_pem: str = ""
    cert_pem: str = ""
    key_pem: str = ""

    def __repr__(self) -> str:  # never the key
        return f"Access({self.endpoints!r})"


@dataclass(frozen=True)
class SnapshotStatus:
    hash: int
    revision: int
    total_keys: int
    total_size: int
    version: str


def access_for(etcd_access) -> Access:
    return Access(
        endpoints=tuple(etcd_access.endpoints),
        ca_pem=etcd_access.ca_pem,
        cert_pem=etcd_access.client_cert(),
        key_pem=etcd_access.client_key(),
    )


@contextmanager
def _flags(access: Access, command_seconds: int) -> Iterator[list[str]]:
    """etcdctl's connection flags; ``command_seconds`` bounds the whole command (etcdctl retries a refused TLS
    handshake until then)."""
    with tempfile.TemporaryDirectory(prefix="kubemate-etcd-") as tmp:
        os.chmod(tmp, 0o700)
        flags = ["--endpoints", ",".join(access.endpoints), "--dial-timeout", "5s"]
        flags += ["--command-timeout", f"{command_seconds}s"]
        for name, flag, value in (
            ("ca.pem", "--cacert", access.ca_pem),
            ("client.pem", "--cert", access.cert_pem),
            ("client-key.pem", "--key", access.key_pem),
        ):
            if value.strip():
                path = Path(tmp) / name
                path.write_text(value)
                path.chmod(0o600)
                flags += [flag, str(path)]
        yield flags


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ETCDCTL_API": "3", "HOME": tempfile.gettempdir()}
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise EtcdError(D(N_("etcd did not answer within %(seconds)s seconds."), seconds=int(timeout))) from None


def _reason(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return (lines[-1] if lines else "")[:300]


def save(access: Access, dest: Path) -> None:
    """``etcdctl snapshot save dest`` against the first endpoint that answers (etcd streams one member's data)."""
    if not access.endpoints:
        raise EtcdError(D(N_("No etcd endpoint is configured for this cluster.")))
    errors = []
    for endpoint in access.endpoints:
        single = Access((endpoint,), access.ca_pem, access.cert_pem, access.key_pem)
        with _flags(single, SNAPSHOT_TIMEOUT) as flags:
            done = _run([tools.etcdctl(), *flags, "snapshot", "save", str(dest)], SNAPSHOT_TIMEOUT + 30)
        if done.returncode == 0 and dest.exists() and dest.stat().st_size > 0:
            return
        errors.append(f"{endpoint}: {_reason(done.stderr)}")
        dest.unlink(missing_ok=True)
    raise EtcdError(D(N_("etcd refused the snapshot: %(reason)s"), reason="; ".join(errors)[:400]))


def member_status(access: Access) -> list[dict]:
    """``etcdctl endpoint status`` of each endpoint: the check run when access is saved."""
    # A person waits for this check when saving etcd access.
    with _flags(access, settings.KUBEMATE_BACKUP_ETCD_CHECK_SECONDS) as flags:
        done = _run([tools.etcdctl(), *flags, "endpoint", "status", "-w", "json"], STATUS_TIMEOUT)
    if done.returncode != 0:
        raise EtcdError(D(N_("etcd cannot be reached: %(reason)s"), reason=_reason(done.stderr)))
    try:
        found = json.loads(done.stdout[:MAX_STATUS_OUTPUT])
    except ValueError:
        raise EtcdError(D(N_("etcd answered something that is not a status."))) from None
    return found if isinstance(found, list) else []


def status(snapshot: Path) -> SnapshotStatus:
    """``etcdutl snapshot status -w json``: hash, revision, keys and size read from the file itself."""
    done = _run([tools.etcdutl(), "snapshot", "status", str(snapshot), "-w", "json"], STATUS_TIMEOUT)
    if done.returncode != 0:
        raise EtcdError(D(N_("The snapshot is not valid: %(reason)s"), reason=_reason(done.stderr)))
    try:
        data = json.loads(done.stdout[:MAX_STATUS_OUTPUT])
        return SnapshotStatus(
            hash=int(data["hash"]),
            revision=int(data["revision"]),
            total_keys=int(data["totalKey"]),
            total_size=int(data["totalSize"]),
            version=str(data.get("version", "")),
        )
    except (ValueError, KeyError, TypeError):
        raise EtcdError(D(N_("etcdutl answered something that is not a snapshot status."))) from None
