"""The CI/CD storage folder (settings.KUBEMATE_CICD_STORAGE): uploaded jars and wars by SHA-256, each run's files
(the image archive that was scanned, the scan report, the SBOM) and the imported vulnerability databases. Files are
written beside their final name and renamed, so a crash leaves no half file under a name that is read."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from pathlib import Path

from django.conf import settings

CHUNK = 1024 * 1024


def root() -> Path:
    path = Path(settings.KUBEMATE_CICD_STORAGE)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def resolve(relative: str) -> Path:
    """The absolute path of a stored file; refuses names that leave the storage folder."""
    base = root().resolve()
    path = (base / relative).resolve()
    if base not in path.parents:
        raise ValueError(f"{relative!r} is outside the CI/CD storage")
    return path


def run_dir(run_id: int) -> Path:
    path = root() / "runs" / str(run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def relative(path: Path) -> str:
    return str(Path(path).resolve().relative_to(root().resolve()))


class TooLarge(Exception):
    """The stream is longer than the limit; nothing was kept."""


def save_stream(chunks, folder: str, suffix: str, limit: int) -> tuple[str, int, str]:
    """Write ``chunks`` (an iterable of bytes) under ``folder`` named by their SHA-256: (relative path, size,
    sha256). TooLarge past ``limit`` bytes, with nothing left behind."""
    target_dir = root() / folder
    target_dir.mkdir(parents=True, exist_ok=True)
    temp = target_dir / f".incoming-{uuid.uuid4().hex}"
    digest = hashlib.sha256()
    size = 0
    try:
        with temp.open("wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise TooLarge
                digest.update(chunk)
                out.write(chunk)
        final = target_dir / f"{digest.hexdigest()}{suffix}"
        os.replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)
    return relative(final), size, digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def remove(relative_path: str) -> None:
    if relative_path:
        with contextlib.suppress(ValueError):
            resolve(relative_path).unlink(missing_ok=True)


def remove_run(run_id: int) -> None:
    shutil.rmtree(root() / "runs" / str(run_id), ignore_errors=True)


def usage() -> int:
    """Bytes the storage folder holds."""
    total = 0
    for dirpath, _dirs, files in os.walk(root()):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(dirpath, name))
    return total
