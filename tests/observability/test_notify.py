"""Notifications: receivers saved in Kubemate, written to the sandbox as a Secret and an AlertmanagerConfig per
namespace as the person, audited, secrets nowhere in clear; the alertmanager.yml for a plain Alertmanager checked
by Debian's amtool and run by a real Alertmanager that mails the test notification; the robot relay."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from kubernetes import client as k8s

from apps.accounts.models import Project
from apps.core import crypto
from apps.core.models import AuditEvent
from apps.observability.models import Receiver
from apps.observability.notify import relay, render, robots, services
from tests.factories import UserFactory
from tests.helpers import bind, create_namespace, delete_namespace, login, unique
from tests.plugins.alertmanager import Alertmanager, Mailbox, Webhook
from tests.plugins.served import free_port

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

GROUP, VERSION, PLURAL = "monitoring.coreos.com", "v1alpha1", "alertmanagerconfigs"
PASSWORD = "Sm7p-pass-Word-91"


class FakeRobot:
    """Stands in for DingTalk's and WeCom's group robot APIs (which cannot run here), as they are documented: a
    JSON markdown message posted to the webhook URL (DingTalk's with ``timestamp`` and ``sign`` when signing is
    on), answered with ``{"errcode": 0, "errmsg": "ok"}``. Keeps each post's path, query and body."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.answer = b'{"errcode":0,"errmsg":"ok"}'
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                robot.posts.append(
                    {"path": parts.path, "query": parse_qs(parts.query), "body": json.loads(self.rfile.read(length))}
                )
                answer = robot.answer
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def robot():
    fake = FakeRobot()
    yield fake
    fake.server.shutdown()


@pytest.fixture
def crd_api(sandbox):
    return k8s.CustomObjectsApi(sandbox.api_client)


@pytest.fixture
def core_api(sandbox):
    return k8s.CoreV1Api(sandbox.api_client)


@pytest.fixture
def teams(sandbox, registered_cluster, admin_user):
    """Two projects: the first with two namespaces and its owner, the second with one namespace and its owner."""
    made = []
    for count in (2, 1):
        namespaces = [unique("notify") for _ in range(count)]
        for namespace in namespaces:
            create_namespace(sandbox, namespace)
        owner = UserFactory()
        bind(admin_user, registered_cluster, owner, "project-owner", namespaces)
        project = Project.objects.get(namespaces__contains=namespaces)
        made.append({"namespaces": namespaces, "user": owner, "project": project, "cluster": registered_cluster})
    yield made
    for team in made:
        for namespace in team["namespaces"]:
            delete_namespace(sandbox, namespace)


def email_form(**overrides) -> dict:
    data = {
        "name": "ops-mail",
        "kind": "email",
        "severities": ["critical", "warning"],
        "send_resolved": "on",
        "to": "ops@bank.example, dba@bank.example",
        "sender": "alertmanager@bank.example",
        "smarthost": "smtp.bank.example:587",
        "username": "alertmanager",
        "password": PASSWORD,
        "require_tls": "on",
    }
    return data | overrides


