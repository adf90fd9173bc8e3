"""An audit event as the SIEM reads it: one RFC 5424 message, its text in JSON or CEF (docs/siem.md).

Every message carries the event's chain position: ``seq``, its ``hash`` and the ``prev_hash`` it follows, in the
structured data element ``kubemate@32473`` and in the text. A SIEM that keeps the last ``hash`` it saw knows that
nothing is missing when the next message's ``prev_hash`` equals it, and drops a message it already holds by ``seq``.
"""

from __future__ import annotations

import json
import socket

from django.conf import settings

from apps.compliance.forwarding import syslog
from apps.core.models import AuditEvent

# The structured data ID: 32473 is the private enterprise number RFC 5612 sets aside for examples; an
# installation with its own number sets KUBEMATE_SYSLOG_SD_ID.
DEFAULT_SD_ID = "kubemate@32473"
SEVERITY = {  # syslog severity by the event's result
    AuditEvent.Result.SUCCESS: 6,
    AuditEvent.Result.FAILURE: 4,
    AuditEvent.Result.DENIED: 4,
}
CEF_SEVERITY = {AuditEvent.Result.SUCCESS: 3, AuditEvent.Result.FAILURE: 6, AuditEvent.Result.DENIED: 7}


def sd_id() -> str:
    return getattr(settings, "KUBEMATE_SYSLOG_SD_ID", "") or DEFAULT_SD_ID


def hostname() -> str:
    return getattr(settings, "KUBEMATE_SYSLOG_HOSTNAME", "") or socket.gethostname()


def limit() -> int:
    return int(getattr(settings, "KUBEMATE_SYSLOG_MAX_BYTES", syslog.MAX_MESSAGE))


def fields(event: AuditEvent) -> dict:
    """The event's fields as they are hashed (apps/core/audit.py), under the names docs/siem.md gives them."""
    return {
        "seq": event.seq,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
        "time": event.created_at.isoformat(timespec="microseconds"),
        "actor": event.actor_name,
        "actor_id": event.actor_id,
        "action": event.action,
        "result": event.result,
        "cluster": event.cluster,
        "namespace": event.namespace,
        "kind": event.object_kind,
        "name": event.object_name,
        "reason": event.reason,
        "ip": event.ip,
        "detail": event.detail,
    }


def _cef_header(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _cef_value(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (
        str(text)
        .replace("\\", "\\\\")
        .replace("=", "\\=")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def cef_text(data: dict, version: str) -> str:
    """``CEF:0|Kubemate|Kubemate Console|version|action|action|severity|extension`` (ArcSight CEF 25)."""
    extension = {
        "rt": data["time"],
        "suser": data["actor"],
        "suid": data["actor_id"] if data["actor_id"] is not None else "",
        "act": data["action"],
        "outcome": data["result"],
        "src": data["ip"] or "",
        "cs1Label": "cluster",
        "cs1": data["cluster"],
        "cs2Label": "namespace",
        "cs2": data["namespace"],
        "cs3Label": "object",
        "cs3": f"{data['kind']}/{data['name']}" if data["kind"] or data["name"] else "",
        "cs4Label": "reason",
        "cs4": data["reason"],
        "cs5Label": "hash",
        "cs5": data["hash"],
        "cs6Label": "prevHash",
        "cs6": data["prev_hash"],
        "cn1Label": "seq",
        "cn1": data["seq"],
        "msg": data["detail"],
    }
    if data.get("detail_truncated"):
        extension["cs7Label"], extension["cs7"] = "detailTruncated", "true"
    ext = " ".join(f"{key}={_cef_value(value)}" for key, value in extension.items() if value not in ("", None))
    severity = data.get("cef_severity", 3)
    head = "|".join(
        _cef_header(part) for part in ("Kubemate", "Kubemate Console", version, data["action"], data["action"])
    )
    return f"CEF:0|{head}|{severity}|{ext}"


def encode(event: AuditEvent, fmt: str) -> bytes:
    """The RFC 5424 message for ``event`` in ``fmt`` ("json" or "cef"), at most ``limit()`` bytes: an event whose
    detail would not fit is sent with ``detail`` replaced by ``{}`` and ``detail_truncated`` set (the hash still
    names the whole event, which the console's audit log keeps)."""
    data = fields(event)
    severity = SEVERITY.get(event.result, 5)

    def build(payload: dict) -> bytes:
        if fmt == "cef":
            text = cef_text({**payload, "cef_severity": CEF_SEVERITY.get(event.result, 5)}, settings.KUBEMATE_VERSION)
        else:
            text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
        return syslog.message(
            timestamp=event.created_at,
            hostname=hostname(),
            app_name="kubemate",
            msgid=event.action,
            sd_id=sd_id(),
            params={"seq": str(event.seq), "hash": event.hash, "prev": event.prev_hash},
            text=text,
            severity=severity,
        )

    message = build(data)
    if len(message) > limit():
        message = build({**data, "detail": {}, "detail_truncated": True})
    return message[: limit()]
