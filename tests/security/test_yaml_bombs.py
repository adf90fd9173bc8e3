"""YAML and JSON bombs (issue 11, item 1): refused with a sentence before anything is built or sent.

Every bomb of tests/security/bombs.py is pasted into the object editor, and the kubeconfig bombs are
pasted and uploaded at cluster registration. The answer is a sentence, no cluster row, and no request
to the cluster (its address points nowhere: a request that left would answer "cannot reach" instead).
The one door, apps/core/untrusted.py, is also checked directly, and no other module parses YAML.
"""

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from apps.clusters.models import Cluster
from apps.core import untrusted
from apps.core.models import AuditEvent
from tests.factories import AdminFactory
from tests.helpers import login
from tests.security.bombs import JSON_BOMBS, YAML_BOMBS, laughs

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
REFUSED = re.compile(
    r"The YAML|The JSON|The text (is|holds)|nested|aliases|values; split|contains itself|"
    r"The kubeconfig (cannot be read|is not valid)|larger than|Null characters are not allowed"
)
UNREACHED = ("cannot reach", "could not connect", "refused the connection", "unreachable")


@pytest.fixture(scope="module")
def admin_browser(module_db):
    """One signed-in administrator for the module's cases (tests/conftest.py, module_db)."""
    return login(Client(), AdminFactory(), recent_auth=True)


def editor(cluster) -> str:
    kwargs = {"cluster_id": cluster.pk, "kind": "configmap", "namespace": "payments", "name": "settings"}
    return reverse("clusters:resource_yaml_edit", kwargs=kwargs)


@pytest.mark.parametrize("confirm", ["", "1"], ids=["preview", "apply"])
@pytest.mark.parametrize(("name", "text"), YAML_BOMBS + JSON_BOMBS, ids=[n for n, _t in YAML_BOMBS + JSON_BOMBS])
def test_the_editor_refuses_every_bomb_with_a_sentence_before_any_request(admin_browser, nowhere, name, text, confirm):
    before = AuditEvent.objects.count()

    response = admin_browser.post(editor(nowhere), {"text": text, "resource_version": "1", "confirm": confirm})

    html = response.content.decode()
    assert response.status_code in (200, 413), response.status_code
    assert REFUSED.search(html), html[-1500:]
    assert not any(sentence in html for sentence in UNREACHED)
    assert AuditEvent.objects.count() == before


KUBECONFIG_BOMBS = [(n, t) for n, t in YAML_BOMBS if len(t) < 200_000] + [
    ("kubeconfig-laughs", "apiVersion: v1\nkind: Config\n" + laughs(8).replace("a0:", "clusters: []\na0:", 1)),
    (
        "kubeconfig-merge-bomb",
        "contexts: &c [{name: x, context: {cluster: x, user: x}}]\n"
        + "".join(f"k{n}: &k{n} [" + ",".join([f"*k{n - 1}" if n else "*c"] * 10) + "]\n" for n in range(8)),
    ),
]


def registration(**overrides) -> dict:
    data = dict.fromkeys(
        ("region", "labels", "context", "api_server", "token", "ca_pem", "prometheus_url", "kubeconfig_text"), ""
    )
    data |= dict.fromkeys(("alertmanager_url", "logs_url", "jaeger_url"), "")
    data |= {"name": "prod-bj-1", "environment": "production", "source": "kubeconfig", "purpose": "own"}
    return data | overrides


@pytest.mark.parametrize("how", ["pasted", "uploaded"])
@pytest.mark.parametrize(("name", "text"), KUBECONFIG_BOMBS, ids=[n for n, _t in KUBECONFIG_BOMBS])
def test_registration_refuses_every_kubeconfig_bomb_with_a_sentence(admin_browser, name, text, how):
    if how == "pasted":
        data = registration(kubeconfig_text=text)
    else:
        data = registration(kubeconfig_file=SimpleUploadedFile("config", text.encode(), "application/yaml"))

    response = admin_browser.post(reverse("clusters:registry_add"), data)

    assert response.status_code == 200
    html = response.content.decode()
    assert REFUSED.search(html) or "This is not a kubeconfig" in html, html[-1500:]
    assert not Cluster.objects.exists()


@pytest.mark.parametrize(("name", "text"), YAML_BOMBS, ids=[n for n, _t in YAML_BOMBS])
def test_the_door_refuses_every_yaml_bomb(name, text):
    with pytest.raises(untrusted.UntrustedInput):
        untrusted.load_yaml(text)


@pytest.mark.parametrize(("name", "text"), JSON_BOMBS, ids=[n for n, _t in JSON_BOMBS])
def test_the_door_refuses_every_json_bomb(name, text):
    with pytest.raises(untrusted.UntrustedInput):
        untrusted.load_json(text)


def test_ordinary_documents_with_a_few_aliases_still_load():
    """The control: the limits refuse bombs, not the YAML people write (anchors for shared settings)."""
    text = "base: &base {cpu: 100m, memory: 128Mi}\nweb: {<<: *base, replicas: 3}\nworker: *base\n"

    assert untrusted.load_yaml(text)["web"] == {"cpu": "100m", "memory": "128Mi", "replicas": 3}
    assert untrusted.load_json('{"a": [1, 2, {"b": null}]}') == {"a": [1, 2, {"b": None}]}


def test_no_module_parses_yaml_or_json_from_outside_except_through_the_door():
    """yaml.safe_load / yaml.load anywhere in apps/ or kubemate/ would be a door around the bounds."""
    found = []
    for path in [*(REPO / "apps").rglob("*.py"), *(REPO / "kubemate").rglob("*.py")]:
        if path.name == "untrusted.py" or "migrations" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.search(r"yaml\.(safe_)?load|yaml\.(safe_)?load_all|yaml\.unsafe_load|yaml\.full_load", line):
                found.append(f"{path.relative_to(REPO)}:{number}")

    assert found == []
