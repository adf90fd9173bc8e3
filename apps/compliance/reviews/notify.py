"""An access review by e-mail: the report to its reviewers (the project's reviewer and the platform's access
reviewers), each in their language, when it is made."""

from __future__ import annotations

import smtplib

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from apps.accounts import access
from apps.accounts.capabilities import ACCESS_REVIEW
from apps.accounts.models import Preference
from apps.compliance.models import AccessReview, ReviewSettings
from apps.core.deferred import N_, render

SUBJECT = N_("Access review %(period)s of %(project)s: %(count)s grants to confirm or revoke by %(due)s")


def reviewers(review: AccessReview) -> list:
    people = [
        p for p in get_user_model().objects.filter(is_active=True).exclude(email="") if access.may(p, ACCESS_REVIEW)
    ]
    own = ReviewSettings.objects.filter(project=review.project).select_related("reviewer").first()
    if own and own.reviewer and own.reviewer.is_active and own.reviewer.email and own.reviewer not in people:
        people.append(own.reviewer)
    return people


def send(review_id: int) -> int:
    review = AccessReview.objects.select_related("project").get(pk=review_id)
    people = reviewers(review)
    chosen = dict(Preference.objects.filter(user__in=people).exclude(language="").values_list("user_id", "language"))
    path = reverse("compliance:review_detail", args=[review.pk])
    link = f"{settings.KUBEMATE_PUBLIC_URL}{path}" if settings.KUBEMATE_PUBLIC_URL else path
    items = list(review.items.all())
    messages = []
    for person in people:
        language = chosen.get(person.pk, settings.LANGUAGE_CODE)
        with translation.override(language):
            subject = render(SUBJECT) % {
                "period": review.period,
                "project": review.project.name,
                "count": len(items),
                "due": timezone.localtime(review.due_at).date().isoformat(),
            }
            body = render_to_string("compliance/review_mail.txt", {"review": review, "items": items, "link": link})
        messages.append(EmailMessage(subject[:200], body, to=[person.email]))
    if messages:
        with get_connection() as connection:
            connection.send_messages(messages)
    AccessReview.objects.filter(pk=review.pk).update(mailed_at=timezone.now())
    return len(messages)


@shared_task(
    name="compliance.mail_access_review",
    ignore_result=True,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=30,
    max_retries=8,
)
def mail_review(review_id: int) -> int:
    return send(review_id)
