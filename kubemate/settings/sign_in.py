"""What the directory (ldap.py) and single sign-on (oidc.py) settings share: a yes/no variable, and a sign-in
backend placed right after django-axes (which must see every attempt first)."""

from __future__ import annotations

AXES_BACKEND = "axes.backends.AxesStandaloneBackend"


def flag(value: str | None, default: bool = False) -> bool:
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def backends_with(backend: str, backends: list[str]) -> list[str]:
    """``backends`` with ``backend`` once, after django-axes's (first when there is none)."""
    result = [b for b in backends if b != backend]
    position = result.index(AXES_BACKEND) + 1 if AXES_BACKEND in result else 0
    result.insert(position, backend)
    return result
