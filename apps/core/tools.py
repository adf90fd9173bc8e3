"""Where the outside tools are (crane, osv-scanner, etcdctl, etcdutl, ...): built from their Go modules at the
versions deploy/sandbox/versions.env pins and cached by deploy/sandbox/build under ~/.cache/kubemate. A setting
(e.g. KUBEMATE_CRANE) names another path, as the offline bundle does; else the command on PATH."""

from __future__ import annotations

import os
import shutil
from functools import cache
from pathlib import Path

from django.conf import settings

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

VERSIONS = Path(settings.BASE_DIR) / "deploy" / "sandbox" / "versions.env"


class ToolMissing(Failure):
    """A tool Kubemate needs is not installed."""


@cache
def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    if VERSIONS.exists():
        for line in VERSIONS.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                pins[key.strip()] = value.strip()
    return pins


def _cache_root() -> Path:
    return Path(os.environ.get("KUBEMATE_CACHE") or Path.home() / ".cache" / "kubemate") / "sandbox"


def find(name: str, setting: str, pin: str) -> str:
    """The path of tool ``name``: the setting, else the build cache's copy at the pinned version, else PATH."""
    configured = getattr(settings, setting, "")
    if configured:
        return configured
    version = _pins().get(pin)
    if version:
        cached = _cache_root() / f"{name}-v{version}" / name
        if cached.exists():
            return str(cached)
    found = shutil.which(name)
    if found:
        return found
    raise ToolMissing(D(N_("%(tool)s is not installed on this server; ask the platform team."), tool=name))
