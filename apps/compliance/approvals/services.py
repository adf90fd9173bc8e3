"""Four-eyes approval: the gate that holds changes back, and the decisions on change requests.

``gate`` is registered with apps/core/gates.py at start (apps.py). When a gated service calls ``gates.guard``:

- no enabled policy covers the action, the cluster (its labels, env=prod) and the project of the namespace: the
  change goes on;
- a policy covers it: ``record`` stores a change request with exactly what would be applied (the rendered objects,
  their hash, the applier's payload, the state it was made against), audits ``changes.request`` and mails the
  approvers; ``gates.ApprovalRequired`` tells the service to answer "waiting for approval";
- with a break-glass reason, a person holding ``changes.break_glass`` applies at once: the request is stored as
  an emergency change, audited ``changes.break_glass`` (a failure when refused) and mailed to the security contact.

A checker (``changes.approve``, not the maker) approves: the request must still be pending and not expired; the
domain's applier says whether the object moved since (stale: refused with the reason); then it applies the payload
as the maker, and only then is the request marked applied. ``reject`` and ``cancel`` (the maker) close it; beat's
``expire_due`` closes what nobody decided in time. Every decision is audited and mailed to the maker.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.accounts import access
from apps.accounts.capabilities import CHANGES_APPROVE, CHANGES_BREAK_GLASS
from apps.compliance.approvals import windows
from apps.compliance.approvals.windows import covering
from apps.compliance.models import ApprovalPolicy, ChangeRequest, ChangeWindow
from apps.core import audit, gates
from apps.core.deferred import N_, Failure, fit, sentence_of
from apps.core.deferred import text as D
from apps.core.models import AuditEvent

logger = logging.getLogger(__name__)

# The actions a policy may gate, with the words a person reads. Each is wired in its service (gates.guard) and
# has an applier (gates.register_applier).
ACTIONS = {
    "releases.deploy": N_("Deploy a release"),
    "releases.rollback": N_("Roll a release back"),
    "releases.promote": N_("Promote a canary"),
    "releases.delete": N_("Remove a release"),
    "yaml.edit": N_("Edit an object's YAML"),
    "nodes.drain": N_("Drain a node"),
    "backups.restore": N_("Restore from a Velero backup"),
    "roles.grant": N_("Give a role (a binding, new rights in a role, a member of a bound group)"),
}
# Access is not a change to what runs: windows and freezes do not hold a grant back, its policies do.
OUTSIDE_CALENDAR = {"roles.grant"}
TICKET_MAX = 64


class DecisionRefused(Failure):
    """The decision cannot be taken (not pending, the maker approving, expired, stale)."""


def manifests_hash(manifests: list[dict]) -> str:
    return hashlib.sha256(json.dumps(manifests, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _policy(action: str, cluster, scope: dict) -> ApprovalPolicy | None:
    """The first enabled policy (by name) that gates ``action`` in ``cluster`` reaching ``scope``."""
    policies = ApprovalPolicy.objects.filter(enabled=True, actions__contains=[action]).select_related(
        "project__cluster"
    )
    return next(iter(covering(policies, cluster, scope)), None)


def _ticket(request) -> str:
    if request is None or getattr(request, "method", "") != "POST":
        return ""
    value = str(request.POST.get("ticket", ""))[: TICKET_MAX * 2]
    return " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())[:TICKET_MAX]


def _audit(actor, action: str, cr: ChangeRequest, *, request=None, result=AuditEvent.Result.SUCCESS, **detail):
    audit.record(
        actor=actor,
        action=action,
        result=result,
        cluster=cr.cluster.name if cr.cluster else "",
        namespace=cr.namespace,
        kind=cr.kind,
        name=cr.name,
        detail={"change_request": cr.pk, "change": cr.action, **detail},
        request=request,
        reason=cr.reason if action in ("changes.request", "changes.break_glass") else None,
    )


def _new_request(change: gates.Change, policy: ApprovalPolicy | None, *, status: str, reason: str, ticket: str):
    return ChangeRequest.objects.create(
        action=change.action,
        status=status,
        policy=policy,
        maker=change.actor,
        cluster=change.cluster,
        namespace=change.namespace,
        scope=change.scope(),
        kind=change.kind,
        name=change.name[:253],
        summary=change.summary,
        reason=reason,
        ticket=ticket,
        payload=change.payload,
        manifests=change.manifests,
        manifests_hash=manifests_hash(change.manifests),
        diff=change.diff,
        base=change.base,
        expires_at=timezone.now() + timedelta(hours=policy.expiry_hours if policy else 24),
    )


def _calendar(cluster, namespace: str, action: str, scope: dict | None) -> str | None:
    """Why the windows or a freeze refuse ``action`` now (windows.refusal), for the actions they hold."""
    if action in OUTSIDE_CALENDAR:
        return None
    return windows.refusal(cluster, namespace, action, gated=action in ACTIONS, scope=scope)


def _rules(action: str, cluster, namespace: str, scope: dict) -> tuple[str | None, ApprovalPolicy | None]:
    """What holds a change back now: the freeze or closed window (a sentence), and the policy covering it."""
    return _calendar(cluster, namespace, action, scope), _policy(action, cluster, scope)


# The Gatekeeper apps/core/gates.py calls (registered in apps.py) ----------------------------------------------


def watched(action: str, cluster, namespace: str) -> bool:
    """Whether ``gate`` would do anything for ``action`` in ``cluster``/``namespace`` (a change reaching no further):
    the service describes its change only then."""
    closed, policy = _rules(action, cluster, namespace, {"namespaces": [namespace] if namespace else []})
    return closed is not None or policy is not None


def closed(cluster, namespace: str, action: str) -> str | None:
    """Why work that changes a cluster by itself (an automatic canary step) must pause now: a freeze."""
    return windows.refusal(cluster, namespace, action, gated=False)


def hold(change: gates.Change) -> str | None:
    """Why ``change`` may not be written without a change request (gates.held: a path other than the console's
    service wrote it): the freeze or closed window, or the policy that wants a second person; None when it may."""
    closed, policy = _rules(change.action, change.cluster, change.namespace, change.scope())
    if closed is not None or policy is None:
        return closed
    return D(N_("The approval policy %(policy)s wants a second person to approve this change."), policy=policy.name)


def gate(change: gates.Change, *, request=None, break_glass: str = "") -> None:
    closed, policy = _rules(change.action, change.cluster, change.namespace, change.scope())
    if policy is None and closed is None:
        return
    reason = audit.reason_of(request)
    ticket = _ticket(request)
    if break_glass:
        _break_glass(change, policy, reason=break_glass, ticket=ticket, request=request, closed=closed)
        return
    if closed is not None:
        _denied(change, "changes.refused", {"error": closed}, request=request)
        raise gates.ChangeRefused(closed)
    with transaction.atomic():
        cr = _new_request(change, policy, status=ChangeRequest.Status.PENDING, reason=reason, ticket=ticket)
        _audit(change.actor, "changes.request", cr, request=request, policy=policy.name, ticket=ticket)
        transaction.on_commit(lambda: _mail(cr.pk, "requested"))
    raise gates.ApprovalRequired(
        D(
            N_(
                "This change needs a second person's approval: it waits as change request #%(number)s. "
                "It is applied, exactly as recorded, when an approver approves it."
            ),
            number=cr.pk,
        ),
        cr.pk,
    )


def _denied(change: gates.Change, action: str, detail: dict, *, request=None, reason: str | None = None) -> None:
    """Audit a change refused before any request was recorded (a freeze, a refused break glass)."""
    audit.record(
        actor=change.actor,
        action=action,
        result=AuditEvent.Result.DENIED,
        cluster=change.cluster.name if change.cluster else "",
        namespace=change.namespace,
        kind=change.kind,
        name=change.name,
        detail={"change": change.action, **detail},
        request=request,
        reason=reason,
    )


def _break_glass(
    change: gates.Change, policy: ApprovalPolicy | None, *, reason: str, ticket: str, request=None, closed=None
) -> None:
    reason = " ".join(reason.split())[:500]
    if not access.may(change.actor, CHANGES_BREAK_GLASS) or not reason:
        detail = {"policy": policy.name if policy else "", "window": closed or ""}
        _denied(change, "changes.break_glass", detail, request=request, reason=reason)
        if not reason:
            raise gates.ChangeRefused(D(N_("Break glass needs a reason: say what the emergency is.")))
        raise gates.ChangeRefused(
            D(N_("Only a role marked for emergencies (break glass) may apply a change without approval."))
        )
    with transaction.atomic():
        cr = _new_request(change, policy, status=ChangeRequest.Status.BREAK_GLASS, reason=reason, ticket=ticket)
        ChangeRequest.objects.filter(pk=cr.pk).update(applied_at=timezone.now())
        _audit(
            change.actor,
            "changes.break_glass",
            cr,
            request=request,
            policy=policy.name if policy else "",
            window=closed or "",
            ticket=ticket,
        )
        transaction.on_commit(lambda: _mail(cr.pk, "break_glass"))


def _mail(request_id: int, event: str) -> None:
    from apps.compliance.approvals.notify import mail_change

    mail_change.delay(request_id, event)


# Decisions -----------------------------------------------------------------------------------------------------


def may_decide(user, cr: ChangeRequest) -> bool:
    return cr.status == ChangeRequest.Status.PENDING and cr.maker_id != user.pk and access.may(user, CHANGES_APPROVE)


def _claim(user, pk: int) -> ChangeRequest:
    """The pending request ``pk`` locked for a decision by ``user`` (not its maker, holding changes.approve)."""
    cr = ChangeRequest.objects.select_for_update(of=("self",)).select_related("cluster", "maker").get(pk=pk)
    if cr.status != ChangeRequest.Status.PENDING:
        raise DecisionRefused(
            D(
                N_("Change request #%(number)s was already decided: %(status)s."),
                number=cr.pk,
                status=cr.get_status_display(),
            )
        )
    if cr.maker_id == user.pk:
        raise DecisionRefused(D(N_("You asked for this change: another person must approve or reject it.")))
    if not access.may(user, CHANGES_APPROVE):
        raise DecisionRefused(D(N_("You may not approve or reject change requests.")))
    return cr


def _expired(cr: ChangeRequest) -> str | None:
    """Close ``cr`` as expired when its time ran out (inside the caller's transaction); the sentence, or None."""
    if cr.expires_at > timezone.now():
        return None
    _close(cr, ChangeRequest.Status.EXPIRED, None, "")
    _audit(None, "changes.expire", cr)
    transaction.on_commit(lambda pk=cr.pk: _mail(pk, "expired"))
    return D(N_("Change request #%(number)s expired; the maker must ask again."), number=cr.pk)


def _close(cr: ChangeRequest, status: str, user, comment: str, outcome: str = "") -> None:
    cr.status = status
    cr.decided_by = user
    cr.decided_at = timezone.now()
    cr.comment = comment[:2000]
    cr.outcome = fit(outcome, 2000)
    cr.save(update_fields=["status", "decided_by", "decided_at", "comment", "outcome"])


def _stale(cr: ChangeRequest, applier) -> str | None:
    """Why ``cr`` can no longer be applied as approved, or None: the domain's own check (the object moved), then
    the objects it would apply now against the fingerprint of those the checker read."""
    if applier is None:
        return D(N_("This kind of change can no longer be applied."))
    moved = applier.stale(cr.payload, cr.base)
    if moved is not None:
        return moved
    now = applier.rendered(cr.payload) if applier.rendered is not None else None
    if now is not None and manifests_hash(now) != cr.manifests_hash:
        return D(N_("What would be applied now differs from what was approved; the maker must ask again."))
    return None


def approve(*, actor, pk: int, comment: str = "", request=None) -> ChangeRequest:
    """Apply request ``pk`` as its maker, exactly as recorded, unless it went stale; the request, closed."""
    with transaction.atomic():
        cr = _claim(actor, pk)
        refusal = _expired(cr)
        if refusal is None:
            closed = _calendar(cr.cluster, cr.namespace, cr.action, cr.scope or None)
            if closed is not None:  # still pending: approve it when the window opens
                raise DecisionRefused(closed)
            cr.status = ChangeRequest.Status.APPLYING
            cr.decided_by, cr.decided_at, cr.comment = actor, timezone.now(), comment[:2000]
            cr.save(update_fields=["status", "decided_by", "decided_at", "comment"])
    if refusal is not None:  # raised after the commit: the closed request stays closed
        raise DecisionRefused(refusal)
    # Checked and applied outside the lock's transaction: the cluster calls may take seconds, and the applier's own
    # rows (a revision, a job) commit with it. APPLYING keeps a second approver out meanwhile.
    applier = gates.applier(cr.action)
    refusal = _stale(cr, applier)
    if refusal is not None:
        _close(cr, ChangeRequest.Status.STALE, actor, comment, refusal)
        _audit(actor, "changes.approve", cr, request=request, result=AuditEvent.Result.FAILURE, error=refusal)
        _mail(cr.pk, "stale")
        raise DecisionRefused(refusal)
    try:
        outcome = applier.apply(cr.payload, cr.maker, change_request=cr)
    except Exception as exc:  # the applier's sentence (refused by the cluster, a conflict) closes the request
        sentence = (
            sentence_of(exc) if isinstance(exc, Failure) else D(N_("Applying failed: %(error)s"), error=str(exc)[:300])
        )
        if not isinstance(exc, Failure):
            logger.exception("applying change request %s failed", cr.pk)
        ChangeRequest.objects.filter(pk=cr.pk).update(status=ChangeRequest.Status.FAILED, outcome=fit(sentence, 2000))
        _audit(actor, "changes.approve", cr, request=request, result=AuditEvent.Result.FAILURE, error=sentence)
        _mail(cr.pk, "failed")
        raise DecisionRefused(sentence) from None
    ChangeRequest.objects.filter(pk=cr.pk).update(
        status=ChangeRequest.Status.APPLIED, applied_at=timezone.now(), outcome=fit(outcome or "", 2000)
    )
    _audit(actor, "changes.approve", cr, request=request, maker=cr.maker.get_username(), comment=comment[:500])
    _mail(cr.pk, "approved")
    cr.refresh_from_db()
    return cr


def reject(*, actor, pk: int, comment: str, request=None) -> ChangeRequest:
    comment = comment.strip()
    if not comment:
        raise DecisionRefused(D(N_("Say why the change is rejected: the maker reads it.")))
    with transaction.atomic():
        cr = _claim(actor, pk)
        refusal = _expired(cr)
        if refusal is None:
            _close(cr, ChangeRequest.Status.REJECTED, actor, comment)
            _audit(actor, "changes.reject", cr, request=request, comment=comment[:500])
            transaction.on_commit(lambda: _mail(cr.pk, "rejected"))
    if refusal is not None:
        raise DecisionRefused(refusal)
    return cr


def cancel(*, actor, pk: int, request=None) -> ChangeRequest:
    with transaction.atomic():
        cr = ChangeRequest.objects.select_for_update(of=("self",)).select_related("cluster").get(pk=pk)
        if cr.maker_id != actor.pk or cr.status != ChangeRequest.Status.PENDING:
            raise DecisionRefused(D(N_("Only the maker may withdraw a request that still waits.")))
        _close(cr, ChangeRequest.Status.CANCELLED, actor, "")
        _audit(actor, "changes.cancel", cr, request=request)
    return cr


INTERRUPTED_MINUTES = 10


def expire_due() -> int:
    """Close the pending requests whose time ran out (beat, every minute), and fail those whose applying was cut
    off (the process died between approval and the end of the apply); how many were closed."""
    interrupted = ChangeRequest.objects.filter(
        status=ChangeRequest.Status.APPLYING, decided_at__lte=timezone.now() - timedelta(minutes=INTERRUPTED_MINUTES)
    ).update(
        status=ChangeRequest.Status.FAILED,
        outcome=D(N_("Applying was interrupted; look at the object in the cluster and ask again if it is needed.")),
    )
    closed = interrupted
    for pk in ChangeRequest.objects.filter(
        status=ChangeRequest.Status.PENDING, expires_at__lte=timezone.now()
    ).values_list("pk", flat=True):
        with transaction.atomic():
            cr = ChangeRequest.objects.select_for_update(of=("self",)).select_related("cluster").get(pk=pk)
            if cr.status == ChangeRequest.Status.PENDING and _expired(cr) is not None:
                closed += 1
    return closed


def pending_for(user):
    """The requests ``user`` may decide (for the dashboard and the list)."""
    if not access.may(user, CHANGES_APPROVE):
        return ChangeRequest.objects.none()
    return ChangeRequest.objects.filter(status=ChangeRequest.Status.PENDING, expires_at__gt=timezone.now()).exclude(
        maker=user
    )


# Policies --------------------------------------------------------------------------------------------------


def _policy_detail(policy: ApprovalPolicy) -> dict:
    return {
        "project": policy.project.name if policy.project_id else "",
        "cluster_labels": policy.cluster_labels,
        "actions": policy.actions,
        "expiry_hours": policy.expiry_hours,
        "enabled": policy.enabled,
    }


def _window_detail(window: ChangeWindow) -> dict:
    return {
        "kind": window.kind,
        "project": window.project.name if window.project_id else "",
        "cluster_labels": window.cluster_labels,
        "weekdays": window.weekdays,
        "from": window.start_time.isoformat() if window.start_time else "",
        "until": window.end_time.isoformat() if window.end_time else "",
        "time_zone": window.time_zone,
        "starts_at": window.starts_at.isoformat() if window.starts_at else "",
        "ends_at": window.ends_at.isoformat() if window.ends_at else "",
        "reason": window.reason,
        "enabled": window.enabled,
    }


# What each kind of rule is called in the audit log, and what of it the log keeps.
RULES = {ApprovalPolicy: ("policy", _policy_detail), ChangeWindow: ("window", _window_detail)}


def _save_rule(rule, *, actor, request, created: bool):
    noun, detail = RULES[type(rule)]
    with transaction.atomic():
        rule.save()
        verb = "create" if created else "update"
        audit.record(
            actor=actor,
            action=f"changes.{noun}.{verb}",
            kind=type(rule).__name__,
            name=rule.name,
            detail=detail(rule),
            request=request,
        )
    return rule


def _delete_rule(rule, *, actor, request) -> None:
    noun, detail = RULES[type(rule)]
    with transaction.atomic():
        kept = detail(rule)
        rule.delete()
        audit.record(
            actor=actor,
            action=f"changes.{noun}.delete",
            kind=type(rule).__name__,
            name=rule.name,
            detail=kept,
            request=request,
        )


def save_policy(*, actor, policy: ApprovalPolicy, request=None, created: bool) -> ApprovalPolicy:
    return _save_rule(policy, actor=actor, request=request, created=created)


def delete_policy(*, actor, policy: ApprovalPolicy, request=None) -> None:
    _delete_rule(policy, actor=actor, request=request)


def save_window(*, actor, window: ChangeWindow, request=None, created: bool) -> ChangeWindow:
    return _save_rule(window, actor=actor, request=request, created=created)


def delete_window(*, actor, window: ChangeWindow, request=None) -> None:
    _delete_rule(window, actor=actor, request=request)
