"""Facts about Kubemate's own services, for /readyz and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection


@dataclass(frozen=True)
class ServiceState:
    ok: bool
    detail: str = ""


def database_state() -> ServiceState:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            version = cursor.fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - any failure means not reachable; the reason is shown.
        return ServiceState(False, str(exc).strip().splitlines()[-1] if str(exc).strip() else exc.__class__.__name__)
    return ServiceState(True, " ".join(version.split()[:2]))


def redis_state() -> ServiceState:
    from apps.core.redis import get_redis

    try:
        info = get_redis().info("server")
    except Exception as exc:  # noqa: BLE001
        return ServiceState(False, str(exc) or exc.__class__.__name__)
    return ServiceState(True, f"Redis {info.get('redis_version', '?')}")


def worker_state() -> ServiceState:
    from apps.core.heartbeat import alive_workers

    try:
        count = alive_workers()
    except Exception as exc:  # noqa: BLE001
        return ServiceState(False, str(exc) or exc.__class__.__name__)
    return ServiceState(count > 0, str(count))
