"""Sentences for servers that are not (quite) Kubernetes, and for refusals that are not changes (issue 11, item 10).

Real listeners on loopback, each with a certificate from a CA the kubeconfig trusts: a web page, a server
without /version, a redirect loop, plain HTTP on the port, a server that answers 413 or drops a large
body, and a 400 to a read. Each failure is named for what it is, never as an untrusted certificate, a
refused change or a library's exception name.
"""

import http.server
import socket
import ssl
import subprocess
import threading

import pytest

from apps.clusters import kube
from apps.clusters.models import Cluster
from apps.clusters.registry.k8s import check_connection
from apps.clusters.registry.services import kubeconfig_from_token


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
            *("-keyout", str(folder / "k.pem"), "-out", str(folder / "c.pem"), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-days", "1"),
        ],
        check=True,
        capture_output=True,
    )
    return folder / "c.pem", folder / "k.pem"


class Answer(http.server.BaseHTTPRequestHandler):
    status, body, headers = 200, b"<html>welcome</html>", {"Content-Type": "text/html"}

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1_000_000 and self.status == 0:  # drops large bodies, as a proxy in front of an apiserver
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.rfile.read(length)
        self.send_response(self.status or 200)
        for name, value in {**self.headers_out(), "Content-Length": str(len(self.body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(self.body)

    def headers_out(self):
        return dict(self.headers_to_send)

    do_GET = do_PUT = do_POST = do_PATCH = _answer

    def log_message(self, *args):
        pass


def handler(status=200, body=b"<html>welcome</html>", **headers):
    return type("H", (Answer,), {"status": status, "body": body, "headers_to_send": headers})


@pytest.fixture
def listener(certificate):
    servers = []

    def start(handler_class, tls=True):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*map(str, certificate))
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        address = f"https://127.0.0.1:{server.server_address[1]}"
        return kubeconfig_from_token(server=address, token="t", ca_pem=certificate[0].read_text())

    yield start
    for server in servers:
        server.shutdown()


CASES = {
    "a web page": (handler(), True, "answered, but not like a Kubernetes API server (the answer is not JSON)"),
    "no /version": (handler(404, b""), True, "answered, but not like a Kubernetes API server (it has no /version)"),
    "a redirect loop": (handler(302, b"", Location="/version"), True, "answered with redirects instead of"),
    "JSON but not Kubernetes": (
        handler(200, b'{"hello": "world"}', **{"Content-Type": "application/json"}),
        True,
        "/version does not name a Kubernetes version",
    ),
    "plain HTTP on the port": (handler(), False, "does not speak TLS on that port"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_server_that_is_not_kubernetes_is_named_for_what_it_is(listener, case):
    handler_class, tls, sentence = CASES[case]

    report = check_connection(listener(handler_class, tls), timeout=5)

    assert not report.ok
    assert sentence in report.message
    assert "certificate is not trusted" not in report.message
    assert "Error" not in report.message  # no exception class names (MaxRetryError, SSLError)


def client_for(kubeconfig: str):
    cluster = Cluster(name="edge", api_server="https://127.0.0.1")
    cluster.set_kubeconfig(kubeconfig)
    return kube.client(cluster, connect_timeout=5, read_timeout=10)


BIG = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"k": "x" * 3_500_000}}


def test_a_413_to_a_write_says_the_object_is_too_large(listener):
    with (
        client_for(listener(handler(413, b'{"message": "Request entity too large: limit is 3145728"}'))) as k,
        pytest.raises(kube.Invalid) as refused,
    ):
        k.send("PUT", "/api/v1/namespaces/a/configmaps/big", body=BIG)

    assert "is too large for cluster edge to accept" in str(refused.value)


def test_a_dropped_connection_under_a_large_body_says_the_object_is_too_large(listener):
    with client_for(listener(handler(0))) as k, pytest.raises(kube.KubeError) as refused:
        k.send("PUT", "/api/v1/namespaces/a/configmaps/big", body=BIG)

    assert refused.value.reason == "too_large"
    assert "too large" in str(refused.value)
    assert "certificate" not in str(refused.value)


def test_a_400_to_a_read_is_not_called_a_refused_change(listener):
    body = b'{"message": "previous terminated container \\"app\\" in pod \\"p\\" not found"}'
    with (
        client_for(listener(handler(400, body, **{"Content-Type": "application/json"}))) as k,
        pytest.raises(kube.Invalid) as refused,
    ):
        k.send("GET", "/api/v1/namespaces/a/pods/p/log")

    assert "could not answer this request" in str(refused.value)
    assert "refused the change" not in str(refused.value)
    assert "previous terminated container" in str(refused.value)
