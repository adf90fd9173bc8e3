"""Rendering a release spec: specs written before the model server fields render byte for byte as they did (the
YAML in render_golden/ was produced by render.py before those fields existed), and the new fields (extra resources,
tolerations, a volume, command and arguments) render where Kubernetes expects them."""

from pathlib import Path

import pytest

from apps.releases import changes, render, services
from apps.releases.forms import KEPT_FIELDS, ReleaseForm
from tests.releases.helpers import NEW, form_data, member

GOLDEN = Path(__file__).parent / "render_golden"
NAME, NAMESPACE = "payments-api", "payments"


def old_specs() -> dict[str, dict]:
    plain = {**render.default_spec(), "image": "registry.bank.example/payments-api:1.0.0"}
    full = {
        **render.default_spec(),
        "image": "registry.bank.example/payments-api:2.0.0@sha256:" + "a" * 64,
        "replicas": 3,
        "ports": [8080, 9090],
        "env": [
            {"name": "MODE", "value": "live"},
            {"name": "URL", "configmap": "app-config", "key": "url"},
            {"name": "TOKEN", "secret": "other", "key": "token"},
        ],
        "secret_env": {"DB_PASSWORD": "tok1", "API_KEY": "tok2"},
        "resources": {"cpu_request": "250m", "cpu_limit": "1", "memory_request": "256Mi", "memory_limit": ""},
        "readiness": {"type": "tcp", "path": "", "port": 9090, "initial_delay": 0, "period": 5},
        "liveness": {"type": "none", "path": "", "port": 8080, "initial_delay": 15, "period": 20},
        "route": {
            "enabled": True,
            "hostname": "pay.bank.example",
            "path": "/api",
            "gateway_namespace": "gateway-system",
            "gateway_name": "public",
        },
        "autoscaling": {"enabled": True, "min": 2, "max": 6, "cpu_percent": 70, "memory_percent": 80},
        "node_selector": {"disk": "ssd", "zone": "a"},
        "progress_deadline_seconds": 900,
    }
    encrypted = {
        **full,
        "autoscaling": {"enabled": False},
        "cluster_encryption": {"enabled": True, "service_account": "payments"},
    }
    bare = {**plain, "service": {"enabled": False, "port": 80}, "resources": {}, "ports": []}
    return {"plain": plain, "full": full, "encrypted": encrypted, "bare": bare}


def _arguments(case: str, spec: dict) -> dict:
    arguments = {"checksum": "abc123"}
    if case == "encrypted":
        arguments.update(decrypt_image="registry.bank.example/kubemate-decrypt:1", key_secret="kubemate-fieldcrypt-p")
    return arguments


@pytest.mark.parametrize("case", ["plain", "full", "encrypted", "bare"])
def test_a_spec_without_the_new_fields_renders_as_before(case):
    spec = old_specs()[case]
    values = {key: f"v-{key}" for key in spec.get("secret_env") or {}}

    rendered = render.to_yaml(render.manifests(NAME, NAMESPACE, spec, values, **_arguments(case, spec)))

    assert rendered == (GOLDEN / f"{case}.yaml").read_text()


@pytest.mark.parametrize("case", ["plain", "full", "encrypted", "bare"])
def test_a_canary_of_a_spec_without_the_new_fields_renders_as_before(case):
    spec = old_specs()[case]
    objects = [
        render.canary_deployment(NAME, NAMESPACE, spec, 1, **_arguments(case, spec)),
        render.canary_service(NAME, NAMESPACE, spec),
    ]

    assert render.to_yaml(objects) == (GOLDEN / f"{case}-canary.yaml").read_text()


def model_spec(**more) -> dict:
    spec = {
        **render.default_spec(),
        "image": "ollama/ollama:0.12.10",
        "replicas": 1,
        "ports": [11434],
        "extra_resources": {"nvidia.com/gpu": 2},
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "dedicated", "operator": "Equal", "value": "ai", "effect": ""},
        ],
        "volume": {
            "claim": "llm-models",
            "create": True,
            "size": "50Gi",
            "storage_class": "fast-ssd",
            "access_mode": "ReadWriteOnce",
            "mount_path": "/root/.ollama",
        },
        "command": ["/bin/ollama"],
        "args": ["serve"],
    }
    spec.update(more)
    return spec


def _by_kind(objects: list[dict]) -> dict[str, dict]:
    return {o["kind"]: o for o in objects}


def test_gpus_are_requested_and_limited_alike_beside_cpu_and_memory():
    deployment = render.deployment("llm", "ai", model_spec())
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]

    assert resources == {
        "requests": {"cpu": "100m", "memory": "128Mi", "nvidia.com/gpu": "2"},
        "limits": {"cpu": "500m", "memory": "256Mi", "nvidia.com/gpu": "2"},
    }


