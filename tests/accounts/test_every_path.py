"""Every path that changes accounts audits and projects at once (issue 11, item 5), not only the console.

Django admin, a management command in its own process and the directory sign-in change users; each change is
audited naming who made it, and a real worker projects it into the sandbox within seconds (before, only the
5-minute reconcile did: a deleted user's ServiceAccount lived 4 min 55 s). The seconds are printed.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from apps.accounts.projection import MANAGED_NAMESPACE, user_service_account
from apps.core.models import AuditEvent
from tests.factories import UserFactory
from tests.faults.test_worker_death import start_worker, why_not
from tests.helpers import bind, login, session_database_url, wait_for

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.sandbox]
REPO = Path(__file__).resolve().parents[2]
User = get_user_model()
PROJECTED_WITHIN = 30


@pytest.fixture
def worker():
    process = start_worker()
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(10)


def has_account(sandbox, user) -> bool:
    try:
        k8s.CoreV1Api(sandbox.api_client).read_namespaced_service_account(user_service_account(user), MANAGED_NAMESPACE)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def may_cordon_nodes(sandbox, user) -> bool:
    """What the cluster itself answers for the user's ServiceAccount (a SubjectAccessReview)."""
    review = {
        "spec": {
            "user": f"system:serviceaccount:{MANAGED_NAMESPACE}:{user_service_account(user)}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{MANAGED_NAMESPACE}"],
            "resourceAttributes": {"verb": "patch", "resource": "nodes"},
        }
    }
    answer = k8s.AuthorizationV1Api(sandbox.api_client).create_subject_access_review(review)
    return bool(answer.status.allowed)


def test_deleting_a_user_in_django_admin_is_audited_and_removes_their_account_at_once(
    sandbox, registered_cluster, admin_user, client, worker
):
    person = UserFactory()
    bind(admin_user, registered_cluster, person, "cluster-admin")
    assert has_account(sandbox, person)
    admin = login(client, admin_user, recent_auth=True)

    response = admin.post(f"/admin/auth/user/{person.pk}/delete/", {"post": "yes"})
    started = time.monotonic()

    assert response.status_code == 302
    assert not User.objects.filter(pk=person.pk).exists()
    gone = wait_for(lambda: not has_account(sandbox, person), timeout=PROJECTED_WITHIN)
    print(f"\nuser deleted in Django admin: ServiceAccount gone {time.monotonic() - started:.1f} s later")
    assert gone, why_not(worker, "the ServiceAccount outlived the user")
    event = AuditEvent.objects.get(action="accounts.user.delete", object_name=person.username)
    assert (event.actor_id, event.result) == (admin_user.pk, "success")


def test_making_a_superuser_in_django_admin_is_audited_and_the_cluster_agrees_at_once(
    sandbox, registered_cluster, admin_user, client, worker
):
    person = UserFactory()
    bind(admin_user, registered_cluster, person, "cluster-admin", ["kube-public"])
    assert not may_cordon_nodes(sandbox, person)
    admin = login(client, admin_user, recent_auth=True)
    form = {
        "username": person.username,
        "is_active": "on",
        "is_superuser": "on",
        "date_joined_0": "2026-12-01",
        "date_joined_1": "10:00:00",
        "initial-date_joined_0": "2026-12-01",
        "initial-date_joined_1": "10:00:00",
        "_save": "Save",
    }

    response = admin.post(f"/admin/auth/user/{person.pk}/change/", form)
    started = time.monotonic()

    assert response.status_code == 302, response.content.decode()[-2000:]
    person.refresh_from_db()
    assert person.is_superuser
    allowed = wait_for(lambda: may_cordon_nodes(sandbox, person), timeout=PROJECTED_WITHIN)
    print(f"\nsuperuser made in Django admin: the cluster agreed {time.monotonic() - started:.1f} s later")
    assert allowed, why_not(worker, "the cluster still refused the new superuser")
    events = AuditEvent.objects.filter(action="accounts.user.update", object_name=person.username)
    event = events.get(actor_id=admin_user.pk)
    assert event.detail["changed"]["is_superuser"] == [False, True]


def test_a_management_command_is_audited_by_its_name_and_projected_at_once(sandbox, registered_cluster, worker):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "kubemate.settings.test",
        "DATABASE_URL": session_database_url(),
        "DJANGO_SUPERUSER_PASSWORD": "a-long-enough-password-1",
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", "night-ops"]
    done = subprocess.run([*command, "--email", "ops@bank.example"], cwd=REPO, env=env, capture_output=True)
    started = time.monotonic()

    assert done.returncode == 0, done.stderr.decode()[-2000:]
    person = User.objects.get(username="night-ops")
    event = AuditEvent.objects.get(action="accounts.user.create", object_name="night-ops")
    assert event.actor_id is None
    assert event.actor_name.startswith("manage.py createsuperuser (")
    assert event.detail["superuser"] is True
    allowed = wait_for(lambda: may_cordon_nodes(sandbox, person), timeout=PROJECTED_WITHIN)
    print(f"\nsuperuser made by manage.py: the cluster agreed {time.monotonic() - started:.1f} s later")
    assert allowed, why_not(worker, "the command's superuser was not projected")
