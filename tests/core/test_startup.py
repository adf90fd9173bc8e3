"""Bad settings stop Kubemate with one sentence; good production settings pass check --deploy."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "k7Qe1-Zp9vX2mL4tR8sW0yB3nC6fH5jD-aG1uI9oP2qE7rT4yU8iO3pA6sD0fGhJ"


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECRET_", "KUBEMATE_", "ALLOWED_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        "DJANGO_SETTINGS_MODULE": "kubemate.settings.production",
        "SECRET_KEY": GOOD_SECRET,
        "KUBEMATE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "console.bank.example",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v}


def test_production_refuses_to_start_without_secret_key():
    result = run_manage("check", **production_env(SECRET_KEY=""))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "Kubemate cannot start: SECRET_KEY is not set; set it to a random string of at least 50 characters."
    )


def test_production_refuses_to_start_without_encryption_keys():
    result = run_manage("check", **production_env(KUBEMATE_ENCRYPTION_KEYS=""))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("Kubemate cannot start: KUBEMATE_ENCRYPTION_KEYS is not set")


def test_production_refuses_a_malformed_encryption_key():
    result = run_manage("check", **production_env(KUBEMATE_ENCRYPTION_KEYS="not-a-key"))
    assert result.returncode == 1
    assert "is not a Fernet key" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_fails_with_one_sentence():
    result = run_manage("migrate", DATABASE_URL="postgres://kubemate@127.0.0.1:1/kubemate")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Kubemate cannot start: the database at 127.0.0.1:1/kubemate is not reachable")
    assert lines[0].endswith("check DATABASE_URL and that PostgreSQL is running.")


def test_non_postgres_database_url_is_refused():
    result = run_manage("check", DATABASE_URL="sqlite:///db.sqlite3")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Kubemate cannot start: DATABASE_URL must point at PostgreSQL (postgres://user:password@host:port/name)."
    )


def test_check_deploy_is_clean_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **production_env())
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
