"""Access reviews: each quarter, per project, who holds which role, since when, granted by whom, when they last
signed in and last used each capability; the reviewer confirms or revokes each line.

- ``start_review(project)`` makes the quarter's report (once per project and quarter) from the project's bindings
  and the audit log; ``start_due`` (beat, daily) makes the reports of the quarter for every project with review
  settings, and mails each reviewer;
- ``decide`` confirms a line, or revokes it: the binding is removed through accounts' service as the reviewer, so
  the RoleBinding leaves the cluster with the next projection, and both are audited;
- ``expire_due`` (beat, daily) closes reports whose days are over: where the project says so, lines nobody reviewed
  are revoked as ``access-review``, audited.

Reports are kept after they are closed (the auditors' evidence).
"""

from __future__ import annotations

from datetime import timedelta
from functools import reduce
from operator import or_

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Max, Prefetch, Q
from django.utils import timezone

from apps.accounts import access, capabilities
from apps.accounts import services as account_services
from apps.accounts.actor import acting_as
from apps.accounts.capabilities import ACCESS_REVIEW
from apps.accounts.models import Binding, Project
from apps.compliance.models import AccessReview, AccessReviewItem, ReviewSettings
from apps.core import audit
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.core.models import AuditEvent

EXPIRY_ACTOR = "access-review"
# The audit actions that count as using a capability (its "last use" on the report).
CAPABILITY_ACTIONS = {
    "releases.deploy": ("releases.release.deploy", "releases.release.create"),
    "releases.rollback": ("releases.release.rollback",),
    "releases.canary": ("releases.canary.",),
    "workloads.scale": ("clusters.workload.scale",),
    "workloads.restart": ("clusters.workload.restart",),
    "pods.delete": ("clusters.pod.delete",),
    "pods.exec": ("clusters.pod.terminal.",),
    "yaml.edit": ("clusters.yaml.edit",),
    "secrets.read": ("clusters.secret.reveal",),
    "cicd.run": ("cicd.run.start",),
    "backups.restore": ("backups.restore",),
}


_UNKNOWN = set(CAPABILITY_ACTIONS) - set(capabilities.BY_CODE)
if _UNKNOWN:  # a renamed capability would silently never show as used
    raise ImproperlyConfigured(f"access reviews name unknown capabilities: {sorted(_UNKNOWN)}")


class ReviewRefused(Failure):
    """The decision cannot be taken (the report is closed, the line decided, the person may not review)."""


def quarter(moment) -> str:
    return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"


def may_review(user, project: Project) -> bool:
    if access.may(user, ACCESS_REVIEW):
        return True
    settings = ReviewSettings.objects.filter(project=project).first()
    return settings is not None and settings.reviewer_id == user.pk


def _granted(bindings: list[Binding]) -> dict[str, tuple[object, str]]:
    """When and by whom each binding was granted (by its k8s name), from the audit log, in one query."""
    events = AuditEvent.objects.filter(
        object_kind="Binding", object_name__in=[b.k8s_name for b in bindings], action__endswith="create"
    ).order_by("seq")
    found: dict[str, tuple[object, str]] = {}
    for name, at, who in events.values_list("object_name", "created_at", "actor_name"):
        found.setdefault(name, (at, who))
    return found


def _uses(user_ids: set[int], project: Project) -> dict[tuple[int, str], object]:
    """(person, audited action) -> when last done in the project's namespaces, for every action a capability of
    CAPABILITY_ACTIONS names, in one query."""
    prefixes = {prefix for names in CAPABILITY_ACTIONS.values() for prefix in names}
    if not user_ids:
        return {}
    rows = (
        AuditEvent.objects.filter(actor_id__in=user_ids, cluster=project.cluster.name, namespace__in=project.namespaces)
        .filter(reduce(or_, (Q(action__startswith=prefix) for prefix in prefixes)))
        .values("actor_id", "action")
        .annotate(at=Max("created_at"))
    )
    return {(row["actor_id"], row["action"]): row["at"] for row in rows}


def _last_used(uses: dict, user_ids: list[int], codes: list[str]) -> dict[str, str]:
    """Capability -> when one of ``user_ids`` last used it (from ``_uses``)."""
    found = {}
    for code in codes:
        prefixes = CAPABILITY_ACTIONS.get(code, ())
        times = [at for (who, action), at in uses.items() if who in user_ids and action.startswith(prefixes)]
        if prefixes and times:
            found[code] = max(times).isoformat()
    return found


