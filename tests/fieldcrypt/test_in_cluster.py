"""Field encryption on the sandbox (issue 11, item 11): ciphertext in the cluster, plaintext only in the pod.

The real kubemate-decrypt binary (deploy/decrypt, built by `make test`) runs as the app's init step would, with
a token of the app's ServiceAccount from the TokenRequest API, against the sandbox API server.
"""

import base64
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from kubernetes import client as k8s

from apps.accounts import services as accounts
from apps.accounts.models import Project
from apps.core.models import AuditEvent
from apps.fieldcrypt import services
from apps.fieldcrypt.k8s import KEY_NAMESPACE, key_secret_name
from apps.fieldcrypt.models import ProjectKey
from tests.helpers import unique

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]
REPO = Path(__file__).resolve().parents[2]
SECRET_VALUE, CONFIG_VALUE = "s3cr3t-Pa55-7781", "tok-4f9d-payments"


def binary() -> str:
    subprocess.run([str(REPO / "deploy/decrypt/build")], check=True, capture_output=True)
    path = subprocess.run([str(REPO / "deploy/decrypt/build"), "--print-path"], capture_output=True, text=True)
    return path.stdout.strip()


@pytest.fixture
def app(sandbox, registered_cluster, namespace, admin_user, tmp_path):
    core = k8s.CoreV1Api(sandbox.api_client)
    project = accounts.save_project(
        actor=admin_user,
        project=Project(cluster=registered_cluster, slug=unique("fc"), name="Payments", namespaces=[namespace]),
    )
    from apps.accounts.reconcile import reconcile_rbac

    reconcile_rbac(registered_cluster)  # the superuser acting below is known to the cluster
    for account in ("payments-app", "intruder"):
        core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    data = {"DB_PASSWORD": base64.b64encode(SECRET_VALUE.encode()).decode(), "DB_USER": "cGF5bWVudHM="}
    core.create_namespaced_secret(namespace, {"metadata": {"name": "payments-db"}, "data": data})
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "payments"}, "data": {"API_TOKEN": CONFIG_VALUE}}
    )
    return {"project": project, "namespace": namespace, "core": core, "tmp": tmp_path}


def token_for(core, namespace: str, account: str) -> str:
    answer = core.create_namespaced_service_account_token(account, namespace, {"spec": {"expirationSeconds": 600}})
    return answer.status.token


def sealed_values(app) -> dict[str, str]:
    core, namespace = app["core"], app["namespace"]
    secret = core.read_namespaced_secret("payments-db", namespace)
    config = core.read_namespaced_config_map("payments", namespace)
    return {
        "DB_PASSWORD": base64.b64decode(secret.data["DB_PASSWORD"]).decode(),
        "API_TOKEN": config.data["API_TOKEN"],
    }


def decrypt(sandbox, app, account: str, values: dict[str, str], out: Path) -> subprocess.CompletedProcess:
    token_file = app["tmp"] / f"{account}.token"
    token_file.write_text(token_for(app["core"], app["namespace"], account))
    command = [
        binary(), "files", "--out", str(out), "--server", sandbox.server, "--token-file", str(token_file),
        "--ca-file", sandbox.ca_file, "--key-secret", key_secret_name(app["project"]),
    ]  # fmt: skip
    env = {"PATH": os.environ["PATH"], **values}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)


def seal_both(app, actor) -> None:
    for kind, name, field in (("Secret", "payments-db", "DB_PASSWORD"), ("ConfigMap", "payments", "API_TOKEN")):
        services.seal_field(
            actor=actor, project=app["project"], kind=kind, namespace=app["namespace"], name=name, field=field
        )


