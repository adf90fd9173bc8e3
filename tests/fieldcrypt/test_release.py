"""A release whose sensitive variables are encrypted in the cluster too (issue 11, item 11).

Its Secret holds envelopes only; its pods run kubemate-decrypt first, as the release's ServiceAccount, and the
app reads NAME_FILE. The real binary, given what the kubelet would give the init container, gets the value back.
"""

import base64
import os
import subprocess

import pytest
from django.conf import settings
from django.urls import reverse
from kubernetes import client as k8s

from apps.accounts.models import Project
from apps.core.models import AuditEvent
from apps.fieldcrypt.k8s import key_secret_name
from apps.releases.models import Release
from tests.factories import UserFactory
from tests.fieldcrypt.test_in_cluster import binary
from tests.helpers import bind, login
from tests.releases.helpers import NAME, form_data

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.sandbox]
VALUE = "ledger-db-pass-5521"


def test_a_release_encrypting_in_the_cluster_holds_no_plaintext_and_its_pod_step_decrypts(
    sandbox, registered_cluster, namespace, admin_user, client, tmp_path
):
    core, apps = k8s.CoreV1Api(sandbox.api_client), k8s.AppsV1Api(sandbox.api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "payments-app"}})
    owner = UserFactory()
    bind(admin_user, registered_cluster, owner, "project-owner", [namespace])
    project = Project.objects.get(namespaces__contains=[namespace])
    person = login(client, owner)
    data = form_data(
        project=project.pk, namespace=namespace, name=NAME, secret_env=f"DB_PASSWORD={VALUE}",
        encrypt_in_cluster="on", decrypt_service_account="payments-app",
    )  # fmt: skip

    created = person.post(reverse("releases:release_create"), data)

    assert created.status_code == 302, created.content.decode()[-3000:]
    stored = base64.b64decode(core.read_namespaced_secret(f"{NAME}-env", namespace).data["DB_PASSWORD"]).decode()
    assert stored.startswith("kmenc:v1:1:") and VALUE not in stored
    pod = apps.read_namespaced_deployment(NAME, namespace).spec.template.spec
    assert pod.service_account_name == "payments-app"
    step = pod.init_containers[0]
    assert (step.name, step.image, step.args) == (
        "kubemate-decrypt", settings.KUBEMATE_DECRYPT_IMAGE, ["files", "--out", "/kubemate/decrypted"]
    )  # fmt: skip
    app_env = {e.name: e.value for e in pod.containers[0].env}
    assert app_env.get("DB_PASSWORD_FILE") == "/kubemate/decrypted/DB_PASSWORD" and "DB_PASSWORD" not in app_env
    assert pod.volumes[0].empty_dir.medium == "Memory"

    # What the kubelet gives the init container: its plain env, and the Secret's keys referenced by it.
    env = {"PATH": os.environ["PATH"]}
    for item in step.env:
        env[item.name] = item.value if item.value is not None else stored
    assert env["KUBEMATE_KEY_SECRET"] == key_secret_name(project)
    token = core.create_namespaced_service_account_token("payments-app", namespace, {"spec": {}}).status.token
    (tmp_path / "token").write_text(token)
    out = tmp_path / "decrypted"
    token_file = str(tmp_path / "token")
    command = [binary(), "files", "--out", str(out), "--server", sandbox.server, "--token-file", token_file,
               "--ca-file", sandbox.ca_file]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert (out / "DB_PASSWORD").read_text() == VALUE

    # Deploying the same spec again changes nothing (envelopes are fresh each time, the digest is not).
    release = Release.objects.get(name=NAME)
    again = person.post(reverse("releases:release_deploy", args=[release.pk]), follow=True).content.decode()
    assert "Nothing to change" in again

    # Rotation by the command, acting as the owner: the release's Secret is sealed again with version 2, the pod
    # step opens it, and the key Secret keeps only version 2.
    from django.core.management import call_command

    call_command("rotate_field_key", registered_cluster.name, project.slug, "--as", owner.username)
    resealed = base64.b64decode(core.read_namespaced_secret(f"{NAME}-env", namespace).data["DB_PASSWORD"]).decode()
    assert resealed.startswith("kmenc:v1:2:") and VALUE not in resealed
    env.update({name: resealed for name in env if name == "DB_PASSWORD"})
    after = subprocess.run(
        [*command[:3], str(tmp_path / "after"), *command[4:]], env=env, capture_output=True, text=True
    )
    assert after.returncode == 0, after.stderr
    assert (tmp_path / "after" / "DB_PASSWORD").read_text() == VALUE
    keys = core.read_namespaced_secret(key_secret_name(project), "kubemate-fieldkeys").data
    assert sorted(keys) == ["v2"]
    event = AuditEvent.objects.get(action="fieldcrypt.key.rotate")
    assert event.actor_id == owner.pk
