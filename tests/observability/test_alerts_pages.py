"""The alerts and silences pages against Debian's real Prometheus and Alertmanager (tests/plugins/): a rule that
fires is mailed, shown, silenced from the page as the person and audited; a project member sees and silences only
their namespaces; capabilities hide buttons and refuse requests; a stopped Alertmanager is a sentence, never a 500;
the dashboard and the cluster overview count what fires."""

from __future__ import annotations

import time
from html import unescape
from html.parser import HTMLParser

import pytest
from django.core.cache import cache
from django.urls import reverse

from apps.accounts.models import Project
from apps.core.models import AuditEvent
from tests.factories import AdminFactory, ClusterFactory, ResourceFactory, UserFactory
from tests.helpers import grant, login, unique, wait_for

pytestmark = pytest.mark.django_db

ALERTS = reverse("observability:alert_list")
SILENCES = reverse("observability:silence_list")
COUNTS = reverse("observability:alert_counts")


def new_silence_url(cluster) -> str:
    return reverse("observability:silence_create", args=[cluster.pk])


def expire_url(cluster, silence_id: str) -> str:
    return reverse("observability:silence_expire", args=[cluster.pk, silence_id])


class FormFields(HTMLParser):
    """The values a browser would post from the form marked ``data-testid=silence-form``."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, str] = {}
        self.inside, self.select, self.textarea = False, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("data-testid") == "silence-form":
            self.inside = True
        if not self.inside:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            self.fields[a["name"]] = a.get("value") or ""
        elif tag == "select":
            self.select = a.get("name")
        elif tag == "option" and self.select and ("selected" in a or self.select not in self.fields):
            self.fields[self.select] = a.get("value", "")
        elif tag == "textarea":
            self.textarea = a.get("name")
            self.fields[self.textarea] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data):
        if self.textarea:
            self.fields[self.textarea] += data


def form_of(response) -> dict[str, str]:
    parser = FormFields()
    parser.feed(response.content.decode())
    return parser.fields


def matchers_in(fields: dict[str, str]) -> list[str]:
    total = int(fields["m-TOTAL_FORMS"])
    found = [(fields[f"m-{i}-name"], fields[f"m-{i}-operator"], fields[f"m-{i}-value"]) for i in range(total)]
    return [f'{n}{op}"{v}"' for n, op, v in found if n]


def silence_form(matchers: list[tuple[str, str, str]], **fields) -> dict:
    data = {"m-TOTAL_FORMS": str(len(matchers)), "m-INITIAL_FORMS": "0", "duration": "2h", "comment": "CHG-7 work"}
    for i, (name, operator, value) in enumerate(matchers):
        data |= {f"m-{i}-name": name, f"m-{i}-operator": operator, f"m-{i}-value": value}
    return data | fields


@pytest.fixture
def watched(alertmanager):
    """A cluster whose Alertmanager is the test's."""
    cache.clear()
    return ClusterFactory(alertmanager_url=alertmanager.url)


RULES = """
groups:
  - name: payments
    rules:
      - alert: {alert}
        expr: app_error_ratio{{namespace="{namespace}"}} > 0.05
        for: 0s
        labels:
          severity: critical
        annotations:
          summary: "More than 5 % of payments fail"
          description: "Error ratio {{{{ $value }}}} on {{{{ $labels.service }}}}"
"""


