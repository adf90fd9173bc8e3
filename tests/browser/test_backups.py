"""Backups from the console, in English and in Chinese, against the real Velero server (tests/plugins/velero.py,
its storage on versitygw): a project owner schedules a Velero backup plan of their namespace, runs it now and
watches it complete (the Velero part of the page polls while it runs), a ConfigMap of the namespace is deleted,
the restore's preview lists it as to be created, the restore asks for the password again in the dialog, and a
real Celery worker follows the restore until the ConfigMap is back."""

import re
from importlib import import_module

import pytest
from django.conf import settings
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException
from playwright.sync_api import expect

from apps.backups.models import Backup, Kind, Plan, Restore
from apps.backups.services import set_velero_namespace
from apps.core.reauth import REAUTH_AT_KEY
from tests.factories import PASSWORD, UserFactory
from tests.helpers import bind, confirm_dialog, create_namespace, delete_namespace, sign_in_page, unique, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.sandbox,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
# Words of the page already translated elsewhere in the console (the backups pages' own go in with their
# translations).
WORDS = {
    "en": {"run": "Run now", "status": "Status"},
    "zh-hans": {"run": "立即执行", "status": "状态"},
}


def make_password_proof_stale(page) -> None:
    """As if the person signed in long ago: a restore then asks for the password again."""
    cookie = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = import_module(settings.SESSION_ENGINE).SessionStore(cookie["value"])
    session[REAUTH_AT_KEY] = 0
    session.save()


