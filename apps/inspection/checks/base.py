"""What a check is, what it finds, and the one catalogue of them.

A check has an id (``cluster.nodes.not_ready``), a domain, a severity, and three bilingual sentences: its title,
why it matters and how to fix it (a short runbook line). Two shapes:

- ``ObjectCheck``: looks at one inventory row at a time. The runner streams each kind once per cluster and hands
  every row to every object check of that kind, so 15,000 pods are read once, not once per check.
- ``Check``: looks at the whole target at once (``run(ctx)``): node health from the apiserver, host reports from
  agents, Prometheus queries, a database.

Both yield ``Finding``s for what is wrong; a check that yields nothing for a target passed there. A check that
cannot look (Prometheus not configured, an agent that does not answer) raises ``CannotCheck`` with a sentence:
its outcome is "not checked", never "passed".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.deferred import Failure


class Domain(models.TextChoices):
    CLUSTER = "cluster", _("Cluster")
    HOSTS = "hosts", _("Hosts")
    APPS = "apps", _("Apps")
    DATABASES = "databases", _("Databases")


class Severity(models.TextChoices):
    CRITICAL = "critical", _("Critical")
    WARNING = "warning", _("Warning")
    INFO = "info", _("Info")


# How much a check weighs in its domain's score (100 x weight passed / weight checked).
WEIGHT = {Severity.CRITICAL: 5, Severity.WARNING: 2, Severity.INFO: 1}


class CannotCheck(Failure):
    """The check could not look at its target; the message says why (a deferred sentence)."""


@dataclass
class Finding:
    """One thing a check found wrong.

    ``subject`` names what is wrong, stably from run to run (``Pod payments/api-7d9f``, ``node-1:/var``,
    ``orders@pg-main``): a finding is "unchanged" when the same check finds the same subject again. ``message``
    is a deferred sentence (``apps.core.deferred.text``) with the measured values. ``namespace`` places the
    finding for tenancy: project users see the findings of their namespaces only. ``severity`` overrides the
    check's (a certificate expiring tomorrow is critical, in 20 days a warning).
    """

    subject: str
    message: str
    namespace: str = ""
    severity: str = ""
    facts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    id: str
    domain: str
    severity: str
    title: object  # lazy translation
    why: object
    fix: object
    run: Callable[..., Iterable[Finding]] | None = None  # run(ctx, target) for whole-target checks
    # Which targets the check is run against: "cluster" (each cluster of the run), "agent" (each host agent),
    # "database" (each registered database).
    target: str = "cluster"
    # Only for databases of this engine ("postgresql" or "mysql"); blank: any.
    engine: str = ""


@dataclass(frozen=True)
class ObjectCheck(Check):
    kind: str = ""  # the inventory kind whose rows ``visit`` sees
    visit: Callable[..., Iterable[Finding]] | None = None  # visit(ctx, row) -> findings; row is a RowView


CATALOGUE: dict[str, Check] = {}


def register(check: Check) -> Check:
    if check.id in CATALOGUE:
        raise ValueError(f"check {check.id} registered twice")
    if check.domain not in Domain.values or check.severity not in Severity.values:
        raise ValueError(f"check {check.id}: bad domain or severity")
    CATALOGUE[check.id] = check
    return check


def check(id: str, domain: str, severity: str, title, why, fix, *, target: str = "cluster", engine: str = ""):
    """Decorator: register ``fn(ctx, target) -> findings`` as a whole-target check."""

    def wrap(fn):
        register(Check(id, domain, severity, title, why, fix, run=fn, target=target, engine=engine))
        return fn

    return wrap


def object_check(id: str, kind: str, severity: str, title, why, fix):
    """Decorator: register ``fn(ctx, row) -> findings`` as a check of each inventory row of ``kind``."""

    def wrap(fn):
        register(ObjectCheck(id, Domain.CLUSTER, severity, title, why, fix, kind=kind, visit=fn))
        return fn

    return wrap


def findings(*items: Finding | None) -> Iterator[Finding]:
    return (item for item in items if item is not None)
