"""The registry's connection test against real things: the sandbox, real DNS, real TLS, real sockets.

Each failure reason is produced by the real cause (a *.invalid host, a CA from
another authority, a garbage token, a ServiceAccount without permissions, a
server that never answers, a fake of an old apiserver's /version), never by a mock.
"""

import json
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from apps.clusters.registry.k8s import Purpose, check_connection, parse_version
from apps.clusters.registry.services import (
    Credentials,
    address_problem,
    connect,
    kubeconfig_for_context,
    kubeconfig_from_token,
)

GARBAGE_TOKEN = "eyJhbGciOiJSUzI1NiJ9.garbage.signature"
# What kube-apiserver v1.20.0 answers on GET /version, field for field.
OLD_VERSION_ANSWER = {
    "major": "1",
    "minor": "20",
    "gitVersion": "v1.20.0",
    "gitCommit": "af46c47ce925f4c4ad5cc8d1fca46c7b77d13b38",
    "gitTreeState": "clean",
    "buildDate": "2020-12-08T17:51:19Z",
    "goVersion": "go1.15.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def openssl_self_signed(folder: Path, common_name: str, *extra: str) -> tuple[Path, Path]:
    """A fresh key and self-signed certificate made by the openssl command line, in ``folder``."""
    key, cert = folder / f"{common_name}.key", folder / f"{common_name}.crt"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key)]
    subprocess.run(
        [*command, "-out", str(cert), "-subj", f"/CN={common_name}", *extra],
        check=True,
        capture_output=True,
    )
    return key, cert


@pytest.fixture
def other_ca_pem(tmp_path):
    """The certificate of a certificate authority that did not sign the sandbox's certificate."""
    _key, cert = openssl_self_signed(tmp_path, "another-ca", "-addext", "basicConstraints=critical,CA:TRUE")
    return cert.read_text()


