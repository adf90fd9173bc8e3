"""What beat starts for access reviews: once a day, this quarter's reports and the expiry of overdue ones."""

from __future__ import annotations

from celery import shared_task

from apps.compliance.reviews import notify  # noqa: F401 (workers learn compliance.mail_access_review)


@shared_task(name="compliance.access_reviews", ignore_result=True)
def access_reviews() -> dict:
    from apps.compliance.reviews.services import expire_due, start_due

    return {"started": start_due(), "revoked": expire_due()}