@pytest.fixture
def team(sandbox, registered_cluster, velero, admin_user):
    """Velero's namespace named for the sandbox; a namespace holding ConfigMap payments-config and its owner."""
    set_velero_namespace(actor=admin_user, cluster=registered_cluster, namespace=velero.namespace)
    registered_cluster.refresh_from_db()
    namespace = unique("bk")
    create_namespace(sandbox, namespace)
    k8s_client.CoreV1Api(sandbox.api_client).create_namespaced_config_map(
        namespace, {"metadata": {"name": "payments-config"}, "data": {"mode": "live", "limit": "500"}}
    )
    owner = UserFactory()
    bind(admin_user, registered_cluster, owner, "project-owner", [namespace])
    yield {"cluster": registered_cluster, "namespace": namespace, "owner": owner}
    try:
        delete_namespace(sandbox, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise


def _config_map(sandbox, namespace: str):
    try:
        return k8s_client.CoreV1Api(sandbox.api_client).read_namespaced_config_map("payments-config", namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_schedule_a_velero_plan_run_it_and_restore_a_deleted_config_map(
    language, page, screenshot, live_server, sandbox, team, celery_worker_thread
):
    words = WORDS[language]
    cluster, namespace, owner = team["cluster"], team["namespace"], team["owner"]
    sign_in_page(page, owner)
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}])
    make_password_proof_stale(page)

    # The backups home lists the cluster; its page offers a Velero plan of the owner's namespace.
    page.goto("/backups/")
    section = page.locator(f"[data-testid=cluster-section][data-cluster={cluster.name}]")
    expect(section.get_by_test_id("plans-empty")).to_be_visible()
    section.get_by_test_id("cluster-link").click()
    expect(page).to_have_url(re.compile(rf"/backups/clusters/{cluster.pk}/$"))
    expect(page.get_by_test_id("plan-new-etcd")).to_have_count(0)  # etcd is the whole cluster's
    page.get_by_test_id("plan-new-velero").click()
    page.get_by_test_id("field-name").fill("nightly")
    expect(page.get_by_test_id("plan-namespace")).to_have_count(1)  # only the namespace the owner holds
    page.locator(f"[data-testid=plan-namespace][data-namespace={namespace}]").check()
    page.get_by_test_id("field-cron").fill("0 3 * * *")
    page.get_by_test_id("field-keep_days").fill("3")
    page.get_by_test_id("field-rpo_hours").fill("24")
    page.get_by_test_id("plan-save").click()
    expect(page).to_have_url(re.compile(rf"/backups/clusters/{cluster.pk}/$"))
    plan = Plan.objects.get(cluster=cluster, name="nightly")
    assert (plan.kind, plan.namespaces, plan.created_by) == (Kind.VELERO, [namespace], owner)
    row = page.locator("[data-testid=plan-row][data-plan=nightly]")
    expect(row).to_have_attribute("data-state", "none")  # no backup yet: red

    # Run it now; the Velero part of the page follows the backup until Velero completes it.
    expect(row.get_by_test_id("plan-run")).to_have_text(words["run"])
    row.get_by_test_id("plan-run").click()
    confirm_dialog(page)
    expect(page.get_by_test_id("started-job")).to_be_visible()
    backup = Backup.objects.get(plan=plan)
    assert backup.actor == owner and backup.name.startswith("km-nightly-")
    done = page.locator(f"[data-testid=velero-backup-row][data-backup={backup.name}]")
    expect(done).to_have_attribute("data-phase", "Completed", timeout=120_000)
    expect(page.locator("[data-testid=velero-backup-table] th").nth(1)).to_have_text(words["status"])
    assert wait_for(lambda: Backup.objects.get(pk=backup.pk).status == Backup.Status.SUCCEEDED, timeout=60)
    page.reload()
    expect(page.locator("[data-testid=plan-row][data-plan=nightly]")).to_have_attribute("data-state", "fresh")
    expect(done).to_have_attribute("data-phase", "Completed")
    screenshot(f"backups-cluster-{language}")

    # A ConfigMap is deleted; the restore's preview lists it as to be created, the namespace's other objects as kept.
    k8s_client.CoreV1Api(sandbox.api_client).delete_namespaced_config_map("payments-config", namespace)
    assert wait_for(lambda: _config_map(sandbox, namespace) is None, timeout=30)
    done.get_by_test_id("velero-restore").click()
    expect(
        page.locator(f"[data-testid=restore-namespace-row][data-namespace={namespace}] input[type=checkbox]")
    ).to_be_checked()
    page.get_by_test_id("restore-preview").click()
    lost = page.locator(f'[data-testid=preview-row][data-to="{namespace}/payments-config"]')
    expect(lost).to_have_attribute("data-exists", "no")
    kept = page.locator(f'[data-testid=preview-row][data-to="{namespace}/kube-root-ca.crt"]')
    expect(kept).to_have_attribute("data-exists", "yes")
    expect(page.locator("[data-testid=preview-row][data-exists=no]")).to_have_count(1)  # only the ConfigMap
    expect(page.get_by_test_id("preview-new")).to_contain_text("1")
    screenshot(f"backups-restore-preview-{language}")

    # Restoring asks for the password again; a worker follows the restore, and the ConfigMap is back.
    page.get_by_test_id("restore-submit").click()
    expect(page.get_by_test_id("confirm-password")).to_be_visible()
    confirm_dialog(page, reason="CHG-4711 restore the lost settings", password=PASSWORD)
    expect(page).to_have_url(re.compile(rf"/backups/clusters/{cluster.pk}/\?job="))
    restore = Restore.objects.get(backup_name=backup.name)
    assert restore.actor == owner and restore.preview["new"] >= 1
    restored_row = page.locator(f"[data-testid=velero-restore-row][data-restore={restore.name}]")
    expect(restored_row).to_have_attribute("data-phase", "Completed", timeout=120_000)
    assert wait_for(lambda: _config_map(sandbox, namespace) is not None, timeout=60)
    assert _config_map(sandbox, namespace).data == {"mode": "live", "limit": "500"}
    assert wait_for(lambda: Restore.objects.get(pk=restore.pk).status == Restore.Status.SUCCEEDED, timeout=60)

    # The overview the owner starts from: their cluster's plan, green since its backup.
    page.goto(f"{live_server.url}/backups/")
    section = page.locator(f"[data-testid=cluster-section][data-cluster={cluster.name}]")
    expect(section.get_by_test_id("cluster-fresh")).to_be_visible()
    screenshot(f"backups-home-{language}")
