"""One date format everywhere (``2026-12-03 06:52`` plus the age), in each reader's own time zone."""

import re
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.urls import reverse

from apps.accounts import preferences
from apps.accounts.models import Preference
from apps.core import audit
from apps.core.models import AuditEvent, JobLogLine
from tests.factories import AdminFactory, JobFactory, UserFactory
from tests.helpers import login

pytestmark = pytest.mark.django_db
AT = datetime(2026, 12, 3, 22, 52, 13, tzinfo=UTC)
# What Django's localized formats would put on a page: "Dec. 3, 2026", "12/03/2026", "10:52 p.m.", "2026年12月3日".
OTHER_FORMATS = re.compile(r"\b(a\.m\.|p\.m\.|midnight|noon)|\d{1,2}/\d{1,2}/\d{2,4}|\b[A-Z][a-z]{2}\. \d|\d{4}年\d+月")


def test_each_reader_sees_the_same_moment_in_their_own_zone(client):
    admin = AdminFactory()
    job = JobFactory(actor=admin, created_at=AT, finished_at=AT, status="succeeded", progress=100)
    Preference.objects.create(user=admin, time_zone="Asia/Shanghai")
    shanghai = login(client, admin).get(reverse("core:job_detail", args=[job.pk])).content.decode()
    assert "2026-12-04 06:52" in shanghai and 'datetime="2026-12-04T06:52:13+08:00"' in shanghai
    assert "2026-12-03 22:52" not in shanghai

    Preference.objects.filter(user=admin).update(time_zone="UTC")
    client.logout()
    utc = login(client, admin).get(reverse("core:job_detail", args=[job.pk])).content.decode()
    assert "2026-12-03 22:52" in utc and "2026-12-04 06:52" not in utc


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_pages_with_times_use_one_format_with_an_age(client, language):
    admin = AdminFactory(last_login=AT)
    job = JobFactory(actor=admin, created_at=AT, started_at=AT, finished_at=AT, status="failed", message="x")
    JobLogLine.objects.create(job=job, message="step", level="info", created_at=AT)
    audit.record(actor=admin, action="test.thing")
    login(client, admin)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    pages = [
        reverse("core:job_list"),
        reverse("core:job_detail", args=[job.pk]),
        reverse("accounts:audit_list"),
        reverse("accounts:user_list"),
        reverse("accounts:user_detail", args=[admin.pk]),
    ]
    for url in pages:
        body = client.get(url).content.decode()
        assert "<time datetime=" in body, url
        assert not OTHER_FORMATS.search(body), (url, OTHER_FORMATS.search(body).group(0))
    detail = client.get(reverse("core:job_detail", args=[job.pk])).content.decode()
    assert ("前" if language == "zh-hans" else " ago") in detail


def test_the_settings_page_stores_a_zone_audits_it_and_refuses_an_unknown_one(client):
    user = UserFactory()
    login(client, user)
    response = client.post(reverse("accounts:my_settings"), {"time_zone": "Asia/Hong_Kong"}, follow=True)
    assert "Times are now shown in Asia/Hong_Kong." in response.content.decode()
    assert preferences.time_zone_of(user) == "Asia/Hong_Kong"
    event = AuditEvent.objects.get(action="accounts.preference.time_zone")
    assert (event.actor_name, event.detail) == (user.username, {"time_zone": "Asia/Hong_Kong"})
    # The request that changed it already shows the new zone; the next pages too.
    assert "Asia/Hong_Kong" in client.get(reverse("accounts:my_settings")).content.decode()

    bad = client.post(reverse("accounts:my_settings"), {"time_zone": "Mars/Olympus_Mons"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    assert preferences.time_zone_of(user) == "Asia/Hong_Kong"

    client.post(reverse("accounts:my_settings"), {"time_zone": ""})
    assert preferences.time_zone_of(user) == "UTC"  # the installation's (settings.TIME_ZONE)