def test_a_firing_rule_is_mailed_shown_silenced_from_the_page_and_seen_silenced_in_alertmanager(client, alerting):
    prometheus, alertmanager = alerting.prometheus, alerting.alertmanager
    cluster = ClusterFactory(alertmanager_url=alertmanager.url)
    cache.clear()
    namespace, alert = unique("payments"), f"PaymentsFailing{unique('x')[-6:]}"
    prometheus.exporter.set("app_error_ratio", {"namespace": namespace, "service": "pay-api"}, 0.09)
    prometheus.write_rules("payments", RULES.format(alert=alert, namespace=namespace))
    admin = AdminFactory()
    login(client, admin)

    # Prometheus evaluates the rule, Alertmanager groups the alert and mails it.
    mail = alertmanager.mailbox.wait_for(lambda m: alert in m["Subject"], timeout=60)
    assert mail["Subject"].startswith("[FIRING:1]") and namespace in mail["Subject"]
    assert "More than 5 % of payments fail" in alertmanager.mailbox.text(mail)
    assert alertmanager.mailbox.recipients[alertmanager.mailbox.messages.index(mail)] == ["ops@bank.example"]

    # The alerts page shows it, grouped as Alertmanager groups it, with its summary and a silence button.
    page = client.get(ALERTS)
    html = page.content.decode()
    assert page.status_code == 200
    assert f'data-alert="{alert}" data-state="active" data-namespace="{namespace}"' in html
    assert f'alertname="{alert}"' in html and "More than 5 % of payments fail" in html
    assert "Error ratio 0.09 on pay-api" in html
    fingerprint = next(a for a in alertmanager.alerts() if a["labels"]["alertname"] == alert)["fingerprint"]
    silence_link = f"{new_silence_url(cluster)}?alert={fingerprint}"
    assert silence_link in html

    # Silence it from the page: the form comes filled in with the alert's labels.
    form_page = client.get(silence_link)
    fields = form_of(form_page)
    assert {f'alertname="{alert}"', f'namespace="{namespace}"', 'service="pay-api"', 'severity="critical"'} <= set(
        matchers_in(fields)
    )
    fields |= {"duration": "4h", "comment": "INC-77 payments provider down, we know", "reason": "INC-77"}
    created = client.post(new_silence_url(cluster), fields)

    assert created.status_code == 302 and created["Location"].startswith(SILENCES)
    # Alertmanager's own API and its own tool hold the silence, created by the person.
    silence = next(s for s in alertmanager.silences() if s["comment"].startswith("INC-77"))
    assert silence["createdBy"] == admin.username and silence["status"]["state"] == "active"
    assert {"name": "alertname", "value": alert, "isRegex": False, "isEqual": True} in silence["matchers"]
    assert silence["id"] in alertmanager.amtool("silence", "query", "-q", f"alertname={alert}")
    event = AuditEvent.objects.get(action="observability.silence.create")
    assert (event.actor_id, event.cluster, event.namespace, event.object_name, event.reason) == (
        admin.pk,
        cluster.name,
        namespace,
        silence["id"],
        "INC-77",
    )
    assert f'alertname="{alert}"' in event.detail["matchers"] and event.detail["ends"]
    assert event.detail["comment"] == "INC-77 payments provider down, we know"

    # The alert now shows as silenced, and the silences page lists the silence.
    assert wait_for(
        lambda: (
            next(a for a in alertmanager.alerts() if a["labels"]["alertname"] == alert)["status"]["state"]
            == "suppressed"
        )
    )
    html = client.get(ALERTS).content.decode()
    assert f'data-alert="{alert}" data-state="suppressed"' in html and 'data-testid="alert-silenced"' in html
    listed = client.get(created["Location"]).content.decode()
    assert f'data-silence="{silence["id"]}" data-state="active"' in listed
    assert admin.username in listed and "INC-77 payments provider down, we know" in listed

    # Expire it from the silences page: Alertmanager expires it and the audit log says who.
    expired = client.post(expire_url(cluster, silence["id"]), {"reason": "fixed"})
    assert expired.status_code == 302
    assert next(s for s in alertmanager.silences() if s["id"] == silence["id"])["status"]["state"] == "expired"
    event = AuditEvent.objects.get(action="observability.silence.expire")
    assert (event.actor_id, event.object_name, event.reason, event.result) == (
        admin.pk,
        silence["id"],
        "fixed",
        "success",
    )
    prometheus.exporter.clear()


@pytest.fixture
def teams(watched, alertmanager):
    """Two project namespaces of one cluster, with a developer of the first; alerts and silences in both, and
    alerts and silences of the whole cluster."""
    mine, theirs = unique("team-a"), unique("team-b")
    project = Project.objects.create(cluster=watched, slug=unique("p"), name="A", namespaces=[mine])
    member = UserFactory()
    grant(member, "developer", project=project)
    alertmanager.post_alert(
        {"alertname": "AppErrorsHigh", "namespace": mine, "severity": "warning", "service": "pay-api"},
        {"summary": "mine fails"},
    )
    alertmanager.post_alert(
        {"alertname": "AppErrorsHigh", "namespace": theirs, "severity": "critical"}, {"summary": "theirs fails"}
    )
    alertmanager.post_alert({"alertname": "NodeNotReady", "node": "node-7", "severity": "critical"})
    ids = {}
    for name, matchers in {
        "mine": [("alertname", "=", "DiskAlmostFull"), ("namespace", "=", mine)],
        "theirs": [("alertname", "=", "AppErrorsHigh"), ("namespace", "=", theirs)],
        "regex": [("alertname", "=", "Other"), ("namespace", "=~", f"{mine}|{theirs}")],
        "cluster": [("alertname", "=", "NodeDiskFull")],
    }.items():
        ids[name] = create_directly(alertmanager, matchers, f"{name} silence")
    return {"cluster": watched, "mine": mine, "theirs": theirs, "member": member, "silences": ids}


