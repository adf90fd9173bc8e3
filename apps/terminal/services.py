"""Opening, claiming and ending web terminal sessions, each audited.

The console makes a session when a person asks for a shell (``open_session``: the action's capability was
checked by the view, the password by the confirmation); the terminal service (server.py) claims it once when the
browser's websocket arrives with the same signed-in session, runs the shell as that person through
``clusters.kube``, and ends it (``finish``) with what happened: closed, exited, idle, time limit, refused.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.clusters.actions.targets import ActionError, Target
from apps.core import audit
from apps.core.models import AuditEvent
from apps.terminal.models import TerminalSession

# The shells a person may start; nothing typed into a form becomes a command line.
SHELLS = {"sh": ["/bin/sh"], "bash": ["/bin/bash"]}
CLAIM_SECONDS = 60


def idle_seconds() -> int:
    return int(getattr(settings, "KUBEMATE_TERMINAL_IDLE_SECONDS", 600))


def max_seconds() -> int:
    return int(getattr(settings, "KUBEMATE_TERMINAL_MAX_SECONDS", 3600))


def max_input_bytes() -> int:
    return int(getattr(settings, "KUBEMATE_TERMINAL_MAX_INPUT_BYTES", 16 * 1024))


def max_open_per_user() -> int:
    return int(getattr(settings, "KUBEMATE_TERMINAL_MAX_PER_USER", 3))


def _audit(session: TerminalSession, action: str, *, request=None, detail=None, error: str = "") -> None:
    audit.record(
        actor=session.user,
        action=action,
        result=AuditEvent.Result.FAILURE if error else AuditEvent.Result.SUCCESS,
        cluster=session.cluster.name,
        namespace=session.namespace,
        kind="Pod",
        name=session.pod,
        detail={
            "session": str(session.pk),
            "container": session.container,
            "command": session.command,
            **(detail or {}),
            **({"error": error} if error else {}),
        },
        request=request,
    )


def open_session(*, actor, target: Target, container: str, shell: str, containers: list[str], request=None):
    """A waiting session for ``actor``'s shell in ``container`` of the pod ``target``; audited with the reason."""
    if container not in containers:
        raise ActionError(
            _("Pod %(pod)s has no container %(container)s.") % {"pod": target.name, "container": container}
        )
    if shell not in SHELLS:
        raise ActionError(_("Choose a shell from the list."))
    expire_waiting()
    open_now = TerminalSession.objects.filter(user=actor).exclude(state=TerminalSession.State.ENDED).count()
    if open_now >= max_open_per_user():
        raise ActionError(_("You have %(count)s terminals open already; close one first.") % {"count": open_now})
    with transaction.atomic():
        session = TerminalSession.objects.create(
            user=actor,
            cluster=target.cluster,
            namespace=target.namespace,
            pod=target.name,
            container=container,
            command=SHELLS[shell],
        )
        _audit(
            session,
            "clusters.pod.terminal.open",
            request=request,
            detail={"idle_seconds": idle_seconds(), "max_seconds": max_seconds()},
        )
    return session


def claim(session_id, user) -> TerminalSession | None:
    """The session, now open, when it waits for this very user and is fresh; None otherwise (at most once)."""
    fresh = timezone.now() - timedelta(seconds=CLAIM_SECONDS)
    claimed = TerminalSession.objects.filter(
        pk=session_id, user=user, state=TerminalSession.State.WAITING, created_at__gte=fresh
    ).update(state=TerminalSession.State.OPEN, opened_at=timezone.now())
    if not claimed:
        return None
    return TerminalSession.objects.select_related("cluster", "user").get(pk=session_id)


def finish(session: TerminalSession, end: str, *, bytes_in: int, bytes_out: int, error: str = "") -> None:
    """End an open session once, with its reason and sizes; audited."""
    now = timezone.now()
    with transaction.atomic():
        ended = (
            TerminalSession.objects.filter(pk=session.pk)
            .exclude(state=TerminalSession.State.ENDED)
            .update(state=TerminalSession.State.ENDED, end=end, ended_at=now, bytes_in=bytes_in, bytes_out=bytes_out)
        )
        if not ended:
            return
        started = session.opened_at or session.created_at
        _audit(
            session,
            "clusters.pod.terminal.end",
            detail={
                "end": end,
                "seconds": round((now - started).total_seconds(), 1),
                "bytes_in": bytes_in,
                "bytes_out": bytes_out,
            },
            error=error,
        )


def expire_waiting() -> int:
    """Sessions the browser never claimed end as expired (audited)."""
    stale = timezone.now() - timedelta(seconds=CLAIM_SECONDS)
    count = 0
    for session in TerminalSession.objects.filter(
        state=TerminalSession.State.WAITING, created_at__lt=stale
    ).select_related("cluster", "user"):
        finish(session, TerminalSession.End.EXPIRED, bytes_in=0, bytes_out=0)
        count += 1
    return count


def end_all_open() -> int:
    """At the terminal service's start: the sessions it held before ended with it (audited)."""
    count = 0
    for session in TerminalSession.objects.filter(state=TerminalSession.State.OPEN).select_related("cluster", "user"):
        finish(session, TerminalSession.End.RESTARTED, bytes_in=session.bytes_in, bytes_out=session.bytes_out)
        count += 1
    return count


def end_sentence(end: str) -> str:
    """What the terminal says when it ends, in the reader's language."""
    idle, limit = max(idle_seconds() // 60, 1), max(max_seconds() // 60, 1)
    return {
        TerminalSession.End.CLOSED: _("The terminal is closed."),
        TerminalSession.End.EXITED: _("The shell exited."),
        TerminalSession.End.IDLE: ngettext(
            "Closed after %(minutes)s minute without input.", "Closed after %(minutes)s minutes without input.", idle
        )
        % {"minutes": idle},
        TerminalSession.End.LIMIT: ngettext(
            "Closed at the time limit of %(minutes)s minute.", "Closed at the time limit of %(minutes)s minutes.", limit
        )
        % {"minutes": limit},
        TerminalSession.End.TOO_LARGE: _("Closed: a single input may be at most %(kib)s KiB.")
        % {"kib": max_input_bytes() // 1024},
    }.get(end, str(dict(TerminalSession.End.choices).get(end, end)))
