"""The model server form and its spec without a cluster: each kind's defaults, vLLM's arguments, tolerations as
kubectl writes taints, names and claims that are taken, and who may open the pages."""

import html

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.accounts.models import Project
from apps.ai.models import Endpoint
from apps.ai.servers import spec as server_spec
from apps.ai.servers.forms import ServerForm, parse_tolerations
from apps.releases import render
from apps.releases.models import Release
from tests.ai.servers.helpers import server_form
from tests.factories import ClusterFactory, ResourceFactory, UserFactory
from tests.helpers import grant, login


@pytest.fixture
def project(db):
    return Project.objects.create(cluster=ClusterFactory(), slug="ai", name="AI team", namespaces=["ai", "ai-lab"])


@pytest.fixture
def owner(project):
    user = UserFactory()
    grant(user, "project-owner", project=project)
    return user


def _form(owner, project, name="llm", namespace="ai", **overrides) -> ServerForm:
    return ServerForm(server_form(project, namespace, name, **overrides), user=owner)


def test_tolerations_are_written_as_kubectl_writes_taints():
    assert parse_tolerations("nvidia.com/gpu:NoSchedule\ndedicated=ai:NoExecute\nspot\n*") == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Equal", "value": "ai", "effect": "NoExecute"},
        {"key": "spot", "operator": "Exists", "effect": ""},
        {"key": "", "operator": "Exists", "effect": ""},
    ]


@pytest.mark.parametrize("line", ["nvidia.com/gpu:Sometimes", "bad key:NoSchedule", "a=b c:NoSchedule"])
def test_a_toleration_that_is_not_one_says_how_to_write_it(line):
    with pytest.raises(ValidationError) as raised:
        parse_tolerations(line)

    assert "Line 1" in str(raised.value)


def test_an_ollama_server_takes_its_kinds_defaults(owner, project):
    form = _form(owner, project)

    assert form.is_valid(), form.errors
    spec = server_spec.release_spec(form.settings())
    objects = {o["kind"]: o for o in render.manifests("llm", "ai", spec, {})}
    container = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert spec["image"] == "ollama/ollama:0.12.10"
    assert container["ports"][0]["containerPort"] == 11434
    assert container["readinessProbe"]["httpGet"] == {"path": "/", "port": 11434}
    assert {"name": "OLLAMA_HOST", "value": "0.0.0.0:11434"} in container["env"]
    assert {"name": "OLLAMA_MODELS", "value": "/root/.ollama/models"} in container["env"]
    assert "args" not in container
    assert objects["PersistentVolumeClaim"]["metadata"]["name"] == "llm-models"
    assert objects["Service"]["spec"]["ports"][0]["port"] == 11434
    assert server_spec.base_url("ollama", "llm", "ai", 11434) == "http://llm.ai.svc.cluster.local:11434"


def test_a_vllm_server_serves_its_one_model_with_the_openai_api_under_v1(owner, project):
    form = _form(owner, project, kind="vllm", models="/models/qwen2.5-7b-instruct", gpus=2)

    assert form.is_valid(), form.errors
    spec = server_spec.release_spec(form.settings())
    assert spec["image"] == "vllm/vllm-openai:v0.11.0"
    assert spec["args"] == [
        "--model",
        "/models/qwen2.5-7b-instruct",
        "--port",
        "8000",
        "--served-model-name",
        "qwen2.5-7b-instruct",
        "--tensor-parallel-size",
        "2",
    ]
    assert spec["readiness"]["path"] == "/health"
    assert spec["extra_resources"] == {"nvidia.com/gpu": 2}
    assert spec["volume"]["mount_path"] == "/models"
    assert {"name": "HF_HOME", "value": "/models"} in spec["env"]
    assert server_spec.base_url("vllm", "llm", "ai", 8000) == "http://llm.ai.svc.cluster.local:8000/v1"


@pytest.mark.parametrize(
    ("overrides", "field", "sentence"),
    [
        ({"kind": "vllm", "models": ""}, "models", "vLLM serves one model"),
        ({"kind": "vllm", "models": "a/b\nc/d"}, "models", "vLLM serves one model"),
        ({"kind": "vllm", "models": "/models/../etc"}, "models", "is not a model vLLM can load"),
        ({"models": "Not An Ollama Name"}, "models", "is not an Ollama model name"),
        ({"gpu_resource": "gpu"}, "gpu_resource", "is not an extended resource name"),
        ({"volume": "existing"}, "volume_claim", "Name the volume claim to mount."),
        ({"volume_size": ""}, "volume_size", "Give the volume a size"),
        ({"mount_path": "models"}, "mount_path", "is not an absolute path"),
        ({"cpu_request": "9", "cpu_limit": "8"}, "cpu_limit", "The limit must be at least the request"),
        ({"namespace": "elsewhere"}, "namespace", "is not a namespace where you may deploy model servers"),
    ],
)
def test_the_form_says_what_to_write_instead(owner, project, overrides, field, sentence):
    form = _form(owner, project, **overrides)

    assert not form.is_valid()
    assert sentence in " ".join(form.errors[field])