def create_directly(alertmanager, matchers, comment: str) -> str:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    body = {
        "matchers": [
            {"name": n, "value": v, "isRegex": op.endswith("~"), "isEqual": op.startswith("=")} for n, op, v in matchers
        ],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "someone",
        "comment": comment,
    }
    return alertmanager.api("silences", body)["silenceID"]


def test_a_project_member_sees_only_the_alerts_and_silences_of_their_namespaces(client, teams):
    login(client, teams["member"])

    alerts = client.get(ALERTS).content.decode()
    silences = client.get(SILENCES).content.decode()
    counts = client.get(COUNTS).content.decode()

    assert "mine fails" in alerts and f'data-namespace="{teams["mine"]}"' in alerts
    assert teams["theirs"] not in alerts and "theirs fails" not in alerts and "NodeNotReady" not in alerts
    assert 'data-testid="alert-silence"' in alerts  # they may silence their own alert
    assert teams["silences"]["mine"] in silences
    for other in ("theirs", "regex", "cluster"):
        assert teams["silences"][other] not in silences
    assert teams["theirs"] not in silences and "NodeDiskFull" not in silences
    assert 'data-critical="0" data-warning="1" data-other="0"' in counts
    # The whole cluster's holder sees everything.
    login(client, AdminFactory())
    everything = client.get(ALERTS).content.decode()
    assert "theirs fails" in everything and "NodeNotReady" in everything
    assert all(i in client.get(SILENCES).content.decode() for i in teams["silences"].values())


@pytest.mark.parametrize(
    ("matchers", "sentence"),
    [
        ([("alertname", "=", "AppErrorsHigh"), ("namespace", "=", "{theirs}")], "You may not silence alerts of"),
        ([("alertname", "=", "AppErrorsHigh"), ("namespace", "=~", "{mine}|{theirs}")], 'with "=" only'),
        ([("alertname", "=", "AppErrorsHigh"), ("namespace", "=~", "{mine}")], 'with "=" only'),
        ([("alertname", "=", "AppErrorsHigh"), ("namespace", "!=", "{theirs}")], 'with "=" only'),
        ([("alertname", "=", "AppErrorsHigh")], 'exactly one matcher namespace="…"'),
        ([("namespace", "=", "{mine}"), ("namespace", "=", "{theirs}")], 'exactly one matcher namespace="…"'),
    ],
)
def test_a_silence_beyond_the_members_namespaces_is_refused_with_a_sentence(
    client, teams, alertmanager, matchers, sentence
):
    login(client, teams["member"])
    before = {s["id"] for s in alertmanager.silences()}
    filled = [(n, op, v.format(mine=teams["mine"], theirs=teams["theirs"])) for n, op, v in matchers]

    response = client.post(new_silence_url(teams["cluster"]), silence_form(filled))

    assert response.status_code == 400
    assert sentence in unescape(response.content.decode())
    assert 'data-testid="silence-error"' in response.content.decode()
    assert {s["id"] for s in alertmanager.silences()} == before
    event = AuditEvent.objects.get(action="observability.silence.create")
    assert (event.actor_id, event.result) == (teams["member"].pk, "denied")


def test_a_member_silences_their_namespace_and_expires_only_their_silences(client, teams, alertmanager):
    login(client, teams["member"])
    cluster = teams["cluster"]

    created = client.post(
        new_silence_url(cluster),
        silence_form([("alertname", "=", "AppErrorsHigh"), ("namespace", "=", teams["mine"])], duration="1h"),
    )
    theirs = client.post(expire_url(cluster, teams["silences"]["theirs"]))
    unpinned = client.post(expire_url(cluster, teams["silences"]["cluster"]))
    mine = client.post(expire_url(cluster, teams["silences"]["mine"]), follow=True)

    assert created.status_code == 302
    silence = next(s for s in alertmanager.silences() if s["createdBy"] == teams["member"].username)
    assert silence["comment"] == "CHG-7 work" and silence["status"]["state"] == "active"
    assert (theirs.status_code, unpinned.status_code) == (404, 404)
    states = {s["id"]: s["status"]["state"] for s in alertmanager.silences()}
    assert states[teams["silences"]["theirs"]] == states[teams["silences"]["cluster"]] == "active"
    assert states[teams["silences"]["mine"]] == "expired"
    assert "was expired" in mine.content.decode()