def test_a_gpu_count_of_zero_asks_for_no_gpu():
    deployment = render.deployment("llm", "ai", model_spec(extra_resources={"nvidia.com/gpu": 0}))

    assert "nvidia.com/gpu" not in deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_tolerations_render_with_their_operator_and_only_the_parts_they_have():
    pod = render.deployment("llm", "ai", model_spec())["spec"]["template"]["spec"]

    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Equal", "value": "ai"},
    ]


def test_a_new_volume_is_a_claim_applied_before_the_deployment_that_mounts_it_and_pods_are_recreated():
    objects = render.manifests("llm", "ai", model_spec(), {})
    kinds = [o["kind"] for o in objects]
    claim, deployment = _by_kind(objects)["PersistentVolumeClaim"], _by_kind(objects)["Deployment"]
    pod = deployment["spec"]["template"]["spec"]

    assert kinds == ["PersistentVolumeClaim", "Deployment", "Service"]
    assert claim["metadata"]["name"] == "llm-models"
    assert claim["metadata"]["labels"][render.RELEASE_LABEL] == "llm"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "50Gi"}},
        "storageClassName": "fast-ssd",
    }
    assert pod["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "llm-models"}}]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/root/.ollama"}]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_an_existing_claim_is_mounted_but_not_rendered_and_a_shared_one_keeps_the_rolling_update():
    volume = {**model_spec()["volume"], "create": False, "access_mode": "ReadWriteMany", "storage_class": ""}
    objects = render.manifests("llm", "ai", model_spec(volume=volume), {})
    deployment = _by_kind(objects)["Deployment"]

    assert [o["kind"] for o in objects] == ["Deployment", "Service"]
    assert deployment["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "llm-models"}
    assert "strategy" not in deployment["spec"]


def test_a_claim_without_a_class_leaves_the_class_to_the_cluster():
    volume = {**model_spec()["volume"], "storage_class": ""}

    claim = render.volume_claim("llm", "ai", model_spec(volume=volume))

    assert "storageClassName" not in claim["spec"]


def test_the_volume_mounts_beside_the_decryption_volume():
    spec = model_spec(secret_env={"TOKEN": "t"}, cluster_encryption={"enabled": True, "service_account": "llm"})
    pod = render.deployment("llm", "ai", spec, decrypt_image="d:1", key_secret="k")["spec"]["template"]["spec"]

    assert [v["name"] for v in pod["volumes"]] == [render.DECRYPTED_VOLUME, "data"]
    assert [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]] == [render.DECRYPTED_DIR, "/root/.ollama"]


def test_command_and_arguments_follow_the_image():
    container = render.deployment("llm", "ai", model_spec(args=["--model", "Qwen/Qwen2.5-7B", "--port", "8000"]))[
        "spec"
    ]["template"]["spec"]["containers"][0]

    assert list(container)[:4] == ["name", "image", "command", "args"]
    assert container["command"] == ["/bin/ollama"]
    assert container["args"] == ["--model", "Qwen/Qwen2.5-7B", "--port", "8000"]


def test_the_release_owns_and_removes_only_a_claim_it_created():
    created, mounted = model_spec(), model_spec(volume={**model_spec()["volume"], "create": False})

    assert "PersistentVolumeClaim" in services.kinds_of(created)
    assert "PersistentVolumeClaim" not in services.kinds_of(mounted)
    assert "PersistentVolumeClaim" not in services.kinds_of(old_specs()["full"])


def test_the_change_list_names_the_new_fields():
    lines = {str(c.label): (c.before, c.after) for c in changes.spec_changes(old_specs()["plain"], model_spec())}

    assert lines["Extra resources (GPUs)"] == ("—", "nvidia.com/gpu × 2")
    assert lines["Tolerations"] == ("—", "nvidia.com/gpu:NoSchedule, dedicated=ai")
    assert lines["Volume"] == ("—", "llm-models (50Gi) → /root/.ollama")
    assert lines["Command and arguments"] == ("—", "/bin/ollama serve")


def test_old_specs_show_no_change_in_the_new_fields():
    assert changes.spec_changes(old_specs()["full"], old_specs()["full"]) == []
    assert changes.extra_lines(old_specs()["full"]) == []


def test_the_release_form_keeps_the_fields_only_the_model_server_form_sets(release):
    extras = {key: model_spec()[key] for key in KEPT_FIELDS}
    release.spec = {**release.spec, **extras}
    release.save()
    form = ReleaseForm(form_data(image=NEW), user=member(release, "project-owner"), release=release)

    assert form.is_valid(), form.errors
    assert form.spec()["image"] == NEW
    assert {key: form.spec()[key] for key in KEPT_FIELDS} == extras
    assert [str(label) for label, _value in form.kept_lines()] == [
        "Extra resources (GPUs)",
        "Tolerations",
        "Volume",
        "Command and arguments",
    ]
