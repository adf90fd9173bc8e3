"""What beat starts for the approvals: the expiry pass. (Their mail task is beside its body, in notify.py.)"""

from __future__ import annotations

from celery import shared_task

from apps.compliance.approvals import notify  # noqa: F401 (workers learn compliance.mail_change)


@shared_task(name="compliance.expire_changes", ignore_result=True)
def expire_changes() -> int:
    """Close change requests nobody decided in time (beat, every minute)."""
    from apps.compliance.approvals.services import expire_due

    return expire_due()
