import time

import pytest
from django.urls import reverse

from apps.core.middleware import LAST_ACTIVITY_KEY, LOGIN_AT_KEY
from apps.core.models import Job
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_job_status_polls_until_finished_then_answers_286(operator_client, operator):
    job = JobFactory(actor=operator, status=Job.Status.RUNNING, progress=60)
    url = reverse("core:job_status", args=[job.pk])

    running = operator_client.get(url, HTTP_HX_REQUEST="true")
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, progress=100)
    finished = operator_client.get(url, HTTP_HX_REQUEST="true")

    assert running.status_code == 200
    assert 'hx-trigger="every 2s"' in running.content.decode()
    assert 'data-progress="60"' in running.content.decode()
    assert finished.status_code == 286
    assert "hx-trigger" not in finished.content.decode()
    assert 'data-progress="100"' in finished.content.decode()


def test_someone_elses_job_answers_404_like_a_missing_one(operator_client):
    other = JobFactory()
    assert operator_client.get(reverse("core:job_detail", args=[other.pk])).status_code == 404
    assert operator_client.get(reverse("core:job_status", args=[other.pk])).status_code == 404


def test_job_list_shows_only_own_jobs(operator_client, operator, django_assert_max_num_queries):
    mine = JobFactory(actor=operator, title="Scale payments-api")
    JobFactory(title="Drain node worker-7")
    with django_assert_max_num_queries(6):
        html = operator_client.get(reverse("core:job_list")).content.decode()
    assert mine.title in html
    assert "Drain node worker-7" not in html


def test_job_detail_shows_log_lines(operator_client, operator):
    job = JobFactory(actor=operator)
    job.log_lines.create(message="Cordoned worker-2")
    html = operator_client.get(reverse("core:job_detail", args=[job.pk])).content.decode()
    assert "Cordoned worker-2" in html


def test_healthz_and_readyz(client):
    assert client.get("/healthz").content == b"ok\n"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "database": "ok", "redis": "ok"}


def test_readyz_reports_redis_down(client, settings):
    from apps.core.redis import get_redis

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    get_redis.cache_clear()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["redis"] == "unreachable"


def test_idle_session_expires_and_htmx_gets_a_redirect(operator_client):
    session = operator_client.session
    session[LAST_ACTIVITY_KEY] = time.time() - 31 * 60
    session.save()

    response = operator_client.get(reverse("dashboard_facts"), HTTP_HX_REQUEST="true")

    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(reverse("login"))
    assert operator_client.get(reverse("dashboard")).status_code == 302


def test_absolute_session_limit_applies_even_when_active(operator_client):
    session = operator_client.session
    session[LOGIN_AT_KEY] = time.time() - 12 * 3600 - 5
    session[LAST_ACTIVITY_KEY] = time.time()
    session.save()

    response = operator_client.get(reverse("dashboard"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_polling_does_not_count_as_activity(operator_client):
    session = operator_client.session
    stale = time.time() - 10 * 60
    session[LAST_ACTIVITY_KEY] = stale
    session.save()

    operator_client.get(reverse("dashboard_facts"), HTTP_HX_REQUEST="true", HTTP_X_KUBEMATE_POLL="1")
    assert operator_client.session[LAST_ACTIVITY_KEY] == stale
    operator_client.get(reverse("dashboard"))
    assert operator_client.session[LAST_ACTIVITY_KEY] > stale


def test_unknown_page_is_a_translated_404(operator_client):
    response = operator_client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 404
    assert "此页面不存在" in response.content.decode()
