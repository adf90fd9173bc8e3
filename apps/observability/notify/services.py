"""Notification receivers: saved in Kubemate, written to the cluster as the person, audited; rendered for a plain
Alertmanager; a test notification; ``amtool check-config``.

Order of work when saving: check everything, save the row inside a transaction (a robot's relay URL needs its id),
write a Secret and an AlertmanagerConfig to each watched namespace as the person (the cluster's RBAC decides), and
audit. If a write fails, the objects this save wrote are removed again (or, when changing a receiver, written back
as they were), the transaction rolls back and the refusal is audited: a failure leaves the cluster and Kubemate as
they were. Secrets never reach a page, an audit row or a log line; at rest they are encrypted (``apps.core.crypto``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets as random
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from apps.accounts import access
from apps.accounts.capabilities import ALERTS_NOTIFY
from apps.accounts.models import Project
from apps.clusters import kube, values
from apps.clusters.models import Resource
from apps.core import audit, crypto
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D
from apps.observability import alertmanager, endpoints
from apps.observability.models import AlertRule, Receiver
from apps.observability.notify import render

log = logging.getLogger(__name__)

AMTOOL = "/usr/bin/amtool"
SECRETS_FOLDER = "/etc/alertmanager/kubemate-secrets"
EMAIL = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+\.[^@\s,;<>\"']+$")
SMARTHOST = re.compile(r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")
TEST_ALERT = "KubemateTestNotification"
SECRET_FIELDS = {
    "email": ("password",),
    "webhook": ("token",),
    "dingtalk": ("url", "sign_secret"),
    "wecom": ("url",),
}


class NotifyError(Failure):
    """The receiver cannot be saved, written, removed or tested; the message is the sentence to show."""


@dataclass(frozen=True)
class Draft:
    """What the form asks for. Secret values left empty keep what is stored."""

    name: str
    kind: str
    severities: list[str]
    namespaces: list[str]
    send_resolved: bool = True
    options: dict = field(default_factory=dict)
    secrets: dict = field(default_factory=dict)


# --- who may do what -----------------------------------------------------------------------------------------------


def may_manage(user, project: Project) -> bool:
    """``user`` holds alerts.notify in every namespace of ``project`` (or in its whole cluster)."""
    held = access.visible_namespaces(user, ALERTS_NOTIFY, cluster=project.cluster)
    return held is None or (bool(project.namespaces) and set(project.namespaces) <= held)


def projects(user) -> list[Project]:
    return [
        p for p in Project.objects.select_related("cluster").order_by("cluster__name", "name") if may_manage(user, p)
    ]


def whole_cluster(user, cluster) -> bool:
    return access.visible_namespaces(user, ALERTS_NOTIFY, cluster=cluster) is None


# --- secrets -------------------------------------------------------------------------------------------------------


def secrets_of(receiver: Receiver) -> dict:
    return json.loads(crypto.decrypt(receiver.secret_encrypted)) if receiver.secret_encrypted else {}


def shown_target(receiver: Receiver) -> str:
    """Where the receiver sends, as a page may show it: addresses, or a host (never a token)."""
    options = receiver.options or {}
    if receiver.kind == Receiver.Kind.EMAIL:
        return ", ".join(options.get("to", []))
    return options.get("host", "")


def in_inventory(project: Project, receivers: list[Receiver]) -> set[tuple[str, str]]:
    """(namespace, name) of the receivers' AlertmanagerConfig objects the inventory has seen in the cluster (one
    query; the inventory, not the cluster, so the page makes no cluster call)."""
    rows = Resource.objects.filter(
        cluster=project.cluster,
        kind="AlertmanagerConfig",
        namespace__in=project.namespaces,
        name__in=[r.object_name for r in receivers],
    )
    return set(rows.values_list("namespace", "name"))


def relay_base_url(request=None) -> str:
    if settings.KUBEMATE_PUBLIC_URL:
        return settings.KUBEMATE_PUBLIC_URL
    return request.build_absolute_uri("/").rstrip("/") if request is not None else "http://localhost:8000"


# --- checking a draft ----------------------------------------------------------------------------------------------


def _check(project: Project, draft: Draft, stored: dict) -> tuple[dict, dict]:
    """(options, secrets) for ``draft``, or NotifyError with the sentence saying what is wrong."""
    if not values.is_dns_label(draft.name) or len(draft.name) > 40:
        raise NotifyError(_("Name the receiver with at most 40 lower-case letters, digits and '-'."))
    if draft.kind not in Receiver.Kind.values:
        raise NotifyError(_("Choose where the notifications go."))
    if any(s not in AlertRule.Severity.values for s in draft.severities):
        raise NotifyError(_("Choose severities among critical, warning and information."))
    if any(n not in project.namespaces for n in draft.namespaces):
        raise NotifyError(_("Choose namespaces of project %(project)s only.") % {"project": project.name})
    merged = {k: v for k, v in stored.items() if k in SECRET_FIELDS[draft.kind] or k == "relay_token"}
    merged |= {k: v for k, v in draft.secrets.items() if v and k in SECRET_FIELDS[draft.kind]}
    raw = draft.options
    if draft.kind == Receiver.Kind.EMAIL:
        to = [a.strip() for a in re.split(r"[,;\s]+", raw.get("to", "")) if a.strip()]
        if not to or len(to) > 20 or not all(EMAIL.match(a) for a in to):
            raise NotifyError(_("Give one to twenty email addresses, separated by commas."))
        sender = (raw.get("from") or "").strip()
        if not EMAIL.match(sender):
            raise NotifyError(_("Give the address the mail is sent from."))
        smarthost = (raw.get("smarthost") or "").strip()
        if not SMARTHOST.match(smarthost):
            raise NotifyError(_("Give the mail relay as host:port, e.g. smtp.bank.example:587."))
        options = {
            "to": to,
            "from": sender,
            "smarthost": smarthost,
            "username": (raw.get("username") or "").strip(),
            "require_tls": bool(raw.get("require_tls")),
        }
    elif draft.kind == Receiver.Kind.WEBHOOK:
        url = (raw.get("url") or "").strip()
        if not re.match(r"^https?://[^\s@]+$", url) or len(url) > 500:
            raise NotifyError(_("Give the webhook's address, starting with http:// or https:// (no user or password)."))
        options = {"url": url, "host": _host(url)}
    else:
        url = merged.get("url", "")
        if not re.match(r"^https?://[^\s@]+$", url) or len(url) > 500:
            raise NotifyError(_("Give the robot's webhook address, as the group's robot settings show it."))
        options = {"host": _host(url)}
        merged.setdefault("relay_token", "")
        if not merged["relay_token"]:
            merged["relay_token"] = random.token_urlsafe(32)
    return options, merged


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


# --- writing -------------------------------------------------------------------------------------------------------


def _refused(exc: kube.KubeError, namespace: str) -> str:
    if isinstance(exc, kube.Forbidden):
        return D(
            N_("Kubernetes refused: you may not change alert notifications in namespace %(namespace)s."),
            namespace=namespace,
        )
    if isinstance(exc, kube.NotFound):
        return D(
            N_(
                "Kubernetes found no namespace %(namespace)s or no AlertmanagerConfig resource "
                "(monitoring.coreos.com/v1alpha1): check that the namespace exists and that the Prometheus "
                "Operator's CRDs are installed."
            ),
            namespace=namespace,
        )
    return str(exc)


def _write(k, receiver: Receiver, namespace: str, secrets: dict, base: str) -> None:
    k.apply(render.secret_manifest(receiver, namespace, secrets))
    k.apply(render.config_manifest(receiver, namespace, secrets, base))


def _remove(k, name: str, namespace: str) -> None:
    k.delete("AlertmanagerConfig", namespace, name)
    k.delete("Secret", namespace, name)


def save(*, actor, project: Project, draft: Draft, receiver: Receiver | None = None, request=None) -> Receiver:
    """Create (``receiver`` None) or change a receiver: checked, saved, written to the cluster as ``actor``,
    audited; nothing of it stays when a write fails."""
    if not may_manage(actor, project):
        raise NotifyError(_("You may not change the notifications of project %(project)s.") % {"project": project.name})
    if receiver is not None and (receiver.name, receiver.kind) != (draft.name, draft.kind):
        raise NotifyError(_("A receiver keeps its name and kind; make a new receiver instead."))
    old_secrets = secrets_of(receiver) if receiver else {}
    options, merged = _check(project, draft, old_secrets)
    before = _audit_view(receiver) if receiver else None
    old_namespaces = list(receiver.watched_namespaces) if receiver else []
    old_state = Receiver.objects.get(pk=receiver.pk) if receiver else None
    row = receiver or Receiver(project=project, name=draft.name, kind=draft.kind, created_by=actor)
    row.options, row.severities, row.namespaces = options, list(draft.severities), list(draft.namespaces)
    row.send_resolved = draft.send_resolved
    row.secret_encrypted = crypto.encrypt(json.dumps(merged)) if merged else ""
    row.relay_token_hash = (
        hashlib.sha256(merged["relay_token"].encode()).hexdigest() if merged.get("relay_token") else ""
    )
    action = "observability.receiver.update" if receiver else "observability.receiver.create"
    base = relay_base_url(request)
    if not row.watched_namespaces:
        raise NotifyError(_("Project %(project)s has no namespace to watch.") % {"project": project.name})
    written: list[str] = []
    try:
        with transaction.atomic():
            row.save()
            try:
                with kube.client(project.cluster, as_user=actor) as k:
                    for namespace in row.watched_namespaces:
                        written.append(namespace)
                        _write(k, row, namespace, merged, base)
                    for namespace in old_namespaces:
                        if namespace not in row.watched_namespaces:
                            _remove(k, row.object_name, namespace)
            except kube.KubeError as exc:
                raise _Undo(_refused(exc, written[-1] if written else project.namespaces[0])) from None
            detail = _audit_view(row) | ({"before": before} if before else {})
            _record(actor, action, row, request=request, detail=detail)
    except _Undo as undo:
        _put_back(project.cluster, actor, row, written, old_state, old_secrets, base)
        if receiver is not None:
            receiver.refresh_from_db()
        elif row.pk:
            row.pk = None
        _record(actor, action, row, request=request, error=undo.sentence)
        raise NotifyError(undo.sentence) from None
    except IntegrityError:
        if receiver is None:
            row.pk = None
        raise NotifyError(
            _("A receiver named %(name)s already exists in this project.") % {"name": draft.name}
        ) from None
    return row


class _Undo(Exception):
    def __init__(self, sentence: str):
        super().__init__(sentence)
        self.sentence = sentence


def _put_back(cluster, actor, row: Receiver, written: list[str], old: Receiver | None, old_secrets: dict, base):
    """Remove what this save wrote, or write back what a changed receiver was."""
    try:
        with kube.client(cluster, as_user=actor) as k:
            for namespace in written:
                try:
                    if old is not None and namespace in old.watched_namespaces:
                        _write(k, old, namespace, old_secrets, base)
                    else:
                        _remove(k, row.object_name, namespace)
                except kube.KubeError:
                    log.warning("could not undo a receiver's object", extra={"receiver": str(row)})
    except kube.KubeError:
        log.warning("could not undo a receiver's objects after a failed save", extra={"receiver": str(row)})


def delete(*, actor, receiver: Receiver, request=None) -> None:
    project = receiver.project
    if not may_manage(actor, project):
        raise NotifyError(_("You may not change the notifications of project %(project)s.") % {"project": project.name})
    namespace = ""
    try:
        with kube.client(project.cluster, as_user=actor) as k:
            for namespace in receiver.watched_namespaces:
                _remove(k, receiver.object_name, namespace)
    except kube.KubeError as exc:
        sentence = _refused(exc, namespace)
        _record(actor, "observability.receiver.delete", receiver, request=request, error=sentence)
        raise NotifyError(sentence) from None
    with transaction.atomic():
        _record(actor, "observability.receiver.delete", receiver, request=request, detail=_audit_view(receiver))
        receiver.delete()


def send_test(*, actor, receiver: Receiver, request=None) -> None:
    """Hand the cluster's Alertmanager a test alert that this receiver's route takes."""
    if not may_manage(actor, receiver.project):
        raise NotifyError(
            _("You may not change the notifications of project %(project)s.") % {"project": receiver.project.name}
        )
    namespaces = receiver.watched_namespaces
    labels = {
        "alertname": TEST_ALERT,
        "namespace": namespaces[0] if namespaces else "",
        "severity": receiver.severities[0] if receiver.severities else "warning",
        "kubemate_receiver": receiver.name,
    }
    now = datetime.now(UTC)
    alert = {
        "labels": labels,
        "annotations": {"summary": f"Test notification sent from Kubemate by {actor.get_username()}."},
        "startsAt": now.isoformat().replace("+00:00", "Z"),
        "endsAt": (now + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
    }
    try:
        alertmanager.post_alerts(endpoints.alertmanager(receiver.project.cluster), [alert])
    except alertmanager.AlertmanagerError as exc:
        _record(actor, "observability.receiver.test", receiver, request=request, error=exc.stored)
        raise NotifyError(exc.stored) from None
    _record(actor, "observability.receiver.test", receiver, request=request, detail={"labels": labels})


# --- a plain Alertmanager ------------------------------------------------------------------------------------------


def receivers_of(cluster) -> list[tuple[Receiver, dict]]:
    rows = Receiver.objects.filter(project__cluster=cluster).select_related("project").order_by("project__slug", "name")
    return [(r, secrets_of(r)) for r in rows]


def plain_config(cluster, *, request=None, folder: str = SECRETS_FOLDER) -> str:
    return render.alertmanager_yml(receivers_of(cluster), relay_base_url(request), folder)


def check(text: str, files: dict[str, str] | None = None, folder: str = SECRETS_FOLDER) -> list[str]:
    """``amtool check-config``'s problems with ``text`` (empty: it passes). The secret ``files`` are written, 0600,
    into a private temporary folder standing for ``folder``, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="kubemate-amcheck-") as tmp:
        secrets_dir = Path(tmp) / "secrets"
        secrets_dir.mkdir(mode=0o700)
        for relative, value in (files or {}).items():
            path = (secrets_dir / relative).resolve()
            if not path.is_relative_to(secrets_dir.resolve()):
                continue
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(value)
        config = Path(tmp) / "alertmanager.yml"
        config.write_text(text.replace(folder.rstrip("/") + "/", f"{secrets_dir}/"))
        try:
            done = subprocess.run([AMTOOL, "check-config", str(config)], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return [_("amtool could not be run here; the configuration was not checked.")]
    if done.returncode == 0:
        return []
    output = (
        (done.stdout + "\n" + done.stderr).replace(str(config), "alertmanager.yml").replace(str(secrets_dir), folder)
    )
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith("amtool: error")]
    problems = [line.split("FAILED:", 1)[1].strip() if "FAILED:" in line else line for line in lines]
    return [p for p in problems if p] or [_("amtool refused the configuration.")]


# --- audit ---------------------------------------------------------------------------------------------------------


def _audit_view(receiver: Receiver) -> dict:
    return {
        "project": receiver.project.slug,
        "kind": receiver.kind,
        "target": shown_target(receiver),
        "severities": list(receiver.severities),
        "namespaces": list(receiver.watched_namespaces),
    }


def _record(actor, action: str, receiver: Receiver, *, request=None, detail=None, error: str = "") -> None:
    audit.record(
        actor=actor,
        action=action,
        result="failure" if error else "success",
        cluster=receiver.project.cluster.name,
        namespace=(receiver.watched_namespaces or [""])[0],
        kind="AlertmanagerConfig",
        name=receiver.object_name,
        detail={**(detail or {}), **({"error": error} if error else {})},
        request=request,
    )