def read(crd_api, namespace: str, name: str) -> dict | None:
    try:
        return crd_api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except k8s.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_an_owner_saves_an_email_receiver_written_per_namespace_with_the_password_in_a_secret_only(
    client, teams, crd_api, core_api
):
    team = teams[0]
    login(client, team["user"])

    response = client.post(reverse("observability:receiver_create", args=[team["project"].pk]), email_form())

    assert response.status_code == 302
    row = Receiver.objects.get(name="ops-mail")
    name = row.object_name
    for namespace in team["namespaces"]:
        config = read(crd_api, namespace, name)
        mail = config["spec"]["receivers"][0]["emailConfigs"][0]
        assert config["spec"]["route"]["matchers"] == [
            {"name": "severity", "value": "critical|warning", "matchType": "=~"}
        ]
        assert mail["to"] == "ops@bank.example, dba@bank.example" and mail["smarthost"] == "smtp.bank.example:587"
        assert mail["authPassword"] == {"name": name, "key": "password"}
        assert PASSWORD not in json.dumps(config)
        secret = core_api.read_namespaced_secret(name, namespace)
        assert base64.b64decode(secret.data["password"]).decode() == PASSWORD
    assert PASSWORD not in json.dumps(list(Receiver.objects.values()), default=str)
    assert services.secrets_of(row)["password"] == PASSWORD
    event = AuditEvent.objects.get(action="observability.receiver.create")
    assert (event.actor_id, event.result, event.object_name) == (team["user"].pk, "success", name)
    assert PASSWORD not in json.dumps(list(AuditEvent.objects.values()), default=str)
    pages = [
        client.get(reverse("observability:receiver_list", args=[team["project"].pk])),
        client.get(reverse("observability:receiver_edit", args=[team["project"].pk, row.pk])),
    ]
    assert all(p.status_code == 200 and PASSWORD not in p.content.decode() for p in pages)
    assert "ops@bank.example" in pages[0].content.decode()
    # Changed with the password left empty: the stored one is kept.
    changed = client.post(
        reverse("observability:receiver_edit", args=[team["project"].pk, row.pk]),
        email_form(password="", severities=["critical"]),
    )
    assert changed.status_code == 302
    assert services.secrets_of(Receiver.objects.get(pk=row.pk))["password"] == PASSWORD
    assert read(crd_api, team["namespaces"][0], name)["spec"]["route"]["matchers"][0]["value"] == "critical"


def _pairs():
    project = Project(slug="pay", name="Pay", namespaces=["payments", "lending"])
    mail = Receiver(
        pk=1,
        project=project,
        name="mail",
        kind="email",
        severities=["critical"],
        options={
            "to": ["ops@bank.example"],
            "from": "am@bank.example",
            "smarthost": "127.0.0.1:2525",
            "username": "am",
            "require_tls": False,
        },
    )
    ding = Receiver(pk=2, project=project, name="ding", kind="dingtalk", namespaces=["payments"])
    hook = Receiver(pk=3, project=project, name="hook", kind="webhook", options={"url": "http://hooks.bank.example/a"})
    return [
        (mail, {"password": "pw-secret-1"}),
        (ding, {"url": "https://oapi.dingtalk.com/robot/send?access_token=tok-2", "relay_token": "relay-3"}),
        (hook, {"token": "bearer-4"}),
    ]


def test_the_rendered_alertmanager_yml_passes_amtool_and_holds_no_secret():
    pairs = _pairs()

    text = render.alertmanager_yml(pairs, "https://kubemate.bank.example", services.SECRETS_FOLDER)
    files = render.secret_files(pairs)
    broken = services.check(text.replace("- receiver: kubemate-pay-mail", "- receiver: nobody", 1), files)

    assert services.check(text, files) == []
    assert all(s not in text for s in ("pw-secret-1", "tok-2", "relay-3", "bearer-4"))
    assert 'namespace=~"payments|lending"' in text and 'severity=~"critical"' in text
    assert "https://kubemate.bank.example/observability/notify/relay/2/" in text
    assert sorted(files) == ["kubemate-pay-ding/token", "kubemate-pay-hook/token", "kubemate-pay-mail/password"]
    assert any("nobody" in problem for problem in broken)


