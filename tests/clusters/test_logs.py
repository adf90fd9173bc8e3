"""Pod logs against the sandbox: kwok serves a container named "web" from deploy/sandbox/demo/logs/erp-web.log."""

from pathlib import Path
from urllib.parse import parse_qs

import pytest
from kubernetes import client as k8s

from tests.factories import UserFactory
from tests.helpers import (
    bind,
    create_namespace,
    delete_namespace,
    deployment,
    login,
    running_pods,
    unique,
    url,
    wait_for,
)

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]
LOG_FILE = Path(__file__).resolve().parents[2] / "deploy" / "sandbox" / "demo" / "logs" / "erp-web.log"
FILE_LINES = LOG_FILE.read_text().splitlines()


@pytest.fixture
def pod(sandbox, registered_cluster, admin_user):
    inside, outside = unique("h6-logs"), unique("h6-logs-out")
    for namespace in (inside, outside):
        create_namespace(sandbox, namespace)
        k8s.AppsV1Api(sandbox.api_client).create_namespaced_deployment(namespace, deployment("web"))
    developer = UserFactory()
    bind(admin_user, registered_cluster, developer, "developer", [inside])
    inside_pod = wait_for(lambda: running_pods(sandbox, inside, "app=web"))[0].metadata.name
    outside_pod = wait_for(lambda: running_pods(sandbox, outside, "app=web"))[0].metadata.name
    yield {
        "cluster": registered_cluster,
        "namespace": inside,
        "name": inside_pod,
        "outside": (outside, outside_pod),
        "user": developer,
    }
    for namespace in (inside, outside):
        delete_namespace(sandbox, namespace)


def logs_url(pod, view="clusters:pod_logs"):
    return url(view, pod["cluster"], namespace=pod["namespace"], name=pod["name"])


def text_of(line: str) -> str:
    """The text of a CRI log line (`<time> stdout F <text>`)."""
    return line.split(" ", 3)[3]


def test_the_log_page_shows_the_last_lines_of_the_container(client, pod):
    response = login(client, pod["user"]).get(logs_url(pod), {"tail": "100"})
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('data-testid="log-line"') == 100
    assert text_of(FILE_LINES[-1]).replace('"', "&quot;") in body
    assert text_of(FILE_LINES[-101]).replace('"', "&quot;") not in body
    assert '<option value="web" selected>' in body


def test_a_history_restore_gets_the_whole_log_page_and_the_answer_varies_on_hx_request(client, pod):
    restore = {"HTTP_HX_REQUEST": "true", "HTTP_HX_HISTORY_RESTORE_REQUEST": "true"}
    response = login(client, pod["user"]).get(logs_url(pod), {"tail": "100"}, **restore)
    fragment = client.get(logs_url(pod), {"tail": "100"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "<html" in response.content.decode() and "<html" not in fragment.content.decode()
    assert "HX-Request" in response["Vary"] and "HX-Request" in fragment["Vary"]


def test_following_fetches_only_new_lines(client, pod):
    login(client, pod["user"])
    page = client.get(logs_url(pod), {"tail": "100", "follow": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="log-follow"' in page and 'hx-trigger="every 2s"' in page

    # Nothing was written since the last line shown: the poll answers 204 and swaps nothing.
    cursor = page.split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    idle = client.get(cursor, HTTP_HX_REQUEST="true")
    assert idle.status_code == 204

    # From a cursor at line 10 of the file, exactly the lines after it come back, each once.
    stamp = FILE_LINES[9].split(" ", 1)[0]
    newer = client.get(
        logs_url(pod, "clusters:pod_logs_follow"),
        {"container": "web", "after": stamp, "skip": "1"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert newer.count('data-testid="log-line"') == len(FILE_LINES) - 10
    assert text_of(FILE_LINES[9]).replace('"', "&quot;") not in newer
    assert text_of(FILE_LINES[10]).replace('"', "&quot;") in newer
    assert 'hx-swap-oob="true"' in newer
    next_query = parse_qs(newer.split("follow/?", 1)[1].split('"', 1)[0].replace("&amp;", "&"))
    assert next_query["after"] == [FILE_LINES[-1].split(" ", 1)[0]] and next_query["skip"] == ["1"]


def test_download_streams_the_whole_log_as_a_file(client, pod):
    response = login(client, pod["user"]).get(logs_url(pod, "clusters:pod_logs_download"), {"container": "web"})
    content = b"".join(response.streaming_content).decode()
    assert response["Content-Disposition"].startswith(f'attachment; filename="{pod["namespace"]}_{pod["name"]}_web_')
    assert response["Content-Disposition"].endswith('.log"')
    assert content.splitlines() == [text_of(line) for line in FILE_LINES]


def test_the_previous_container_without_one_is_a_sentence(client, pod):
    response = login(client, pod["user"]).get(logs_url(pod), {"previous": "on"}, HTTP_HX_REQUEST="true")
    assert "Kubernetes could not return this log:" in response.content.decode()


def test_downloading_the_previous_container_without_one_is_a_sentence_about_the_log(client, pod):
    response = login(client, pod["user"]).get(
        logs_url(pod, "clusters:pod_logs_download"), {"container": "web", "previous": "1"}
    )

    assert response.status_code < 500
    assert "Content-Disposition" not in response
    html = response.content.decode()
    assert "Kubernetes could not return this log:" in html
    assert "refused the change" not in html


def test_an_unknown_container_is_404(client, pod):
    assert login(client, pod["user"]).get(logs_url(pod), {"container": "sidecar"}).status_code == 404


def test_a_pod_outside_the_project_is_404(client, pod):
    namespace, name = pod["outside"]
    login(client, pod["user"])
    for view in ("clusters:pod_logs", "clusters:pod_logs_follow", "clusters:pod_logs_download"):
        response = client.get(url(view, pod["cluster"], namespace=namespace, name=name), {"container": "web"})
        assert response.status_code == 404
