"""Silences created and expired in a cluster's Alertmanager as the person, and audited.

Alertmanager keeps no user: a silence is created with ``createdBy`` set to the person's user name, and every
creation and expiry is an audit event (``observability.silence.create`` / ``.expire``, a refusal too) with the
cluster, the namespace it is pinned to, the matchers, the start, the end and the comment; the reason typed in the
confirmation dialog is kept in the row. A silence a project member creates must carry exactly one namespace
matcher, ``namespace="<one of theirs>"``: a regular expression or ``!=`` on the namespace could silence other
teams' alerts, and so is refused (see reading.py for who sees which silence). Expiring asks for
``alerts.silence`` where the silence is pinned. A silence whose audit event cannot be written is expired again.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from django.http import Http404
from django.utils import timezone

from apps.accounts import access
from apps.accounts.capabilities import ALERTS_SILENCE, ALERTS_VIEW
from apps.clusters.models import Cluster
from apps.core import audit
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.core.models import AuditEvent
from apps.observability import alertmanager as door
from apps.observability import endpoints
from apps.observability.alertmanager import Matcher
from apps.observability.alerts.reading import forget_counts, may_expire, pinned_namespaces, silence_visible

log = logging.getLogger(__name__)

COMMENT_MAX = 1000
MAX_SILENCE = timedelta(days=90)
MIN_SILENCE = timedelta(minutes=1)
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
VALUE_MAX = 1000
MAX_MATCHERS = 20


class SilenceError(Failure):
    """The silence cannot be created or expired; the message is the sentence to show."""


def check_matchers(matchers: list[Matcher]) -> None:
    """Matchers Alertmanager would take: names as Prometheus labels are named, values within reason, regular
    expressions that compile, and at least one matcher that does not match everything."""
    if not matchers:
        raise SilenceError(D(N_("Add at least one matcher: a silence without one would silence every alert.")))
    if len(matchers) > MAX_MATCHERS:
        raise SilenceError(D(N_("A silence takes at most %(count)s matchers."), count=MAX_MATCHERS))
    for m in matchers:
        if not LABEL_NAME.match(m.name):
            raise SilenceError(
                D(N_("%(name)s is not a label name (letters, digits and '_', not starting with a digit)."), name=m.name)
            )
        if len(m.value) > VALUE_MAX:
            raise SilenceError(D(N_("The value of %(name)s is too long."), name=m.name))
        if m.is_regex:
            try:
                re.compile(m.value)
            except re.error:
                raise SilenceError(
                    D(N_("The regular expression of %(name)s is not valid: %(value)s"), name=m.name, value=m.value)
                ) from None
    if all(m.matches({}) for m in matchers):
        raise SilenceError(
            D(
                N_(
                    'At least one matcher must ask for a label value (for example alertname="…"): these match '
                    "every alert."
                )
            )
        )


def silence_namespace(user, cluster: Cluster, matchers: list[Matcher]) -> str:
    """The namespace a new silence is for ("" for the whole cluster), or SilenceError when ``user`` may not create
    it: project members must pin it with exactly one ``namespace="<one of theirs>"``."""
    held = access.visible_namespaces(user, ALERTS_SILENCE, cluster=cluster)
    pinned = pinned_namespaces(matchers)
    if held is None:
        return next(iter(pinned)) if len(pinned) == 1 else ""
    if not held:
        raise SilenceError(D(N_("You may not create silences in cluster %(cluster)s."), cluster=cluster.name))
    yours = ", ".join(sorted(held))
    on_namespace = [m for m in matchers if m.name == "namespace"]
    if any(m.is_regex or not m.is_equal for m in on_namespace):
        raise SilenceError(
            D(
                N_(
                    'Name the namespace with "=" only (namespace="…"): a regular expression or "!=" on the '
                    "namespace could silence alerts of namespaces that are not yours."
                )
            )
        )
    if len(on_namespace) != 1:
        raise SilenceError(
            D(
                N_('Add exactly one matcher namespace="…" with one of your namespaces (%(namespaces)s).'),
                namespaces=yours,
            )
        )
    namespace = on_namespace[0].value
    if namespace not in held:
        raise SilenceError(
            D(
                N_("You may not silence alerts of namespace %(namespace)s; yours are %(namespaces)s."),
                namespace=namespace,
                namespaces=yours,
            )
        )
    return namespace


def _silence_detail(matchers, starts_at: datetime | None, ends_at: datetime | None, comment: str) -> dict:
    return {
        "matchers": [str(m) for m in matchers],
        "starts": starts_at.isoformat() if starts_at else "",
        "ends": ends_at.isoformat() if ends_at else "",
        "comment": comment,
    }


def _record(
    actor,
    action: str,
    cluster: Cluster,
    namespace: str,
    silence_id: str,
    detail: dict,
    request,
    *,
    error: str = "",
    result: str = AuditEvent.Result.SUCCESS,
) -> None:
    if error:
        result = result if result != AuditEvent.Result.SUCCESS else AuditEvent.Result.FAILURE
        detail = {**detail, "error": error}
    audit.record(
        actor=actor,
        action=action,
        result=result,
        cluster=cluster.name,
        namespace=namespace,
        kind="Silence",
        name=silence_id,
        detail=detail,
        request=request,
    )


def create_silence(
    *, actor, cluster: Cluster, matchers: list[Matcher], ends_at: datetime, comment: str, request=None
) -> str:
    """Create a silence in ``cluster``'s Alertmanager as ``actor`` (its ``createdBy``), from now to ``ends_at``;
    audited. Its id, or SilenceError with the sentence."""
    action = "observability.silence.create"
    comment = (comment or "").strip()
    now = timezone.now()
    detail = _silence_detail(matchers, now, ends_at, comment[:COMMENT_MAX])
    if not comment:
        raise SilenceError(D(N_("Say why in the comment: whoever sees the silence later reads it there.")))
    if len(comment) > COMMENT_MAX:
        raise SilenceError(D(N_("Keep the comment under %(count)s characters."), count=COMMENT_MAX))
    if ends_at - now < MIN_SILENCE:
        raise SilenceError(D(N_("A silence must end at least a minute from now.")))
    if ends_at - now > MAX_SILENCE:
        raise SilenceError(D(N_("A silence ends within %(days)s days; make a new one when it ends."), days=90))
    check_matchers(matchers)
    try:
        namespace = silence_namespace(actor, cluster, matchers)
    except SilenceError as exc:
        _record(actor, action, cluster, "", "", detail, request, error=exc.stored, result=AuditEvent.Result.DENIED)
        raise
    endpoint = endpoints.alertmanager(cluster)
    try:
        silence_id = door.create_silence(
            endpoint,
            matchers=matchers,
            starts_at=now,
            ends_at=ends_at,
            created_by=actor.get_username(),
            comment=comment,
        )
    except door.AlertmanagerError as exc:
        _record(actor, action, cluster, namespace, "", detail, request, error=exc.stored)
        raise SilenceError(exc.stored) from None
    try:
        _record(actor, action, cluster, namespace, silence_id, detail, request)
    except Exception:
        # No silence without its audit event: take it back, then let the error be seen.
        try:
            door.expire_silence(endpoint, silence_id)
        except door.AlertmanagerError:
            log.warning("a silence could not be expired after its audit event failed", extra={"silence": silence_id})
        raise
    forget_counts(cluster)
    return silence_id


def visible_silence(user, cluster: Cluster, silence_id: str) -> door.Silence:
    """The silence if ``user`` may see it; 404 when it is missing or forbidden alike, SilenceError when
    Alertmanager does not answer."""
    try:
        found = door.silence(endpoints.alertmanager(cluster), silence_id)
    except door.Refused:
        raise Http404 from None
    except door.AlertmanagerError as exc:
        raise SilenceError(exc.stored) from None
    if not silence_visible(found, access.visible_namespaces(user, ALERTS_VIEW, cluster=cluster)):
        raise Http404
    return found


def expire_silence(*, actor, cluster: Cluster, silence_id: str, request=None) -> door.Silence:
    """Expire a silence as ``actor``; audited. The silence as it was, or SilenceError with the sentence."""
    action = "observability.silence.expire"
    silence = visible_silence(actor, cluster, silence_id)
    namespaces = sorted(pinned_namespaces(silence.matchers))
    namespace = namespaces[0] if len(namespaces) == 1 else ""
    detail = _silence_detail(silence.matchers, silence.starts_at, silence.ends_at, silence.comment)
    detail["created_by"] = silence.created_by
    if silence.state == "expired":
        raise SilenceError(D(N_("This silence has already expired.")))
    if not may_expire(actor, cluster, silence):
        sentence = D(N_("You may not expire this silence: it is not pinned to a namespace where you may silence."))
        _record(actor, action, cluster, namespace, silence.id, detail, request, error=sentence, result="denied")
        raise SilenceError(sentence)
    try:
        door.expire_silence(endpoints.alertmanager(cluster), silence.id)
    except door.AlertmanagerError as exc:
        _record(actor, action, cluster, namespace, silence.id, detail, request, error=exc.stored)
        raise SilenceError(exc.stored) from None
    _record(actor, action, cluster, namespace, silence.id, detail, request)
    forget_counts(cluster)
    return silence
