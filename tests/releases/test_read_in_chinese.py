"""A rollout started by an English reader reads in Chinese for a Chinese reader (issue: the operator's day, item 3)."""

import pytest
from django.conf import settings
from django.urls import reverse

from apps.core import deferred
from apps.core.models import Job
from apps.releases.models import Release
from tests.helpers import login
from tests.releases.helpers import NAME, form_data, roll_out


@pytest.mark.sandbox
@pytest.mark.django_db
def test_a_rollout_started_in_english_reads_in_chinese_for_a_chinese_reader(client, team):
    login(client, team["user"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.post(
        reverse("releases:release_create"),
        form_data(project=team["project"].pk, namespace=team["namespace"], name=NAME),
    )
    revision = Release.objects.get(name=NAME).revisions.get()
    job = roll_out(revision)
    assert job.status == Job.Status.SUCCEEDED
    english = client.get(reverse("core:job_detail", args=[job.pk])).content.decode()
    assert f"Roll out {NAME} revision 1" in english and f"Waiting for the new pods of {NAME}." in english

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    chinese = client.get(reverse("core:job_detail", args=[job.pk])).content.decode()
    assert f"发布 {NAME} 修订版本 1" in chinese
    assert f"正在等待 {NAME} 的新 Pod。" in chinese and "已完成。" in chinese
    assert "Waiting for the new pods" not in chinese and "pods ready on the new version" not in chinese
    assert deferred.MARK not in chinese
    release_page = client.get(reverse("releases:release_detail", args=[revision.release_id])).content.decode()
    assert "个已就绪" in release_page and deferred.MARK not in release_page