def test_a_name_or_a_new_claim_that_is_taken_is_refused(owner, project):
    Release.objects.create(project=project, namespace="ai", name="taken", spec=render.default_spec())
    Endpoint.objects.create(name="llm-b", project=project, base_url="http://10.0.0.1:8000/v1")
    ResourceFactory(cluster=project.cluster, kind="PersistentVolumeClaim", namespace="ai", name="llm-c-models")

    release_taken = _form(owner, project, name="taken")
    endpoint_taken = _form(owner, project, name="llm-b")
    claim_taken = _form(owner, project, name="llm-c")
    claim_mounted = _form(owner, project, name="llm-c", volume="existing", volume_claim="llm-c-models")

    assert "already exists in ai" in " ".join(release_taken.errors["name"])
    assert "already has a model server or endpoint named llm-b" in " ".join(endpoint_taken.errors["name"])
    assert "already exists in ai: mount it as an existing one" in " ".join(claim_taken.errors["volume_claim"])
    assert claim_mounted.is_valid(), claim_mounted.errors


def test_the_preview_shows_the_manifests_the_deploy_would_apply(client, owner, project):
    response = login(client, owner).post(
        reverse("ai:server_preview"), server_form(project, "ai", "llm"), HTTP_HX_REQUEST="true"
    )

    shown = html.unescape(response.content.decode().split("<code>")[1].split("</code>")[0])
    kinds = [o["kind"] for o in yaml.safe_load_all(shown)]
    assert response.status_code == 200
    assert kinds == ["PersistentVolumeClaim", "Deployment", "Service"]


def test_pages_for_anonymous_people_without_ai_view_and_viewers(client, project):
    endpoint = Endpoint.objects.create(name="llm", project=project, base_url="http://10.0.0.1:8000/v1")
    viewer, stranger = UserFactory(), UserFactory()
    grant(viewer, "viewer", project=project)

    anonymous = [
        client.get(reverse("ai:server_list")),
        client.get(reverse("ai:server_new")),
        client.get(reverse("ai:endpoint_new")),
        client.get(reverse("ai:server_detail", args=[endpoint.pk])),
    ]
    login(client, stranger)
    stranger_codes = [
        client.get(reverse("ai:server_list")).status_code,
        client.get(reverse("ai:server_detail", args=[endpoint.pk])).status_code,
        client.post(reverse("ai:server_check", args=[endpoint.pk])).status_code,
    ]
    login(client, viewer)
    listing = client.get(reverse("ai:server_list"))
    viewer_codes = [
        client.get(reverse("ai:server_new")).status_code,
        client.post(reverse("ai:server_new"), server_form(project, "ai", "llm2")).status_code,
        client.post(reverse("ai:server_delete", args=[endpoint.pk])).status_code,
    ]

    assert all(r.status_code == 302 and r["Location"].startswith(reverse("login")) for r in anonymous)
    assert stranger_codes == [404, 404, 404]
    assert listing.status_code == 200
    assert 'data-testid="server-row"' in listing.content.decode()
    assert 'data-testid="server-new"' not in listing.content.decode()
    assert 'data-testid="endpoint-new"' not in listing.content.decode()
    assert viewer_codes == [404, 404, 404]


def test_the_list_asks_the_database_a_bounded_number_of_times(client, owner, project, django_assert_max_num_queries):
    form = _form(owner, project)
    assert form.is_valid(), form.errors
    settings = form.settings()
    for n in range(6):
        release = Release.objects.create(
            project=project, namespace="ai", name=f"llm-{n}", spec=server_spec.release_spec(settings)
        )
        Endpoint.objects.create(name=f"llm-{n}", kind="ollama", project=project, release=release, base_url="x")
        Endpoint.objects.create(name=f"ext-{n}", project=project, base_url="http://10.0.0.1:8000/v1")
    login(client, owner)

    with django_assert_max_num_queries(8):
        response = client.get(reverse("ai:server_list"))

    assert response.content.decode().count('data-testid="server-row"') == 12


def test_the_forms_open_with_the_gpu_defaults_for_a_project_owner(client, owner, project):
    login(client, owner)

    server = client.get(reverse("ai:server_new"))
    endpoint = client.get(reverse("ai:endpoint_new"))

    html = server.content.decode()
    assert server.status_code == 200
    assert "nvidia.com/gpu.present=true" in html
    assert "nvidia.com/gpu:NoSchedule" in html
    assert "ollama/ollama:0.12.10" in html
    assert '<option value="ai">ai</option>' in html
    assert endpoint.status_code == 200
    assert 'type="password" name="api_key"' in endpoint.content.decode()
    assert "The whole platform" not in endpoint.content.decode()  # only an AI administrator may choose it


def test_a_release_removed_from_the_releases_page_takes_its_endpoint_with_it(project):
    release = Release.objects.create(project=project, namespace="ai", name="llm", spec=render.default_spec())
    Endpoint.objects.create(name="llm", kind="ollama", project=project, release=release, base_url="x")
    external = Endpoint.objects.create(name="ext", project=project, base_url="http://10.0.0.1:8000/v1")

    release.delete()

    assert list(Endpoint.objects.all()) == [external]
