"""Where the backup tools are: etcd's etcdctl and etcdutl (built from their Go modules at ETCD_VERSION by
deploy/sandbox/build), and PostgreSQL's pg_dump and pg_restore (the server's own major version: KUBEMATE_PG_BIN, else
the newest /usr/lib/postgresql/*/bin, else PATH)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from django.conf import settings

from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.core.tools import ToolMissing, find


def etcdctl() -> str:
    return find("etcdctl", "KUBEMATE_ETCDCTL", "ETCD_VERSION")


def etcdutl() -> str:
    return find("etcdutl", "KUBEMATE_ETCDUTL", "ETCD_VERSION")


def _pg_bin() -> Path | None:
    if settings.KUBEMATE_PG_BIN:
        return Path(settings.KUBEMATE_PG_BIN)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0],
    )
    return found[-1] if found else None


def pg_tool(name: str) -> str:
    """``pg_dump``, ``pg_restore`` or ``psql`` of the newest PostgreSQL installed."""
    folder = _pg_bin()
    if folder is not None and (folder / name).exists():
        return str(folder / name)
    found = shutil.which(name)
    if found:
        return found
    raise ToolMissing(D(N_("%(tool)s is not installed on this server; ask the platform team."), tool=name))
