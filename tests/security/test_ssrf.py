"""Server-side request forgery: every spelling of a cloud metadata or link-local address is refused.

The addresses a user types (a kubeconfig's server, an API address, the Prometheus, Alertmanager, log and
trace URLs) are where Kubemate's own process connects. A metadata service answers such a connection with
the host's credentials, so each spelling a resolver or a URL parser may turn into one is refused before
anything connects, with a sentence, and nothing is saved.
"""

import datetime
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import Client
from django.urls import reverse

from apps.clusters.models import Cluster
from apps.clusters.registry.services import address_problem
from apps.core.models import AuditEvent
from tests.factories import UserFactory
from tests.helpers import grant, login

pytestmark = pytest.mark.django_db

# 169.254.169.254 (AWS, Azure, GCP, OpenStack, Huawei) in the spellings inet_aton, URL parsers and IPv6 allow.
METADATA_SPELLINGS = [
    "169.254.169.254",
    "169.254.169.254.",
    "0xa9fea9fe",
    "0xA9FEA9FE",
    "0xa9.0xfe.0xa9.0xfe",
    "0x0a9.0xfe.0xa9.0xfe",
    "0251.0376.0251.0376",
    "0251.254.169.254",
    "00251.00376.00251.00376",
    "2852039166",
    "169.254.43518",
    "169.16689662",
    "kubemate.example@169.254.169.254",
    "[::ffff:169.254.169.254]",
    "[::ffff:a9fe:a9fe]",
    "[0:0:0:0:0:ffff:a9fe:a9fe]",
    "[0000:0000:0000:0000:0000:ffff:169.254.169.254]",
    "[::a9fe:a9fe]",
    "[2002:a9fe:a9fe::1]",
    "[64:ff9b::a9fe:a9fe]",
    "[64:ff9b::169.254.169.254]",
    "[2001:0:4136:e378:8000:63bf:5601:5601]",  # Teredo, client 169.254.169.254 (obfuscated bits)
    "%31%36%39.254.169.254",
    "169.254.169.254%2f",
]
OTHER_TARGETS = [
    "169.254.170.2",  # AWS ECS task credentials
    "169.254.0.23",  # Tencent Cloud
    "169.254.1.1",
    "169.254.255.255",
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud
    "[fd00:ec2::254]",  # AWS over IPv6
    "[fe80::1]",
    "[FE80::A9FE:A9FE]",
    "[fe80::1%25eth0]",
    "[febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff]",
    "metadata.google.internal",
    "METADATA.GOOGLE.INTERNAL.",
    "metadata.goog",
    "metadata.tencentyun.com",
    "instance-data.ec2.internal",
]
HOSTS = METADATA_SPELLINGS + OTHER_TARGETS
# Every refusal is one of these sentences (HTML-escaped as the page shows them).
REFUSALS = (
    "is a link-local or cloud metadata address",
    "is a cloud metadata service",
    "is not a host name or IP address Kubemate can check",
    "The address has no valid host name or IP address.",
    "Do not put a user name or password in the address.",
)
KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://HOST:6443"}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
"""


def _ca_pem() -> str:
    """A real self-signed CA certificate: the token path needs one before it looks at the address."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ssrf-test-ca")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


CA_PEM = _ca_pem()


def form(**overrides) -> dict:
    data = {
        "name": "prod-bj-1",
        "environment": "production",
        "region": "",
        "labels": "",
        "source": "kubeconfig",
        "purpose": "own",
        "kubeconfig_text": KUBECONFIG.replace("HOST", "127.0.0.1"),
        "context": "",
        "api_server": "",
        "token": "",
        "ca_pem": "",
        "prometheus_url": "",
        "alertmanager_url": "",
        "logs_url": "",
        "jaeger_url": "",
    }
    data.update(overrides)
    return data


FIELDS = {
    "kubeconfig server": lambda host: {"kubeconfig_text": KUBECONFIG.replace("HOST", host)},
    "api address": lambda host: {
        "source": "token",
        "kubeconfig_text": "",
        "api_server": f"https://{host}:6443",
        "token": "abc",
        "ca_pem": CA_PEM,
    },
    "prometheus": lambda host: {"prometheus_url": f"http://{host}/latest/meta-data/"},
    "alertmanager": lambda host: {"alertmanager_url": f"https://{host}:9093"},
    "traces": lambda host: {"jaeger_url": f"http://{host}:80"},
}


@pytest.fixture(scope="module")
def manager_client(module_db):
    """One platform administrator for the module's 200 registration cases (tests/conftest.py, module_db)."""
    manager = UserFactory(username="cluster-manager")
    grant(manager, "platform-admin")
    return login(Client(), manager, recent_auth=True)


@pytest.mark.parametrize("host", HOSTS)
def test_the_address_check_refuses_every_spelling(host):
    problem = address_problem(f"https://{host}:6443/", allow_link_local=False)

    assert problem is not None
    assert any(refusal in problem for refusal in REFUSALS), problem


@pytest.mark.parametrize("field", list(FIELDS))
@pytest.mark.parametrize("host", HOSTS)
def test_registering_with_a_metadata_address_is_refused_with_a_sentence_and_saves_nothing(manager_client, host, field):
    response = manager_client.post(reverse("clusters:registry_add"), form(**FIELDS[field](host)))

    assert response.status_code == 200
    html = response.content.decode()
    assert any(refusal in html for refusal in REFUSALS), re.findall(r"invalid-feedback[^>]*>([^<]*)", html)
    assert not Cluster.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="clusters.").exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "10.20.30.40", "kube.bank.example", "[2001:db8::1]"])
def test_ordinary_addresses_are_not_refused_as_metadata(host):
    assert address_problem(f"https://{host}:6443/", allow_link_local=False) is None
