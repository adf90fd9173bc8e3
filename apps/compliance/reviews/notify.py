"""An access review by e-mail: the report to its reviewers (the project's reviewer and the platform's access
reviewers), each in their language, when it is made."""

from __future__ import annotations

from celery import shared_task
from django.template.loader import render_to_string
from django.utils import timezone

from apps.accounts import access
from apps.accounts.capabilities import ACCESS_REVIEW
from apps.compliance import mail
from apps.compliance.models import AccessReview, ReviewSettings
from apps.core.deferred import N_, render

SUBJECT = N_("Access review %(period)s of %(project)s: %(count)s grants to confirm or revoke by %(due)s")


def reviewers(review: AccessReview) -> list:
    people = list(access.platform_holders(ACCESS_REVIEW, with_email=True))
    own = ReviewSettings.objects.filter(project=review.project).select_related("reviewer").first()
    if own and own.reviewer and own.reviewer.is_active and own.reviewer.email and own.reviewer not in people:
        people.append(own.reviewer)
    return people


def send(review_id: int) -> int:
    review = AccessReview.objects.select_related("project").get(pk=review_id)
    address = mail.link("compliance:review_detail", review.pk)
    items = list(review.items.all())

    def compose() -> tuple[str, str]:
        values = {
            "period": review.period,
            "project": review.project.name,
            "count": len(items),
            "due": timezone.localtime(review.due_at).date().isoformat(),
        }
        body = render_to_string("compliance/review_mail.txt", {"review": review, "items": items, "link": address})
        return render(SUBJECT) % values, body

    sent = mail.send_each(mail.readers(reviewers(review)), compose)
    AccessReview.objects.filter(pk=review.pk).update(mailed_at=timezone.now())
    return sent


@shared_task(name="compliance.mail_access_review", **mail.RETRY)
def mail_review(review_id: int) -> int:
    return send(review_id)
