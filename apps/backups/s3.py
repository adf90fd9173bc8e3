"""The one door to S3-compatible object storage (boto3, path-style by default), for every backup Kubemate writes.

``Access`` is what a call needs, built from a ``Target`` (``access_for``) or from a form before the target is saved.
Each call makes its own client with short timeouts and few retries; the target's certificate authority goes to a
private temporary file for the call. Errors become ``StorageError`` with a sentence that says what to check (address,
keys, bucket, certificate), never the keys.

An upload is whole or absent: one PUT up to ``PART_SIZE``, else a multipart upload that S3 lists only once it is
completed (s3transfer aborts it on failure). Its SHA-256 travels as object metadata and is read back with HEAD.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

logger = logging.getLogger(__name__)
# boto's debug logs hold request signatures: never below WARNING, whatever the root logger says.
for _name in ("boto3", "botocore", "s3transfer", "urllib3.connectionpool"):
    logging.getLogger(_name).setLevel(max(logging.getLogger(_name).level, logging.WARNING))

MiB = 1024 * 1024
PROBE_PREFIX = ".kubemate-probe"


class StorageError(Failure):
    """The storage target refused or could not be reached; the sentence says what to check."""


@dataclass(frozen=True)
class Access:
    endpoint: str
    bucket: str
    region: str
    path_style: bool
    access_key: str
    secret_key: str
    ca_pem: str = ""

    def __repr__(self) -> str:  # never the keys
        return f"Access({self.endpoint!r}, bucket={self.bucket!r})"


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


def access_for(target) -> Access:
    return Access(
        endpoint=target.endpoint,
        bucket=target.bucket,
        region=target.region or "us-east-1",
        path_style=target.path_style,
        access_key=target.access_key(),
        secret_key=target.secret_key(),
        ca_pem=target.ca_pem,
    )


def part_size() -> int:
    return max(5, int(getattr(settings, "KUBEMATE_BACKUP_PART_MB", 16))) * MiB


_SESSION_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _boto() -> SimpleNamespace:
    """boto3 and botocore, imported at the first call that talks to a storage: ~9 MB that web and worker processes
    which never touch a backup do not carry (bench/README.md, the footprint)."""
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        EndpointConnectionError,
        SSLError,
    )

    return SimpleNamespace(
        boto3=boto3,
        TransferConfig=TransferConfig,
        Config=Config,
        BotoCoreError=BotoCoreError,
        ClientError=ClientError,
        ConnectionClosedError=ConnectionClosedError,
        EndpointConnectionError=EndpointConnectionError,
        SSLError=SSLError,
    )


@lru_cache(maxsize=1)
def _session():
    """One boto3 session per process: a new one loads botocore's service model again (0.14 s a call). Clients are
    made from it under a lock (a session is not safe to share between threads making clients)."""
    return _boto().boto3.session.Session()


@contextmanager
def _client(access: Access, *, read_timeout: float = 60.0):
    with tempfile.TemporaryDirectory(prefix="kubemate-s3-") as tmp:
        verify: str | bool = True
        if access.ca_pem.strip():
            ca = Path(tmp) / "ca.pem"
            ca.write_text(access.ca_pem)
            verify = str(ca)
        config = _boto().Config(
            region_name=access.region,
            s3={"addressing_style": "path" if access.path_style else "virtual"},
            connect_timeout=5,
            read_timeout=read_timeout,
            retries={"max_attempts": 2, "mode": "standard"},
            # Checksums only where S3 requires them: on-premises stores differ in which newer ones they know.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            user_agent_appid="kubemate",
        )
        with _SESSION_LOCK:
            client = _session().client(
                "s3",
                endpoint_url=access.endpoint,
                aws_access_key_id=access.access_key,
                aws_secret_access_key=access.secret_key,
                verify=verify,
                config=config,
            )
        try:
            yield client
        finally:
            client.close()


def _sentence(access: Access, exc: BaseException) -> StorageError:
    """A StorageError for what boto raised."""
    b = _boto()
    if isinstance(exc, b.SSLError):
        return StorageError(
            D(
                N_("The storage at %(endpoint)s presented a certificate that is not trusted; add its CA."),
                endpoint=access.endpoint,
            )
        )
    if isinstance(exc, b.EndpointConnectionError | b.ConnectionClosedError | ConnectionError | TimeoutError):
        return StorageError(
            D(
                N_("The storage at %(endpoint)s cannot be reached or stopped answering; check that it is running."),
                endpoint=access.endpoint,
            )
        )
    if isinstance(exc, b.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "Forbidden"}:
            return StorageError(
                D(
                    N_("The storage refused the access key for bucket %(bucket)s (%(code)s); check the keys."),
                    bucket=access.bucket,
                    code=code,
                )
            )
        if code in {"NoSuchBucket", "404", "NotFound"}:
            return StorageError(D(N_("The bucket %(bucket)s does not exist on this storage."), bucket=access.bucket))
        return StorageError(
            D(N_("The storage answered %(code)s for bucket %(bucket)s."), code=code or "?", bucket=access.bucket)
        )
    if isinstance(exc, b.BotoCoreError):
        return StorageError(
            D(
                N_("The storage at %(endpoint)s cannot be reached or stopped answering; check that it is running."),
                endpoint=access.endpoint,
            )
        )
    return StorageError(D(N_("The storage failed: %(error)s"), error=str(exc)[:200]))


@contextmanager
def _errors(access: Access):
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        if not isinstance(exc, _boto().BotoCoreError | _boto().ClientError | OSError):
            raise
        raise _sentence(access, exc) from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check(access: Access) -> None:
    """Write, read back and delete a probe object; StorageError when any step fails or reads back wrong."""
    key = f"{PROBE_PREFIX}/{uuid.uuid4().hex}"
    body = os.urandom(64)
    with _errors(access), _client(access, read_timeout=15) as client:
        client.put_object(Bucket=access.bucket, Key=key, Body=body)
        try:
            read = client.get_object(Bucket=access.bucket, Key=key)["Body"].read(1024)
        finally:
            client.delete_object(Bucket=access.bucket, Key=key)
    if read != body:
        raise StorageError(D(N_("The storage returned something else than was written; it cannot hold backups.")))


def upload(
    access: Access, key: str, path: Path, *, on_progress: Callable[[int], None] | None = None
) -> tuple[int, str]:
    """Upload ``path`` to ``key``; ``(size, sha256)`` as read back. Whole or absent (see the module docstring)."""
    size = path.stat().st_size
    sha = file_sha256(path)
    sent = 0

    def progress(amount: int) -> None:
        nonlocal sent
        sent += amount
        if on_progress is not None:
            on_progress(sent)

    config = _boto().TransferConfig(
        multipart_threshold=part_size(), multipart_chunksize=part_size(), max_concurrency=2, use_threads=True
    )
    with _errors(access), _client(access) as client:
        client.upload_file(
            str(path), access.bucket, key, ExtraArgs={"Metadata": {"sha256": sha}}, Callback=progress, Config=config
        )
        head = client.head_object(Bucket=access.bucket, Key=key)
    if int(head.get("ContentLength", -1)) != size or (head.get("Metadata") or {}).get("sha256") != sha:
        raise StorageError(D(N_("The object written to the storage does not match the file sent; it was not kept.")))
    return size, sha


def download(access: Access, key: str, dest: Path, *, max_bytes: int) -> str:
    """Download ``key`` to ``dest`` (at most ``max_bytes``); its SHA-256 checked against the metadata it was
    written with. Returns the SHA-256."""
    with _errors(access), _client(access) as client:
        try:
            head = client.head_object(Bucket=access.bucket, Key=key)
        except _boto().ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in {"404", "NoSuchKey", "NotFound"}:
                raise StorageError(
                    D(
                        N_("The object %(key)s is not on the storage (bucket %(bucket)s)."),
                        key=key,
                        bucket=access.bucket,
                    )
                ) from None
            raise
        size = int(head.get("ContentLength", 0))
        if size > max_bytes:
            raise StorageError(
                D(
                    N_("The object %(key)s is larger than %(limit)s MiB; it was not read."),
                    key=key,
                    limit=max_bytes // MiB,
                )
            )
        client.download_file(access.bucket, key, str(dest))
    sha = file_sha256(dest)
    expected = (head.get("Metadata") or {}).get("sha256", "")
    if expected and expected != sha:
        dest.unlink(missing_ok=True)
        raise StorageError(D(N_("The object %(key)s does not match the checksum it was written with."), key=key))
    return sha


def delete(access: Access, key: str) -> None:
    with _errors(access), _client(access, read_timeout=15) as client:
        client.delete_object(Bucket=access.bucket, Key=key)


def objects(access: Access, prefix: str = "", *, limit: int = 100_000) -> Iterator[StoredObject]:
    """The objects under ``prefix`` (at most ``limit``), page by page."""
    seen = 0
    with _errors(access), _client(access, read_timeout=30) as client:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=access.bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000}):
            for item in page.get("Contents") or []:
                yield StoredObject(item["Key"], int(item.get("Size", 0)), item.get("LastModified"))
                seen += 1
                if seen >= limit:
                    return


def exists(access: Access, key: str) -> bool:
    with _errors(access), _client(access, read_timeout=15) as client:
        try:
            client.head_object(Bucket=access.bucket, Key=key)
        except _boto().ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
    return True


def usage(access: Access, prefix: str = "") -> tuple[int, int]:
    """(bytes, objects) under ``prefix``, probe objects left out."""
    total = count = 0
    for item in objects(access, prefix):
        if item.key.startswith(PROBE_PREFIX):
            continue
        total += item.size
        count += 1
    return total, count
