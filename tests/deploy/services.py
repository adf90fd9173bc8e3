"""What the deployment tests share: the project-local services' addresses, a database of a test's own, a Redis
database, file digests."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A database ``name`` created afresh on the project-local PostgreSQL; its URL; dropped at the end."""
    import psycopg

    url = services_env().get("DATABASE_URL")
    assert url, "no DATABASE_URL: run `deploy/local/services up` first"
    assert re.fullmatch(r"[a-z0-9_]+", name), name
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def own_database_name(suffix: str) -> str:
    """This pytest run's database name (KUBEMATE_TEST_DB) with ``suffix``: parallel runs keep apart."""
    return f"{os.environ.get('KUBEMATE_TEST_DB', 'test_kubemate')}_{suffix}"


def redis_test_url() -> str:
    """The Redis database the deployment tests' processes use (KUBEMATE_TEST_DEPLOY_REDIS_URL, else
    KUBEMATE_TEST_REDIS_URL, else db 13)."""
    base = services_env().get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
    return os.environ.get("KUBEMATE_TEST_DEPLOY_REDIS_URL") or os.environ.get("KUBEMATE_TEST_REDIS_URL") or f"{base}/13"