def test_sealed_fields_hold_no_plaintext_and_only_the_apps_service_account_opens_them(sandbox, app, admin_user):
    seal_both(app, admin_user)
    services.grant_reader(
        actor=admin_user, project=app["project"], namespace=app["namespace"], service_account="payments-app"
    )

    # Read back from the cluster: the whole objects, Secret data decoded, carry no plaintext.
    core, namespace = app["core"], app["namespace"]
    secret = core.read_namespaced_secret("payments-db", namespace)
    everything = json.dumps(sandbox.api_client.sanitize_for_serialization(secret)) + "".join(
        base64.b64decode(v).decode() for v in secret.data.values()
    )
    everything += json.dumps(
        sandbox.api_client.sanitize_for_serialization(core.read_namespaced_config_map("payments", namespace))
    )
    assert SECRET_VALUE not in everything and CONFIG_VALUE not in everything
    values = sealed_values(app)
    assert all(v.startswith("kmenc:v1:1:") for v in values.values())
    assert base64.b64decode(secret.data["DB_USER"]).decode() == "payments"  # other fields untouched

    # The app's ServiceAccount gets the plaintext, in files only it may read; nothing secret is printed.
    out = app["tmp"] / "decrypted"
    done = decrypt(sandbox, app, "payments-app", values, out)
    assert done.returncode == 0, done.stderr
    assert (out / "DB_PASSWORD").read_text() == SECRET_VALUE
    assert (out / "API_TOKEN").read_text() == CONFIG_VALUE
    assert stat.S_IMODE((out / "DB_PASSWORD").stat().st_mode) == 0o400
    assert SECRET_VALUE not in done.stdout + done.stderr

    # Another ServiceAccount of the same namespace is refused by the cluster, with a sentence, and writes nothing.
    refused = decrypt(sandbox, app, "intruder", values, app["tmp"] / "stolen")
    assert refused.returncode != 0
    assert "may not read the key Secret" in refused.stderr and "403" in refused.stderr
    assert not (app["tmp"] / "stolen").exists()

    # Who may read every Secret of the app's namespace still may not read the key.
    review = k8s.AuthorizationV1Api(sandbox.api_client).create_subject_access_review(
        {
            "spec": {
                "user": f"system:serviceaccount:{namespace}:intruder",
                "resourceAttributes": {
                    "verb": "get", "resource": "secrets", "namespace": KEY_NAMESPACE,
                    "name": key_secret_name(app["project"]),
                },
            }
        }
    )  # fmt: skip
    assert review.status.allowed is False
    seals = AuditEvent.objects.filter(action="fieldcrypt.field.seal", result="success")
    assert sorted(e.detail["field"] for e in seals) == ["API_TOKEN", "DB_PASSWORD"]
    assert {e.actor_id for e in seals} == {admin_user.pk}


def test_rotation_reseals_every_field_while_both_keys_open_then_retires_the_old_one(sandbox, app, admin_user):
    seal_both(app, admin_user)
    services.grant_reader(
        actor=admin_user, project=app["project"], namespace=app["namespace"], service_account="payments-app"
    )
    before = sealed_values(app)
    during = {}

    def both_open(old, new):  # pods restarting meanwhile hold old or new ciphertext: both must open
        during["old"] = decrypt(sandbox, app, "payments-app", before, app["tmp"] / "old")
        during["new"] = decrypt(sandbox, app, "payments-app", sealed_values(app), app["tmp"] / "new")

    new = services.rotate(actor=admin_user, project=app["project"], while_both_open=both_open)

    after = sealed_values(app)
    assert new.version == 2
    assert all(v.startswith("kmenc:v1:2:") for v in after.values()) and after != before
    assert during["old"].returncode == 0 and during["new"].returncode == 0, during
    assert (app["tmp"] / "old" / "DB_PASSWORD").read_text() == SECRET_VALUE
    assert (app["tmp"] / "new" / "API_TOKEN").read_text() == CONFIG_VALUE
    assert list(
        ProjectKey.objects.filter(project=app["project"], retired_at__isnull=True).values_list("version", flat=True)
    ) == [2]
    key_secret = app["core"].read_namespaced_secret(key_secret_name(app["project"]), KEY_NAMESPACE)
    assert sorted(key_secret.data) == ["v2"]

    old = decrypt(sandbox, app, "payments-app", before, app["tmp"] / "late")
    assert old.returncode != 0 and "no longer holds" in old.stderr
    fresh = decrypt(sandbox, app, "payments-app", after, app["tmp"] / "fresh")
    assert fresh.returncode == 0 and (app["tmp"] / "fresh" / "DB_PASSWORD").read_text() == SECRET_VALUE
    event = AuditEvent.objects.get(action="fieldcrypt.key.rotate")
    assert (event.actor_id, event.detail) == (admin_user.pk, {"version": 2, "resealed": 2})