def test_a_viewer_sees_alerts_without_silence_buttons_and_may_not_silence(client, teams, alertmanager):
    viewer = UserFactory()
    grant(viewer, "viewer", project=Project.objects.get(namespaces=[teams["mine"]]))
    stranger = UserFactory()
    login(client, viewer)

    alerts = client.get(ALERTS).content.decode()
    silences = client.get(SILENCES).content.decode()
    form = client.get(new_silence_url(teams["cluster"]))
    post = client.post(
        new_silence_url(teams["cluster"]),
        silence_form([("alertname", "=", "AppErrorsHigh"), ("namespace", "=", teams["mine"])]),
    )
    expire = client.post(expire_url(teams["cluster"], teams["silences"]["mine"]), follow=True)

    assert "mine fails" in alerts and 'data-testid="alert-silence"' not in alerts
    assert teams["silences"]["mine"] in silences
    assert 'data-testid="silence-expire"' not in silences and 'data-testid="silence-new"' not in silences
    assert (form.status_code, post.status_code) == (404, 404)
    assert "You may not expire this silence" in expire.content.decode()
    assert next(s for s in alertmanager.silences() if s["id"] == teams["silences"]["mine"])["status"]["state"] == (
        "active"
    )
    assert AuditEvent.objects.get(action="observability.silence.expire").result == "denied"
    # Someone holding no alerts.view anywhere finds no alerts pages, and no sidebar entry.
    login(client, stranger)
    assert [client.get(url).status_code for url in (ALERTS, SILENCES)] == [404, 404]
    assert ALERTS not in client.get(reverse("dashboard")).content.decode()


def test_silenced_and_inhibited_alerts_are_marked_and_filters_narrow_the_page(client, teams, alertmanager):
    from tests.plugins.alertmanager import INHIBITING_ALERT

    alertmanager.post_alert({"alertname": INHIBITING_ALERT, "namespace": teams["theirs"], "severity": "critical"})
    alertmanager.post_alert({"alertname": "SlowQueries", "namespace": teams["theirs"], "severity": "warning"})
    create_directly(alertmanager, [("alertname", "=", "NodeNotReady")], "node maintenance")
    wait_for(lambda: any(a["status"]["inhibitedBy"] for a in alertmanager.alerts()))
    wait_for(lambda: any(a["status"]["silencedBy"] for a in alertmanager.alerts()))
    login(client, AdminFactory())

    html = client.get(ALERTS).content.decode()
    suppressed = client.get(ALERTS, {"state": "suppressed"}).content.decode()
    critical = client.get(ALERTS, {"severity": "critical", "namespace": teams["theirs"]}).content.decode()
    searched = client.get(ALERTS, {"text": "slowqu"}, HTTP_HX_REQUEST="true").content.decode()
    elsewhere = client.get(ALERTS, {"cluster": ClusterFactory(alertmanager_url="").pk}).content.decode()
    quiet = client.get(ALERTS, {"namespace": "quiet-namespace"}).content.decode()

    assert 'data-alert="SlowQueries" data-state="suppressed"' in html and 'data-testid="alert-inhibited"' in html
    assert 'data-alert="NodeNotReady" data-state="suppressed"' in html and 'data-testid="alert-silenced"' in html
    assert sorted(set(rows(suppressed))) == ["AppErrorsHigh", "NodeNotReady", "SlowQueries"]  # theirs, silenced
    assert sorted(set(rows(critical))) == ["AppErrorsHigh", INHIBITING_ALERT]
    assert rows(searched) == ["SlowQueries"] and "<html" not in searched
    assert rows(elsewhere) == [] and "No Alertmanager URL is set for this cluster." in elsewhere
    assert rows(quiet) == [] and "No alert matches these filters." in quiet
    # The object an alert names links to its page, when the inventory knows it.
    node_page = reverse("clusters:resource_detail", args=[teams["cluster"].pk, "nodes", "_", "node-7"])
    assert node_page not in html
    ResourceFactory(cluster=teams["cluster"], kind="Node", name="node-7", namespace="")
    assert node_page in client.get(ALERTS).content.decode()


