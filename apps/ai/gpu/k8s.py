"""Namespaces' GPU quotas, read live from the cluster as the person (ResourceQuota is not in the inventory).

A quota on ``requests.nvidia.com/gpu`` (or a MIG slice, ``requests.nvidia.com/mig-1g.5gb``) caps what a namespace's
pods may hold; its status says how much they hold now. The read acts as the person, with short timeouts: a
refusal or a cluster that does not answer is a sentence on the page, never an error page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apps.ai.gpu.allocation import is_gpu_resource, short, whole
from apps.clusters import kube
from apps.core.deferred import N_, sentence_of
from apps.core.deferred import text as D

CONNECT_SECONDS = 2
READ_SECONDS = 4
MAX_NAMESPACES = 20  # namespaces read one by one for a person who may not list the whole cluster's quotas
MAX_QUOTAS = 2000  # quota lines kept from one cluster
QUOTA_PREFIXES = ("requests.", "limits.")


@dataclass
class QuotaLine:
    namespace: str
    quota: str
    resource: str  # as the quota names it: requests.nvidia.com/gpu
    hard: int
    used: int

    @property
    def short(self) -> str:
        return short(self.resource.split(".", 1)[1])

    @property
    def percent(self) -> int | None:
        return round(100 * self.used / self.hard) if self.hard else None


@dataclass
class Quotas:
    lines: list[QuotaLine] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)  # deferred: what could not be read, and why
    skipped: int = 0  # namespaces not read (over MAX_NAMESPACES)


def gpu_resource_of(quota_key: str) -> bool:
    prefix, _dot, rest = quota_key.partition(".")
    return f"{prefix}." in QUOTA_PREFIXES and is_gpu_resource(rest)


def lines_of(item: dict) -> list[QuotaLine]:
    """The GPU lines of one ResourceQuota as the API server sent it."""
    meta, spec, status = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
    hard, used = spec.get("hard") or {}, status.get("used") or {}
    if not isinstance(hard, dict) or not isinstance(used, dict):
        return []
    return [
        QuotaLine(
            namespace=str(meta.get("namespace", ""))[:63],
            quota=str(meta.get("name", ""))[:253],
            resource=key,
            hard=whole(value),
            used=whole(used.get(key)),
        )
        for key, value in sorted(hard.items())
        if gpu_resource_of(key)
    ]


def gpu_quotas(cluster, user, namespaces: frozenset[str] | None) -> Quotas:
    """The GPU lines of the quotas of ``namespaces`` (None: every namespace, in one list), read as ``user``."""
    found = Quotas()
    try:
        with kube.client(cluster, as_user=user, connect_timeout=CONNECT_SECONDS, read_timeout=READ_SECONDS) as k:
            if namespaces is None:
                items = k.list("ResourceQuota")
                found.lines = [line for item in items[:MAX_QUOTAS] for line in lines_of(item)]
            else:
                names = sorted(namespaces)
                found.skipped = max(len(names) - MAX_NAMESPACES, 0)
                for name in names[:MAX_NAMESPACES]:
                    try:
                        items = k.list("ResourceQuota", name)
                    except kube.Forbidden:
                        found.sentences.append(
                            D(N_("You may not read the quotas of namespace %(namespace)s."), namespace=name)
                        )
                        continue
                    found.lines += [line for item in items for line in lines_of(item)]
    except kube.Forbidden:
        found.sentences.append(D(N_("You may not read the quotas of this cluster's namespaces.")))
    except kube.KubeError as exc:
        found.sentences.append(
            D(
                N_("The quotas could not be read from cluster %(cluster)s: %(error)s"),
                cluster=cluster.name,
                error=sentence_of(exc),
            )
        )
    found.lines.sort(key=lambda line: (line.namespace, line.quota, line.resource))
    return found
