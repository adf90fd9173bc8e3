"""Malformed kubeconfigs and addresses (issue 11, item 6): each answers a sentence, never a 500.

Numbers, lists and mappings where names belong, missing parts, wrong types, broken URLs: pasted into
the registration form, uploaded, and given to the parser the connection test uses. Nothing is saved.
"""

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from apps.clusters.models import Cluster
from apps.clusters.registry.k8s import InvalidKubeconfig, server_of
from tests.factories import AdminFactory
from tests.helpers import login

pytestmark = pytest.mark.django_db

GOOD = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "u", "user": {"token": "abc"}}],
    "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "ctx",
}


def broken(path: str, value) -> dict:
    """GOOD with the part at ``path`` (dotted, numbers index lists) replaced by ``value``."""
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = data
    for part in parents:
        node = node[part]
    node[last] = value
    return data


SHAPES = {
    "context name is a number": broken("contexts.0.name", 1),
    "current-context is a number": broken("current-context", 1),
    "both are the same number": broken("current-context", 7) | {"contexts": [{"name": 7, "context": {}}]},
    "context is a number": broken("contexts.0.context", 5),
    "context is a list": broken("contexts.0.context", ["c", "u"]),
    "context's cluster is a number": broken("contexts.0.context.cluster", 3),
    "context's cluster is a list": broken("contexts.0.context.cluster", ["c"]),
    "cluster is a number": broken("clusters.0.cluster", 42),
    "cluster is a string": broken("clusters.0.cluster", "https://127.0.0.1:6443"),
    "cluster name is a list": broken("clusters.0.name", ["c"]),
    "cluster name is a mapping": broken("clusters.0.name", {"c": 1}),
    "user is a number": broken("users.0.user", 0),
    "user is a list": broken("users.0.user", [{"token": "abc"}]),
    "token is a number": broken("users.0.user.token", 12345),
    "token is a list": broken("users.0.user.token", ["abc"]),
    "server is a number": broken("clusters.0.cluster.server", 6443),
    "server is a list": broken("clusters.0.cluster.server", ["https://127.0.0.1"]),
    "server is null": broken("clusters.0.cluster.server", None),
    "server with an unclosed IPv6 bracket": broken("clusters.0.cluster.server", "https://[::1"),
    "server with a bad IPv6": broken("clusters.0.cluster.server", "https://[::zz]:6443"),
    "server with a port too large": broken("clusters.0.cluster.server", "https://127.0.0.1:99999"),
    "server with a port that is not a number": broken("clusters.0.cluster.server", "https://127.0.0.1:http"),
    "server with no host": broken("clusters.0.cluster.server", "https://:6443"),
    "server over http": broken("clusters.0.cluster.server", "http://127.0.0.1:6443"),
    "server over file": broken("clusters.0.cluster.server", "file:///etc/passwd"),
    "server with spaces": broken("clusters.0.cluster.server", "https://kube bank:6443"),
    "CA data is a number": broken("clusters.0.cluster", {"server": "https://a:1", "certificate-authority-data": 1}),
    "CA data is not base64": broken("clusters.0.cluster", {"server": "https://a:1", "certificate-authority-data": "%"}),
    "clusters is a mapping": broken("clusters", {"c": {"server": "https://a"}}),
    "clusters is a number": broken("clusters", 1),
    "users is a string": broken("users", "u"),
    "contexts is a mapping": broken("contexts", {"ctx": {}}),
    "contexts holds a number": broken("contexts", [1, 2]),
    "contexts holds a list": broken("contexts", [["ctx"]]),
    "contexts is empty": broken("contexts", []),
}
TEXTS = {
    "a list at the top": "- a\n- b\n",
    "a number at the top": "42\n",
    "a string at the top": "just text\n",
    "empty": "",
    "null": "null\n",
    "tabs": "\t\t\n",
    "JSON": '{"contexts": 1}',
    "unclosed": "contexts: [\n",
    "duplicate keys": "contexts: []\ncontexts: 1\n",
    "not UTF-8 when uploaded": "\udcff",
}
CASES = {name: yaml.safe_dump(data) for name, data in SHAPES.items()} | TEXTS


def registration(**overrides) -> dict:
    data = dict.fromkeys(
        ("region", "labels", "context", "api_server", "token", "ca_pem", "prometheus_url", "kubeconfig_text"), ""
    )
    data |= dict.fromkeys(("alertmanager_url", "logs_url", "jaeger_url"), "")
    data |= {"name": "prod-bj-1", "environment": "production", "source": "kubeconfig", "purpose": "own"}
    return data | overrides


@pytest.fixture(scope="module")
def admin_browser(module_db):
    """One signed-in administrator for the module's cases (tests/conftest.py, module_db)."""
    return login(Client(), AdminFactory(), recent_auth=True)


@pytest.mark.parametrize("how", ["pasted", "uploaded"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_kubeconfig_answers_a_sentence_and_saves_nothing(admin_browser, case, how):
    text = CASES[case]
    if how == "pasted" and case == "not UTF-8 when uploaded":
        text = "clusters: \ufffd\ufffe"  # a browser sends an unencodable character as U+FFFD
    if how == "pasted":
        data = registration(kubeconfig_text=text)
    else:
        raw = text.encode("utf-8", "surrogateescape")
        data = registration(kubeconfig_file=SimpleUploadedFile("config", raw, "application/yaml"))

    response = admin_browser.post(reverse("clusters:registry_add"), data)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="invalid-feedback' in html or "alert-danger" in html or "text-danger" in html, html[-2000:]
    assert not Cluster.objects.exists()


@pytest.mark.parametrize(
    "address", ["https://[::1", "https://[::1]]:6443", "https://[", "https://]:6443", "https://[::1]:-1", "https://%zz"]
)
def test_a_broken_api_address_answers_a_sentence(admin_browser, address):
    data = registration(source="token", kubeconfig_text="", api_server=address, token="abc")

    response = admin_browser.post(reverse("clusters:registry_add"), data)

    assert response.status_code == 200
    assert not Cluster.objects.exists()


@pytest.mark.parametrize("case", list(SHAPES))
def test_the_connection_tests_parser_raises_its_own_error(case):
    text = yaml.safe_dump(SHAPES[case])
    try:
        server = server_of(text)
    except InvalidKubeconfig as exc:
        assert str(exc).startswith("The kubeconfig is not valid")
    else:
        assert isinstance(server, str)