def start_review(project: Project, *, now=None, actor=None) -> AccessReview:
    """The quarter's report of ``project`` (made once; an existing one is returned)."""
    now = now or timezone.now()
    period = quarter(now)
    # Read, not made: a settings row is what enrols a project in the quarterly reports (start_due).
    settings = ReviewSettings.objects.filter(project=project).first() or ReviewSettings(project=project)
    with transaction.atomic():
        review, created = AccessReview.objects.get_or_create(
            project=project, period=period, defaults={"due_at": now + timedelta(days=settings.grace_days)}
        )
        if not created:
            return review
        members = Prefetch(
            "group__user_set",
            queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
            to_attr="active_members",
        )
        bindings = list(
            Binding.objects.filter(project=project).select_related("role", "user", "group").prefetch_related(members)
        )
        people_of = {b.pk: [b.user] if b.user_id else b.group.active_members for b in bindings}
        granted = _granted(bindings)
        uses = _uses({person.pk for people in people_of.values() for person in people}, project)
        items = []
        for binding in bindings:
            people = people_of[binding.pk]
            granted_at, granted_by = granted.get(binding.k8s_name, (binding.created_at, ""))
            logins = [p.last_login for p in people if p.last_login]
            items.append(
                AccessReviewItem(
                    review=review,
                    binding=binding,
                    subject=binding.subject_label[:160],
                    members=[p.get_username() for p in people] if binding.group_id else [],
                    role=binding.role.name_en[:100],
                    role_zh=binding.role.name_zh[:100],
                    capabilities=list(binding.role.capabilities),
                    granted_at=granted_at,
                    granted_by=granted_by,
                    last_login=max(logins) if logins else None,
                    last_used=_last_used(uses, [p.pk for p in people], list(binding.role.capabilities)),
                )
            )
        AccessReviewItem.objects.bulk_create(items)
        audit.record(
            actor=actor,
            actor_name=None if actor else "system",
            action="access_review.start",
            cluster=project.cluster.name,
            kind="AccessReview",
            name=f"{project.slug} {period}",
            detail={"lines": len(items), "due": review.due_at.isoformat()},
        )
        transaction.on_commit(lambda: _mail(review.pk))
    return review


def _mail(review_id: int) -> None:
    from apps.compliance.reviews.notify import mail_review

    mail_review.delay(review_id)


def decide(*, actor, item_id: int, decision: str, comment: str = "", request=None) -> AccessReviewItem:
    if decision not in (AccessReviewItem.Decision.CONFIRMED, AccessReviewItem.Decision.REVOKED):
        raise ReviewRefused(D(N_("Confirm or revoke: there is no other decision.")))
    with transaction.atomic():
        item = (
            AccessReviewItem.objects.select_for_update(of=("self",))
            .select_related("review__project__cluster", "binding")
            .get(pk=item_id)
        )
        review = item.review
        if not may_review(actor, review.project):
            raise ReviewRefused(D(N_("You may not review the access of %(project)s."), project=review.project.name))
        if review.closed_at is not None or item.decision != AccessReviewItem.Decision.PENDING:
            raise ReviewRefused(D(N_("This line was already decided, or its review is closed.")))
        item.decision, item.decided_by, item.decided_at = decision, actor, timezone.now()
        item.comment = " ".join(comment.split())[:500]
        item.save(update_fields=["decision", "decided_by", "decided_at", "comment"])
        if decision == AccessReviewItem.Decision.REVOKED and item.binding is not None:
            account_services.delete_binding(actor=actor, binding=item.binding, request=request)
        audit.record(
            actor=actor,
            action=f"access_review.{decision}",
            cluster=review.project.cluster.name,
            kind="AccessReviewItem",
            name=f"{item.subject} {item.role}",
            detail={"review": review.pk, "period": review.period, "project": review.project.slug},
            request=request,
            reason=item.comment,
        )
    return item


def start_due(now=None) -> int:
    """Make this quarter's report for every project with review settings (beat, daily); how many were made."""
    now = now or timezone.now()
    made = 0
    for settings in ReviewSettings.objects.select_related("project"):
        if not AccessReview.objects.filter(project=settings.project, period=quarter(now)).exists():
            start_review(settings.project, now=now)
            made += 1
    return made


def expire_due(now=None) -> int:
    """Close the reports whose days are over; where the project says so, revoke what nobody reviewed. How many
    lines were revoked."""
    now = now or timezone.now()
    revoked = 0
    due = AccessReview.objects.filter(closed_at__isnull=True, due_at__lte=now)
    for review in due.select_related("project__cluster", "project__review_settings"):
        settings = getattr(review.project, "review_settings", None)
        expiring = review.items.none()
        if settings is not None and settings.expire_unreviewed:
            expiring = review.items.filter(decision=AccessReviewItem.Decision.PENDING)
        with transaction.atomic(), acting_as(name=EXPIRY_ACTOR):
            for item in expiring.select_for_update():
                item.decision, item.decided_at = AccessReviewItem.Decision.EXPIRED, now
                item.save(update_fields=["decision", "decided_at"])
                if item.binding is not None:
                    account_services.delete_binding(actor=None, binding=item.binding)
                audit.record(
                    actor=None,
                    actor_name=EXPIRY_ACTOR,
                    action="access_review.expired",
                    cluster=review.project.cluster.name,
                    kind="AccessReviewItem",
                    name=f"{item.subject} {item.role}",
                    detail={"review": review.pk, "period": review.period, "project": review.project.slug},
                )
                revoked += 1
            review.closed_at = now
            review.save(update_fields=["closed_at"])
    return revoked
