"""The door between the services that change clusters and the compliance app that may hold a change back.

A bank's change management wants a second person to approve some production changes (four-eyes) and nothing to
change during a freeze. The services that change clusters live in many apps, below and above the compliance app
that decides; none of them imports it. Instead:

- before a gated service changes anything, it describes the change (``Change``: what, where, who, the rendered
  objects a checker reads, and the payload its applier needs) and calls ``guard(change)``;
- the compliance app registers itself at start (``register``, a ``Gatekeeper``). A service first asks whether any
  rule could hold its action there (``watched``): only then does it describe the change. The gate lets it go on, or
  records a change request and raises ``ApprovalRequired`` (the service answers "waiting for approval"), or
  refuses it (``ChangeRefused``: a freeze, with the next window named);
- each gated service registers an applier for its action (``register_applier``): when a request is approved, the
  compliance app calls it with the recorded payload, as the maker. ``stale`` says, before that, whether the
  cluster or the object moved since the request (a deferred sentence) or not (None).

Work that changes clusters on its own (automatic canary steps) asks ``closed(cluster, namespace, action)``: a
freeze answers a sentence, and the work pauses instead of changing anything.

Changes that other paths can make too (a role given in Django admin, a shell, a management command) are also held
back where the rows are written: the model signals ask ``held(change)`` and refuse what a policy or a freeze covers,
unless the console's service guarded it first and runs the write inside ``cleared()``.

Without a registered gate, ``guard`` lets everything through (a console without the compliance app).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

from apps.core.deferred import Failure


@dataclass
class Change:
    """One change a person asked for, described before it is made."""

    action: str  # the gated action, e.g. "releases.deploy" (compliance.approvals.ACTIONS names them)
    cluster: object  # the Cluster row; None for a change to the whole platform (a platform role), every cluster's
    namespace: str  # "" for a change to the cluster itself (a node)
    actor: object  # the maker: the person whose change it is
    kind: str  # the object changed, as the checker reads it
    name: str
    summary: str  # a deferred sentence: "Deploy payments-api with image …"
    payload: dict  # what the applier needs, JSON only, no secret in clear
    manifests: list[dict] = field(default_factory=list)  # the objects applied, secrets masked
    diff: str = ""  # against what runs now, for the checker
    base: dict = field(default_factory=dict)  # the state the change was made against (staleness)
    # Where else the change reaches, for the policies and windows scoped to a project: more namespaces (a restore
    # into several), a project named outright (a project's role binding), or every project of the cluster (a
    # cluster-wide binding; with no cluster, every project of every cluster).
    namespaces: list[str] = field(default_factory=list)
    project: object = None
    every_project: bool = False

    def scope(self) -> dict:
        """The reach of the change as JSON, kept with its request: the windows are asked again at approval."""
        return {
            "namespaces": sorted({n for n in [self.namespace, *self.namespaces] if n}),
            "project": getattr(self.project, "pk", None),
            "every_project": self.every_project,
        }


class ApprovalRequired(Failure):
    """The change was recorded as a change request and waits for a second person."""

    def __init__(self, sentence: str, request_id: int):
        super().__init__(sentence)
        self.request_id = request_id


class ChangeRefused(Failure):
    """The change may not be made now (a freeze, outside a window, a refused break-glass)."""


@dataclass(frozen=True)
class Applier:
    apply: Callable  # apply(payload, maker, *, change_request) -> deferred sentence of what was done
    stale: Callable  # stale(payload, base) -> deferred sentence, or None when nothing moved
    rendered: Callable | None = None  # rendered(payload) -> the objects it would apply now (secrets masked)


class Gatekeeper(Protocol):
    """What the compliance app registers (apps/compliance/approvals/services.py)."""

    def watched(self, action: str, cluster, namespace: str) -> bool: ...
    def gate(self, change: Change, *, request=None, break_glass: str = "") -> None: ...
    def hold(self, change: Change) -> str | None: ...
    def closed(self, cluster, namespace: str, action: str) -> str | None: ...


_keeper: Gatekeeper | None = None
_appliers: dict[str, Applier] = {}
_cleared: ContextVar[bool] = ContextVar("kubemate_gate_cleared", default=False)


def register(keeper: Gatekeeper | None) -> None:
    global _keeper
    _keeper = keeper


def watched(action: str, cluster, namespace: str = "") -> bool:
    """Whether a policy or a window could hold ``action`` back in ``cluster``/``namespace``: a service describes its
    change (renders, diffs, dry-runs) only then, so a console without rules pays nothing for them."""
    return _keeper is not None and _keeper.watched(action, cluster, namespace)


def held(change: Change) -> str | None:
    """Why ``change`` may not be written as it is (a policy wants a second person, a freeze), a deferred sentence;
    None when it may, or when its service already guarded it (``cleared``)."""
    if _keeper is None or _cleared.get():
        return None
    return _keeper.hold(change)


@contextmanager
def cleared() -> Iterator[None]:
    """The block writes a change its service guarded (or an approved request applies): the rows' own checks
    (``held``) let it through."""
    token = _cleared.set(True)
    try:
        yield
    finally:
        _cleared.reset(token)


def closed(cluster, namespace: str, action: str) -> str | None:
    """Why ``action`` may not run now by itself (a freeze), a deferred sentence; None when it may."""
    return None if _keeper is None else _keeper.closed(cluster, namespace, action)


def register_applier(action: str, *, apply: Callable, stale: Callable, rendered: Callable | None = None) -> None:
    _appliers[action] = Applier(apply=apply, stale=stale, rendered=rendered)


def applier(action: str) -> Applier | None:
    return _appliers.get(action)


def break_glass_of(request) -> str:
    """The emergency reason a person typed in a form's break-glass field (the gate checks who may use it)."""
    return " ".join(str(request.POST.get("break_glass", ""))[:1000].split())[:500]


def guard(change: Change, *, request=None, break_glass: str = "") -> None:
    """Let ``change`` go on, or raise ApprovalRequired / ChangeRefused. ``break_glass`` is the emergency reason of
    a person who applies without approval (the gate checks they may, audits it and tells the security contact)."""
    if _keeper is not None:
        _keeper.gate(change, request=request, break_glass=break_glass)