def rows(html: str) -> list[str]:
    import re

    return re.findall(r'data-testid="alert-row" data-alert="([^"]+)"', html)


def test_a_stopped_alertmanager_is_a_sentence_on_every_page(client, teams, alertmanager):
    login(client, AdminFactory())
    alertmanager.stop()
    try:
        cache.clear()
        started = time.monotonic()
        answers = {
            "alerts": client.get(ALERTS),
            "silences": client.get(SILENCES),
            "form": client.get(new_silence_url(teams["cluster"]) + "?alert=abc"),
            "counts": client.get(COUNTS),
            "create": client.post(
                new_silence_url(teams["cluster"]), silence_form([("alertname", "=", "AppErrorsHigh")])
            ),
            "expire": client.post(expire_url(teams["cluster"], teams["silences"]["mine"]), follow=True),
        }
        elapsed = time.monotonic() - started
    finally:
        alertmanager.start()

    sentence = f"Alertmanager at {alertmanager.url} could not be reached."
    assert {k: r.status_code for k, r in answers.items()} == {
        "alerts": 200,
        "silences": 200,
        "form": 200,
        "counts": 200,
        "create": 400,
        "expire": 200,
    }
    assert {k: sentence in r.content.decode() for k, r in answers.items()} == dict.fromkeys(answers, True)
    assert elapsed < 10
    assert AuditEvent.objects.get(action="observability.silence.create").result == "failure"


def test_counts_are_cached_briefly_and_the_dashboard_and_overview_load_them(client, watched, alertmanager):
    admin = AdminFactory()
    login(client, admin)
    namespace = unique("ns")
    alertmanager.post_alert({"alertname": "A", "namespace": namespace, "severity": "critical"})
    alertmanager.post_alert({"alertname": "B", "namespace": namespace, "severity": "warning"})
    alertmanager.post_alert({"alertname": "C", "namespace": namespace, "severity": "info"})
    wait_for(
        lambda: len(alertmanager.alerts()) == 3 and all(a["status"]["state"] == "active" for a in alertmanager.alerts())
    )

    first = client.get(COUNTS).content.decode()
    alertmanager.post_alert({"alertname": "D", "namespace": namespace, "severity": "critical"})
    cached = client.get(COUNTS).content.decode()
    cache.clear()
    fresh = client.get(COUNTS, {"cluster": watched.pk}).content.decode()

    assert f'data-cluster="{watched.name}" data-critical="1" data-warning="1" data-other="1"' in first
    assert 'data-testid="alert-counts" data-firing="3"' in first and cached == first
    assert 'data-critical="2" data-warning="1" data-other="1"' in fresh
    dashboard = client.get(reverse("dashboard")).content.decode()
    overview = client.get(reverse("clusters:cluster_overview", args=[watched.pk])).content.decode()
    assert f'hx-get="{COUNTS}"' in dashboard and 'data-testid="alert-counts-loading"' in dashboard
    assert f'hx-get="{COUNTS}?cluster={watched.pk}"' in overview


def test_a_hostile_answer_is_a_sentence_on_the_page(client, hostile_alertmanager):
    hostile_alertmanager.body = b'{"not": "a list"}'
    ClusterFactory(alertmanager_url=hostile_alertmanager.url)
    login(client, AdminFactory())

    page = client.get(ALERTS)

    assert page.status_code == 200
    assert "gave an answer Kubemate cannot read (a list of alert groups)" in page.content.decode()


def test_the_alerts_page_asks_the_database_as_often_for_many_alerts_as_for_few(client, watched, alertmanager):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    login(client, AdminFactory())
    namespace = unique("ns")

    def queries_with(count: int) -> int:
        for i in range(count):
            alertmanager.post_alert({"alertname": f"PodDown{i}", "namespace": namespace, "pod": f"web-{i}"})
        wait_for(lambda: len(alertmanager.alerts()) >= count)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(ALERTS).status_code == 200
        return len(captured)

    few = queries_with(2)
    many = queries_with(20)

    assert few == many
