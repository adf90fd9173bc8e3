"""Where a cluster's Prometheus, Alertmanager, log store and Jaeger answer, and the credentials they ask for.

An ``Endpoint`` is what the doors (``prometheus.py``, ``alertmanager.py``) are given: the URL (without any
user:password part, which the registry refuses) and basic-auth or bearer-token credentials decrypted from the
cluster's row (``Cluster.endpoint_auth``) at the moment of the call. Secrets stay out of ``repr`` so an endpoint in
a log line or a traceback shows no password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit


def shown_url(url: str) -> str:
    """The URL without user:password@, for sentences and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class Endpoint:
    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    tenant: str = ""

    @property
    def shown(self) -> str:
        return shown_url(self.url)

    @property
    def base(self) -> str:
        return self.shown.rstrip("/")

    @property
    def auth(self) -> tuple[str, str] | None:
        """Basic-auth pair for requests, when a user name is set."""
        return (self.username, self.password) if self.username else None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def is_thanos(self) -> bool:
        """A Thanos Querier (it takes ``dedup`` and ``partial_response``): its address names it."""
        parts = urlsplit(self.url)
        return "thanos" in (parts.hostname or "").lower() or "thanos" in parts.path.lower()


def of(cluster, endpoint: str) -> Endpoint:
    """The ``endpoint`` ("prometheus", "alertmanager", "logs" or "jaeger") of ``cluster``, with its decrypted
    credentials and tenant."""
    url = getattr(cluster, f"{endpoint}_url") or ""
    secret = cluster.endpoint_auth(endpoint) if url else {}
    return Endpoint(url=url, **{k: secret.get(k, "") for k in ("username", "password", "token", "tenant")})


def prometheus(cluster) -> Endpoint:
    return of(cluster, "prometheus")


def alertmanager(cluster) -> Endpoint:
    return of(cluster, "alertmanager")


def logs(cluster) -> Endpoint:
    return of(cluster, "logs")


def jaeger(cluster) -> Endpoint:
    return of(cluster, "jaeger")
