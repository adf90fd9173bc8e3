"""Redis down (issue 11, item 4): pages render from PostgreSQL, work that needs Redis says so, /readyz names it.

A private redis-server (so stopping it harms no other test) serves a real gunicorn worker on the test
database. A signed-in operator opens the main pages, Redis is stopped, and the same pages, /healthz with
the session cookie and an action that queues a job are asked again; then Redis comes back and the same
session goes on. The seconds each phase took are printed.
"""

import shutil
import subprocess
import time

import pytest
import requests
from django.conf import settings
from django.test import Client
from django.urls import reverse

from apps.core.jobs import start_job
from apps.core.models import AuditEvent, Job
from apps.core.redis import ServiceUnavailable, get_redis
from tests.clusters.inventory_rows import build_bank, list_url
from tests.factories import AdminFactory
from tests.helpers import WebProcess, free_port, login, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


class PrivateRedis:
    def __init__(self, folder):
        self.port, self.folder, self.process = free_port(), folder, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.process = subprocess.Popen([*command, "--dir", str(self.folder)], stdout=subprocess.DEVNULL)
        assert wait_for(
            lambda: (
                subprocess.run(
                    ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
                ).stdout.strip()
                == "PONG"
            ),
            timeout=10,
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def redis_server(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


def pages(bank) -> dict[str, str]:
    cluster = bank["cluster"]
    return {
        "dashboard": reverse("dashboard"),
        "clusters": reverse("clusters:cluster_list"),
        "overview": reverse("clusters:cluster_overview", args=[cluster.pk]),
        "pods": list_url(cluster, "pods"),
        "releases": reverse("releases:release_list"),
        "jobs": reverse("core:job_list"),
        "audit": reverse("accounts:audit_list"),
        "users": reverse("accounts:user_list"),
    }


def test_pages_render_and_actions_say_so_while_redis_is_down(redis_server):
    bank = build_bank()
    admin = AdminFactory()
    session = login(Client(), admin, recent_auth=True).cookies[settings.SESSION_COOKIE_NAME].value
    urls = pages(bank)
    with WebProcess(REDIS_URL=redis_server.url, KUBEMATE_TEST_REDIS_URL=redis_server.url) as web:
        browser = requests.Session()
        browser.cookies.set(settings.SESSION_COOKIE_NAME, session)
        browser.cookies.set(settings.CSRF_COOKIE_NAME, "k" * 32)
        browser.headers.update({"X-CSRFToken": "k" * 32, "Referer": web.url + "/"})

        def answers():
            return {name: browser.get(web.url + url, timeout=30).status_code for name, url in urls.items()}

        assert answers() == dict.fromkeys(urls, 200)
        assert requests.get(web.url + "/readyz", timeout=10).json()["redis"] == "ok"

        redis_server.stop()
        started = time.monotonic()
        down = answers()
        seconds_down = time.monotonic() - started
        healthz = browser.get(web.url + "/healthz", timeout=10)
        readyz = requests.get(web.url + "/readyz", timeout=10)
        node = reverse("clusters:node_drain", kwargs={"cluster_id": bank["cluster"].pk, "name": "node-1"})
        jobs_before = Job.objects.count()
        drain = browser.post(web.url + node, headers={"HX-Request": "true"}, timeout=30)

        redis_server.start()
        back = answers()

    print(f"\nRedis down: {len(urls)} pages in {seconds_down:.2f} s; drain answered {drain.status_code}")
    assert down == dict.fromkeys(urls, 200)
    assert healthz.status_code == 200
    assert readyz.status_code == 503
    assert readyz.json() == {"ready": False, "database": "ok", "redis": "unreachable"}
    assert drain.status_code == 503
    assert "task queue (Redis) is not reachable" in drain.text
    assert Job.objects.count() == jobs_before
    assert not AuditEvent.objects.filter(action="clusters.node.drain_started").exists()
    assert back == dict.fromkeys(urls, 200)


def test_start_job_refuses_before_writing_anything_when_redis_is_down(settings_with_dead_redis, admin_user):
    from tests.core.test_jobs import stepping_job

    with pytest.raises(ServiceUnavailable):
        start_job(task=stepping_job, title="Steps", actor=admin_user, target="kubemate/steps", args=(1,))

    assert not Job.objects.exists()


@pytest.fixture
def settings_with_dead_redis(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    get_redis.cache_clear()
    yield settings
    get_redis.cache_clear()


def test_the_500_page_needs_no_session_cache_or_database(rf):
    """The error page renders from a bare request: no user, no session (both may be what failed)."""
    from apps.core.errors import server_error

    response = server_error(rf.get("/"))

    assert response.status_code == 500
    assert "Something went wrong on our side." in response.content.decode()
