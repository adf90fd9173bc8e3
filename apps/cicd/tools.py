"""Where the image tools are: crane (go-containerregistry) and osv-scanner (``core.tools`` finds them: a setting,
KUBEMATE_CRANE or KUBEMATE_OSV_SCANNER, else the build cache's copy at the pinned version, else PATH)."""

from __future__ import annotations

from apps.core.tools import find


def crane() -> str:
    return find("crane", "KUBEMATE_CRANE", "CRANE_VERSION")


def osv_scanner() -> str:
    return find("osv-scanner", "KUBEMATE_OSV_SCANNER", "OSV_SCANNER_VERSION")