def test_the_test_notification_reaches_the_mailbox_through_a_real_alertmanager_running_kubemates_config(client, teams):
    team = teams[0]
    login(client, team["user"])
    mailbox, webhook = Mailbox(), Webhook()
    folder = Path(tempfile.mkdtemp(prefix="kubemate-notify-am-"))
    form = email_form(smarthost=f"127.0.0.1:{mailbox.port}", require_tls="", severities=["warning"])
    assert client.post(reverse("observability:receiver_create", args=[team["project"].pk]), form).status_code == 302
    cluster = team["cluster"]
    text = services.plain_config(cluster, folder=str(folder / "secrets")).replace("group_wait: 30s", "group_wait: 1s")
    for relative, value in render.secret_files(services.receivers_of(cluster)).items():
        (folder / "secrets" / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / "secrets" / relative).write_text(value)
    (folder / "alertmanager.yml").write_text(text)
    port = free_port()
    server = Alertmanager(url=f"http://127.0.0.1:{port}", port=port, folder=folder, mailbox=mailbox, webhook=webhook)
    server.start()
    try:
        cluster.alertmanager_url = server.url
        cluster.save(update_fields=["alertmanager_url"])
        row = Receiver.objects.get(name="ops-mail")

        response = client.post(reverse("observability:receiver_test", args=[team["project"].pk, row.pk]), follow=True)

        assert "A test alert was handed to Alertmanager" in response.content.decode()
        message = mailbox.wait_for(lambda m: "KubemateTestNotification" in Mailbox.text(m), timeout=60)
        assert "ops@bank.example" in message["To"]
        assert row.watched_namespaces[0] in Mailbox.text(message)  # the test alert's namespace: the first watched
        event = AuditEvent.objects.get(action="observability.receiver.test")
        assert event.result == "success" and event.detail["labels"]["kubemate_receiver"] == "ops-mail"
    finally:
        server.stop()
        mailbox.stop()
        webhook.server.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_dingtalk_robot_gets_a_signed_markdown_message_through_the_relay(client, teams, crd_api, core_api, robot):
    team = teams[0]
    login(client, team["user"])
    form = {
        "name": "ops-ding",
        "kind": "dingtalk",
        "severities": ["critical"],
        "send_resolved": "on",
        "robot_url": f"{robot.url}/robot/send?access_token=ding-tok-77",
        "sign_secret": "SEC-sign-88",
    }
    assert client.post(reverse("observability:receiver_create", args=[team["project"].pk]), form).status_code == 302
    row = Receiver.objects.get(name="ops-ding")
    namespace = team["namespaces"][0]
    config = read(crd_api, namespace, row.object_name)
    hook = config["spec"]["receivers"][0]["webhookConfigs"][0]
    relay = reverse("observability:notify_relay", args=[row.pk])
    assert hook["url"].endswith(relay)
    assert hook["httpConfig"]["authorization"]["credentials"] == {"name": row.object_name, "key": "token"}
    assert "ding-tok-77" not in json.dumps(config) and "SEC-sign-88" not in json.dumps(config)
    token = base64.b64decode(core_api.read_namespaced_secret(row.object_name, namespace).data["token"]).decode()
    body = {
        "version": "4",
        "status": "firing",
        "receiver": row.object_name,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "PaymentsDown", "severity": "critical", "namespace": namespace},
                "annotations": {"summary": "Payments answers no request."},
                "startsAt": "2026-12-04T08:00:00Z",
            }
        ],
    }
    outside = Client()  # Alertmanager has no session

    wrong = outside.post(relay, body, content_type="application/json", HTTP_AUTHORIZATION="Bearer not-the-token")
    large = outside.post(
        relay, b" " * (1024 * 1024 + 1), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    garbage = outside.post(relay, b"{not json", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    other = outside.post(relay, {"version": "3"}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert [r.status_code for r in (wrong, large, garbage, other)] == [401, 413, 400, 400]
    assert robot.posts == []

    sent = outside.post(relay, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert sent.status_code == 200 and sent.json()["status"] == "sent"
    [post] = robot.posts
    assert post["path"] == "/robot/send" and post["query"]["access_token"] == ["ding-tok-77"]
    timestamp = int(post["query"]["timestamp"][0])
    assert robots.dingtalk_sign("SEC-sign-88", timestamp) == quote(post["query"]["sign"][0], safe="")
    assert post["body"]["msgtype"] == "markdown"
    text = post["body"]["markdown"]["text"]
    assert "PaymentsDown" in text and namespace in text and "Payments answers no request." in text
    assert "/observability/alerts/" in text


def test_an_owner_cannot_notify_for_another_projects_namespace_and_a_viewer_gets_404(
    client, teams, crd_api, sandbox, registered_cluster, admin_user
):
    mine, theirs = teams
    login(client, mine["user"])

    elsewhere = client.post(
        reverse("observability:receiver_create", args=[mine["project"].pk]),
        email_form(namespaces=[theirs["namespaces"][0]]),
    )
    their_project = client.post(reverse("observability:receiver_create", args=[theirs["project"].pk]), email_form())

    assert elsewhere.status_code == 200 and "Select a valid choice" in elsewhere.content.decode()
    assert their_project.status_code == 404
    assert not Receiver.objects.exists()
    assert read(crd_api, theirs["namespaces"][0], f"kubemate-{theirs['project'].slug}-ops-mail") is None
    viewer = UserFactory()
    bind(admin_user, registered_cluster, viewer, "viewer", [mine["namespaces"][0]])
    login(client, viewer)
    answers = [
        client.get(reverse("observability:notify_home")).status_code,
        client.get(reverse("observability:receiver_list", args=[mine["project"].pk])).status_code,
        client.post(reverse("observability:receiver_create", args=[mine["project"].pk]), email_form()).status_code,
    ]
    assert answers == [404, 404, 404]


def test_a_refused_write_leaves_neither_objects_nor_a_row_and_is_audited(client, teams, crd_api, core_api):
    team = teams[0]
    project = team["project"]
    # A namespace Kubernetes does not have (nor the owner's RBAC in it): the write there is refused after the
    # project's real namespaces were written.
    project.namespaces = [*project.namespaces, unique("notify-missing")]
    project.save(update_fields=["namespaces"])
    login(client, team["user"])

    response = client.post(reverse("observability:receiver_create", args=[project.pk]), email_form())

    assert response.status_code == 400
    assert "Kubernetes" in response.content.decode() and PASSWORD not in response.content.decode()
    assert not Receiver.objects.exists()
    name = f"kubemate-{project.slug}-ops-mail"
    assert [read(crd_api, namespace, name) for namespace in team["namespaces"]] == [None, None]
    for namespace in team["namespaces"]:
        with pytest.raises(k8s.ApiException):
            core_api.read_namespaced_secret(name, namespace)
    event = AuditEvent.objects.get(action="observability.receiver.create")
    assert event.result == "failure" and PASSWORD not in json.dumps(event.detail)


def test_a_wecom_robot_gets_its_markdown_and_a_refusal_is_a_sentence_without_the_token(robot):
    receiver = Receiver(
        pk=9,
        project=Project(slug="pay", name="Pay", namespaces=["payments"]),
        name="wx",
        kind="wecom",
        secret_encrypted=crypto.encrypt(json.dumps({"url": f"{robot.url}/cgi-bin/webhook/send?key=wx-key-5"})),
    )
    alerts = [{"status": "resolved", "labels": {"alertname": "DiskFull", "namespace": "payments"}}]

    relay.deliver(receiver, alerts, "https://kubemate.bank.example")
    robot.answer = b'{"errcode":93000,"errmsg":"invalid webhook url"}'
    with pytest.raises(robots.RobotError) as refused:
        relay.deliver(receiver, alerts, "https://kubemate.bank.example")

    [post, _second] = robot.posts
    assert post["query"]["key"] == ["wx-key-5"] and post["body"]["msgtype"] == "markdown"
    content = post["body"]["markdown"]["content"]
    assert "DiskFull" in content and "resolved" in content
    assert "https://kubemate.bank.example/observability/alerts/" in content
    assert "invalid webhook url" in str(refused.value) and "wx-key-5" not in str(refused.value)
