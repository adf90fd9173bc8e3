"""What the deployment tests share: the project-local services' addresses and file digests."""

from __future__ import annotations

import os
from pathlib import Path

from apps.backups.s3 import file_sha256
from tests.plugins.sandbox import read_env_file

REPO = Path(__file__).resolve().parents[2]


def services_env() -> dict[str, str]:
    """DATABASE_URL and REDIS_URL of the project-local services (the environment, else .run/services.env)."""
    path = REPO / ".run" / "services.env"
    values = read_env_file(path) if path.is_file() else {}
    values.update({key: os.environ[key] for key in ("DATABASE_URL", "REDIS_URL") if os.environ.get(key)})
    return values


def sha256(path: Path) -> str:
    """The file's SHA-256 in hex (one reader for the whole project: apps.backups.s3.file_sha256)."""
    return file_sha256(path)
