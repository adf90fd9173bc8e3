"""What beat starts for audit forwarding."""

from __future__ import annotations

from celery import shared_task

from apps.compliance.forwarding import alerts  # noqa: F401 (workers learn compliance.mail_siem)


@shared_task(name="compliance.forward_audit", ignore_result=True)
def forward_audit() -> int:
    """Send each syslog destination the audit events it has not confirmed yet (beat, every 5 s)."""
    from apps.compliance.forwarding.services import forward_all

    return forward_all()
