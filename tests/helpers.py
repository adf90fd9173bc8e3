"""Helpers every test module shares: sign in, grant roles, name things, wait, and the sandbox's namespaces.

Test modules import these (and tests/factories.py) and never one another; fixtures built on them live in
the conftest.py files.
"""

from __future__ import annotations

import json
import time
import uuid

from django.test import Client
from django.urls import reverse
from kubernetes import client as k8s
from playwright.sync_api import expect

from apps.accounts import services
from apps.accounts.models import Binding, Project, Role
from apps.accounts.reconcile import reconcile_rbac
from apps.core.reauth import REAUTH_AT_KEY
from tests.factories import PASSWORD


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def wait_for(predicate, timeout: float = 30, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


def login(client_: Client, user, *, recent_auth: bool = False) -> Client:
    """Sign in; signing in proves the password, so without ``recent_auth`` that proof is made stale."""
    client_.force_login(user)
    session = client_.session
    session[REAUTH_AT_KEY] = time.time() if recent_auth else 0
    session.save()
    return client_


def sign_in(client_: Client, username: str, password: str, **extra):
    """Post the sign-in form the way a person does (the password checks, lock-out and audit all run)."""
    return client_.post(reverse("login"), {"username": username, "password": password}, **extra)


def sign_in_page(page, user) -> None:
    """Sign in through the form in the browser (Playwright) and land on the dashboard."""
    page.goto("/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("[data-testid=login-submit]")
    expect(page.locator("h2.page-title")).to_have_text("Dashboard")


def bind(admin, cluster, user, role_slug: str, namespaces=None) -> None:
    """Bind ``role_slug`` to ``user`` on a project holding ``namespaces`` (or the whole cluster) and project RBAC."""
    role = Role.objects.get(slug=role_slug)
    if namespaces:
        project = services.save_project(
            actor=admin, project=Project(cluster=cluster, slug=unique("p"), name="Team", namespaces=namespaces)
        )
        services.create_binding(actor=admin, role=role, user=user, project=project)
    else:
        services.create_binding(actor=admin, role=role, user=user, cluster=cluster)
    reconcile_rbac(cluster)


def grant(user, role_slug: str, *, project=None, cluster=None) -> Binding:
    """A binding row alone (no audit event, no RBAC projection): enough for pages that read the database."""
    scope = Binding.Scope.PROJECT if project else Binding.Scope.CLUSTER if cluster else Binding.Scope.PLATFORM
    return Binding.objects.create(
        user=user, role=Role.objects.get(slug=role_slug), scope=scope, project=project, cluster=cluster
    )


def htmx_events(response) -> list[str]:
    """The names of the events a response asks htmx to trigger (``HX-Trigger``)."""
    return list(json.loads(response["HX-Trigger"])) if "HX-Trigger" in response else []


def url(view: str, cluster, **kwargs) -> str:
    return reverse(view, kwargs={"cluster_id": cluster.pk, **kwargs})


def deployment(name: str, replicas: int = 1, container: str = "web", **pod_spec) -> dict:
    """A Deployment manifest to create in the sandbox."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": container, "image": "registry.bank.example/web:1.0"}], **pod_spec},
            },
        },
    }


def create_namespace(sandbox, name: str) -> None:
    k8s.CoreV1Api(sandbox.api_client).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))


def delete_namespace(sandbox, name: str) -> None:
    k8s.CoreV1Api(sandbox.api_client).delete_namespace(name)


def running_pods(sandbox, namespace: str, selector: str) -> list:
    """The pods matching the label ``selector`` that run and are not being deleted."""
    pods = k8s.CoreV1Api(sandbox.api_client).list_namespaced_pod(namespace, label_selector=selector).items
    return [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def session_database_url() -> str:
    """The URL of the database this test session runs on (for processes started by a test)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class WebProcess:
    """A real gunicorn (one worker, one thread) on the test database; ``url`` and the worker's ``pid``."""

    def __init__(self, **env: str):
        import os
        import subprocess
        import sys
        from pathlib import Path

        self.repo = Path(__file__).resolve().parents[1]
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "kubemate.settings.test",
            "DATABASE_URL": session_database_url(),
            "PYTHONPATH": str(self.repo),
            **env,
        }
        command = [
            str(Path(sys.executable).with_name("gunicorn")),
            "kubemate.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            "--workers=1",
            "--threads=1",
            "--timeout=120",
        ]
        self.master = subprocess.Popen(
            command, cwd=self.repo, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def __enter__(self) -> WebProcess:
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or (on a busy machine) the master listens before its worker answers
            assert self.master.poll() is None, self.master.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
            time.sleep(0.2)
        from pathlib import Path

        children = Path(f"/proc/{self.master.pid}/task/{self.master.pid}/children").read_text().split()
        assert len(children) == 1, children
        self.pid = int(children[0])
        return self

    def __exit__(self, *exc) -> None:
        self.master.terminate()
        self.master.wait(30)


def confirm_dialog(page, reason: str = "", password: str = "") -> str:
    """Answer the console's confirmation dialog (templates/htmx/confirm_modal.html); returns what it showed under
    "What will change" (empty when nothing)."""
    from playwright.sync_api import expect

    modal = page.locator("[data-testid=confirm-modal]")
    expect(modal).to_be_visible()
    changes = modal.locator("[data-testid=confirm-changes]")
    shown = changes.inner_text() if changes.is_visible() else ""
    if reason:
        modal.locator("[data-testid=confirm-reason]").fill(reason)
    if password:
        modal.locator("[data-testid=confirm-password]").fill(password)
    modal.locator("[data-testid=confirm-ok]").click()
    expect(modal).to_be_hidden()
    return shown
