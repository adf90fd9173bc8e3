"""The relay from Alertmanager to the group robots: Alertmanager posts a robot receiver's alerts here as a webhook
(``Authorization: Bearer <the receiver's relay token>``), and Kubemate words them as the robot's markdown message
and sends it through ``robots``.

The body comes from outside: it is read up to ``MAX_BODY`` bytes, its JSON nesting and number of alerts are bounded,
and it must be Alertmanager's webhook format (version "4"); every refusal is a short sentence with its status (400,
401, 413), never an error page. A robot has no reader, so the message is in the installation's language.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from apps.observability.models import Receiver
from apps.observability.notify import robots, services

MAX_BODY = 1024 * 1024
MAX_DEPTH = 8
MAX_ALERTS = 100
SHOWN_ALERTS = 20


class Refusal(Exception):
    def __init__(self, status: int, sentence: str):
        super().__init__(sentence)
        self.status, self.sentence = status, sentence


def _depth(value, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()] or [level + 1])
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value] or [level + 1])
    return level


def _text(value, limit: int = 300) -> str:
    return str(value)[:limit] if isinstance(value, str | int | float) else ""


def authorized(receiver_id: int, authorization: str) -> Receiver:
    """The robot receiver whose relay token ``authorization`` presents; Refusal(401) otherwise (the same for an
    unknown receiver and a wrong token)."""
    refused = Refusal(401, "The relay token is missing or wrong.")
    receiver = (
        Receiver.objects.select_related("project__cluster")
        .filter(pk=receiver_id, kind__in=[Receiver.Kind.DINGTALK, Receiver.Kind.WECOM])
        .first()
    )
    scheme, _sep, token = (authorization or "").partition(" ")
    presented = hashlib.sha256(token.strip().encode()).hexdigest()
    expected = receiver.relay_token_hash if receiver and receiver.relay_token_hash else "0" * 64
    if scheme.lower() != "bearer" or not token.strip() or not hmac.compare_digest(presented, expected):
        raise refused
    if receiver is None:
        raise refused
    return receiver


def parse(body: bytes) -> list[dict]:
    """The alerts of an Alertmanager webhook body, bounded and checked; Refusal(400 or 413) otherwise."""
    if len(body) > MAX_BODY:
        raise Refusal(413, "The body is larger than 1 MiB.")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Refusal(400, "The body is not JSON.") from None
    if _depth(data) > MAX_DEPTH:
        raise Refusal(400, "The body is nested too deeply.")
    if not isinstance(data, dict) or data.get("version") != "4" or not isinstance(data.get("alerts"), list):
        raise Refusal(400, "The body is not an Alertmanager webhook notification (version 4).")
    alerts = data["alerts"]
    if len(alerts) > MAX_ALERTS:
        raise Refusal(413, "The notification holds more than 100 alerts.")
    checked = []
    for alert in alerts:
        if not isinstance(alert, dict) or not isinstance(alert.get("labels", {}), dict):
            raise Refusal(400, "An alert of the notification is not shaped as Alertmanager sends it.")
        checked.append(alert)
    return checked


def message(alerts: list[dict], base_url: str) -> tuple[str, str]:
    """(title, markdown) in the installation's language."""
    with translation.override(settings.LANGUAGE_CODE):
        firing = sum(1 for a in alerts if a.get("status") != "resolved")
        title = _("Kubemate: %(firing)s firing, %(resolved)s resolved") % {
            "firing": firing,
            "resolved": len(alerts) - firing,
        }
        lines = [f"### {title}", ""]
        for alert in alerts[:SHOWN_ALERTS]:
            labels = alert.get("labels") or {}
            annotations = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
            state = _("resolved") if alert.get("status") == "resolved" else _("firing")
            lines.append(f"- **{_text(labels.get('alertname'), 100)}** ({state})")
            severity, namespace = _("Severity"), _("Namespace")
            lines.append(f"  - {severity}: {_text(labels.get('severity'), 20)}")
            lines.append(f"  - {namespace}: {_text(labels.get('namespace'), 63)}")
            summary = _text(annotations.get("summary")) or _text(annotations.get("message"))
            if summary:
                label = _("Summary")
                lines.append(f"  - {label}: {summary}")
            started = _("Started")
            lines.append(f"  - {started}: {_text(alert.get('startsAt'), 40)}")
        if len(alerts) > SHOWN_ALERTS:
            lines.append(_("… and %(count)s more.") % {"count": len(alerts) - SHOWN_ALERTS})
        link = _("Open the alerts in Kubemate")
        lines += ["", f"[{link}]({base_url}{reverse('observability:alert_list')})"]
    return title, "\n".join(lines)


def deliver(receiver: Receiver, alerts: list[dict], base_url: str) -> None:
    """Send the message to the receiver's robot; robots.RobotError when it does not take it."""
    secrets = services.secrets_of(receiver)
    title, text = message(alerts, base_url)
    if receiver.kind == Receiver.Kind.DINGTALK:
        robots.send_dingtalk(secrets.get("url", ""), title, text, sign_secret=secrets.get("sign_secret", ""))
    else:
        robots.send_wecom(secrets.get("url", ""), text)