@pytest.fixture
def silent_server():
    """A local TCP server that accepts connections and never answers, not even the TLS handshake."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


class OldApiServerHandler(BaseHTTPRequestHandler):
    """A fake of an old kube-apiserver (Kubernetes v1.20.0), not a real one.

    It answers ``GET /version`` exactly as kube-apiserver v1.20.0 does (the same
    JSON object, indented, ``application/json``) and any other path with the
    404 Status object the real server sends. Only the registry's version check
    is meant to talk to it.
    """

    def do_GET(self):
        if self.path == "/version":
            status, body = 200, OLD_VERSION_ANSWER
        else:
            status, body = (
                404,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": "the server could not find the requested resource",
                    "reason": "NotFound",
                    "details": {},
                    "code": 404,
                },
            )
        data = json.dumps(body, indent=2).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def old_apiserver(tmp_path):
    """The fake old apiserver over HTTPS with a self-signed certificate for 127.0.0.1: (url, CA PEM)."""
    key, cert = openssl_self_signed(tmp_path, "old-apiserver", "-addext", "subjectAltName=IP:127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), OldApiServerHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert.read_text()
    server.shutdown()
    server.server_close()
    thread.join()


def service_account_token(sandbox, name: str, *, node_reader: bool = False) -> str:
    """A token of a fresh ServiceAccount in the sandbox; with ``node_reader`` it may list nodes and nothing else."""
    core = client.CoreV1Api(sandbox.api_client)
    rbac = client.RbacAuthorizationV1Api(sandbox.api_client)
    try:
        core.create_namespaced_service_account("default", client.V1ServiceAccount(metadata={"name": name}))
    except ApiException as exc:
        assert exc.status == 409
    if node_reader:
        role = {"metadata": {"name": name}, "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]}
        binding = {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "default"}],
        }
        for create, body in ((rbac.create_cluster_role, role), (rbac.create_cluster_role_binding, binding)):
            try:
                create(body)
            except ApiException as exc:
                assert exc.status == 409
        time.sleep(0.5)  # the RBAC authorizer's cache picks up the new binding
    return sandbox.service_account_token("default", name)


@pytest.mark.sandbox
@pytest.mark.django_db
def test_kubemates_own_identity_connects_and_reports_version_and_node_count(sandbox, registered_cluster):
    version = client.VersionApi(sandbox.api_client).get_code().git_version
    nodes = len(client.CoreV1Api(sandbox.api_client).list_node().items)

    report = check_connection(registered_cluster.kubeconfig(), purpose=Purpose.OWN)

    assert report.ok, report.message
    assert (report.reason, report.version, report.nodes) == ("ok", version, nodes)
    assert report.message == f"Connected to Kubernetes {version} with {nodes} nodes."


@pytest.mark.sandbox
@pytest.mark.django_db
def test_kubemates_own_identity_is_not_enough_to_install_an_identity(registered_cluster):
    report = check_connection(registered_cluster.kubeconfig(), purpose=Purpose.ADMIN)

    assert report.reason == "forbidden"
    assert "may not create namespaces, which Kubemate needs" in report.message


def test_a_host_that_does_not_resolve_is_named_as_dns(other_ca_pem):
    kubeconfig = kubeconfig_from_token(server="https://kube.registry-test.invalid:6443", token="t", ca_pem=other_ca_pem)

    report = check_connection(kubeconfig, timeout=5)

    assert report.reason == "dns"
    assert report.message == (
        "The host name of https://kube.registry-test.invalid:6443 does not resolve (DNS): check the address."
    )


@pytest.mark.sandbox
def test_a_ca_from_another_authority_is_named_as_a_tls_mismatch(sandbox, other_ca_pem):
    kubeconfig = kubeconfig_from_token(server=sandbox.server, token=GARBAGE_TOKEN, ca_pem=other_ca_pem)

    report = check_connection(kubeconfig)

    assert report.reason == "tls"
    assert "is not trusted with the CA certificate given" in report.message


@pytest.mark.sandbox
def test_a_garbage_token_is_named_as_rejected_credentials(sandbox, sandbox_ca_pem):
    kubeconfig = kubeconfig_from_token(server=sandbox.server, token=GARBAGE_TOKEN, ca_pem=sandbox_ca_pem)

    report = check_connection(kubeconfig)

    assert report.reason == "unauthorized"
    assert report.message.startswith(f"The cluster at {sandbox.server} rejected the credentials (401)")


@pytest.mark.sandbox
def test_a_service_account_without_permissions_is_named_as_forbidden(sandbox, sandbox_ca_pem):
    token = service_account_token(sandbox, "registry-test-nobody")
    kubeconfig = kubeconfig_from_token(server=sandbox.server, token=token, ca_pem=sandbox_ca_pem)

    report = check_connection(kubeconfig)

    assert report.reason == "forbidden"
    assert "The credentials are valid, but they may not list nodes" in report.message


@pytest.mark.sandbox
def test_a_service_account_that_may_only_list_nodes_is_told_which_permission_is_missing(sandbox, sandbox_ca_pem):
    token = service_account_token(sandbox, "registry-test-node-reader", node_reader=True)
    kubeconfig = kubeconfig_from_token(server=sandbox.server, token=token, ca_pem=sandbox_ca_pem)

    report = check_connection(kubeconfig)

    assert report.reason == "forbidden"
    assert "may not list pods in every namespace" in report.message


def test_a_server_that_never_answers_is_named_as_a_timeout(silent_server, other_ca_pem):
    kubeconfig = kubeconfig_from_token(server=f"https://127.0.0.1:{silent_server}", token="t", ca_pem=other_ca_pem)

    started = time.monotonic()
    report = check_connection(kubeconfig, timeout=0.5)

    assert time.monotonic() - started < 5
    assert report.reason == "timeout"
    assert report.message == f"https://127.0.0.1:{silent_server} did not answer within 0.5 seconds."


def test_an_old_kubernetes_is_named_with_its_version_and_the_minimum(old_apiserver):
    url, ca_pem = old_apiserver
    kubeconfig = kubeconfig_from_token(server=url, token="t", ca_pem=ca_pem)

    report = check_connection(kubeconfig)

    assert report.reason == "too_old"
    assert report.message == (
        "The cluster runs Kubernetes v1.20.0; Kubemate needs 1.28 or newer. Upgrade the cluster first."
    )


def test_a_closed_port_is_named_as_refused(other_ca_pem):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = kubeconfig_from_token(server=f"https://127.0.0.1:{port}", token="t", ca_pem=other_ca_pem)

    report = check_connection(kubeconfig)

    assert report.reason == "refused"


def test_managed_offerings_minor_versions_with_a_plus_are_read():
    assert parse_version({"major": "1", "minor": "28+"}) == (1, 28)


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/",
        "https://[fe80::1]:6443",
        "https://100.100.100.200",
        "https://[fd00:ec2::254]",
        "https://[::ffff:169.254.169.254]",
        # A name the resolver turns into 169.254.169.254 (the classic decimal spelling).
        "https://2852039166:6443",
    ],
)
def test_link_local_and_metadata_addresses_are_refused_unless_allowed(url):
    assert "is a link-local or cloud metadata address" in address_problem(url, allow_link_local=False)
    assert address_problem(url, allow_link_local=True) is None


@pytest.mark.parametrize("url", ["https://127.0.0.1:6443", "https://localhost:6443", "https://[::1]:6443"])
def test_loopback_stays_allowed(url):
    assert address_problem(url, allow_link_local=False) is None


def test_the_connection_test_refuses_a_metadata_address_before_connecting(other_ca_pem):
    kubeconfig = kubeconfig_from_token(server="https://169.254.169.254", token="t", ca_pem=other_ca_pem)

    report = connect(Credentials(kubeconfig), allow_link_local=False)

    assert report.reason == "address"
    assert "169.254.169.254 is a link-local or cloud metadata address" in report.message


@pytest.mark.sandbox
def test_a_kubeconfig_is_reduced_to_the_chosen_context(sandbox):
    minimal = kubeconfig_for_context(sandbox.kubeconfig.read_text())

    report = check_connection(minimal)

    assert report.ok, report.message
    assert "current-context: kubemate" in minimal
