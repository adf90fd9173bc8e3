"""Start-up checks that fail with one clear sentence instead of a stack trace.

A misconfigured console must tell the operator what to fix. Raising
``StartupError`` (a ``SystemExit`` subclass) prints only its message and exits
with status 1, in manage.py, gunicorn and Celery alike.
"""

from __future__ import annotations

import os
from pathlib import Path


class StartupError(SystemExit):
    """A configuration problem that stops Kubemate from starting."""

    def __init__(self, sentence: str) -> None:
        super().__init__(f"Kubemate cannot start: {sentence}")


def load_env_file(path: Path) -> None:
    """Read KEY=VALUE lines into os.environ without overriding what is already set.

    `make services` writes the addresses of the project-local PostgreSQL and
    Redis to .run/services.env; reading it here lets `manage.py` work from a
    plain shell too.
    """
    if not path.is_file():
        return
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        os.environ.setdefault(key.strip(), value.strip().strip('"').strip("'"))


def require_database(timeout: int = 3) -> None:
    """Fail with one sentence when the configured database cannot be reached."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    try:
        conn = psycopg.connect(
            host=db.get("HOST") or None,
            port=db.get("PORT") or None,
            dbname=db.get("NAME"),
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            connect_timeout=timeout,
        )
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else exc.__class__.__name__
        where = f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db.get('NAME')}"
        raise StartupError(
            f"the database at {where} is not reachable ({reason}); check DATABASE_URL and that PostgreSQL is running."
        ) from None
    conn.close()
