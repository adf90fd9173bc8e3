"""Alert rules: saved in Kubemate, written to the sandbox as PrometheusRule objects as the person, audited;
narrowed to their namespace; checked by Prometheus's own promtool."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from django.core.cache import cache
from django.urls import reverse
from kubernetes import client as k8s

from apps.core.models import AuditEvent
from apps.observability.models import AlertRule, BuiltinRules
from apps.observability.rules import catalogue, services
from tests.factories import UserFactory
from tests.helpers import bind, create_namespace, delete_namespace, login, unique, wait_for
from tests.observability.test_alerts_pages import ALERTS, form_of, new_silence_url

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

GROUP, VERSION, PLURAL = "monitoring.coreos.com", "v1", "prometheusrules"


@pytest.fixture
def crd_api(sandbox):
    return k8s.CustomObjectsApi(sandbox.api_client)


@pytest.fixture
def owners(sandbox, registered_cluster, admin_user):
    """Two project namespaces, each with its project owner (RBAC projected into the sandbox)."""
    made = []
    for _ in range(2):
        namespace = unique("rules")
        create_namespace(sandbox, namespace)
        owner = UserFactory()
        bind(admin_user, registered_cluster, owner, "project-owner", [namespace])
        made.append({"namespace": namespace, "user": owner, "cluster": registered_cluster})
    yield made
    for team in made:
        delete_namespace(sandbox, team["namespace"])


def rule_form(namespace: str, **overrides) -> dict:
    data = {
        "template": "memory_percent",
        "namespace": namespace,
        "workload": "payments",
        "threshold": "60",
        "expr": "",
        "for_seconds": "300",
        "severity": "warning",
        "name": "payments-memory",
        "alert": "PaymentsMemoryHigh",
        "summary": "",
    }
    return data | overrides


def read_rule(crd_api, namespace: str, name: str) -> dict | None:
    try:
        return crd_api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except k8s.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_a_project_owner_writes_a_rule_into_their_namespace_as_a_prometheusrule(client, owners, crd_api):
    team = owners[0]
    url = reverse("observability:rule_create", args=[team["cluster"].pk])

    response = login(client, team["user"]).post(url, rule_form(team["namespace"]))

    assert response.status_code == 302
    written = read_rule(crd_api, team["namespace"], "kubemate-payments-memory")
    rule = written["spec"]["groups"][0]["rules"][0]
    assert written["spec"]["groups"][0]["name"] == f"kubemate.{team['namespace']}.payments-memory"
    assert (rule["alert"], rule["for"]) == ("PaymentsMemoryHigh", "5m")
    assert rule["labels"] == {"severity": "warning", "namespace": team["namespace"], "kubemate_rule": "payments-memory"}
    assert f'namespace="{team["namespace"]}"' in rule["expr"] and rule["expr"].endswith("> 60")
    assert "60 %" in rule["annotations"]["summary"]
    row = AlertRule.objects.get(name="payments-memory")
    assert row.expr == rule["expr"] and row.created_by == team["user"]
    event = AuditEvent.objects.get(action="observability.rule.create")
    assert (event.actor_id, event.namespace, event.object_name, event.result) == (
        team["user"].pk,
        team["namespace"],
        "kubemate-payments-memory",
        "success",
    )
    page = client.get(reverse("observability:rule_list", args=[team["cluster"].pk])).content.decode()
    assert "payments-memory" in page and "No Prometheus URL is set for this cluster." in page


def test_a_project_owner_writes_nowhere_else_and_not_the_builtin_set(client, owners, crd_api):
    mine, theirs = owners
    login(client, mine["user"])
    create = reverse("observability:rule_create", args=[mine["cluster"].pk])

    form_page = client.get(create).content.decode()
    elsewhere = client.post(create, rule_form(theirs["namespace"]))
    builtin = client.post(
        reverse("observability:builtin_rules", args=[mine["cluster"].pk]), {"namespace": mine["namespace"]}, follow=True
    )

    assert f'value="{mine["namespace"]}"' in form_page and theirs["namespace"] not in form_page
    assert elsewhere.status_code == 200 and "Select a valid choice" in elsewhere.content.decode()
    assert "Only those who manage alert rules for the whole cluster" in builtin.content.decode()
    assert read_rule(crd_api, theirs["namespace"], "kubemate-payments-memory") is None
    assert read_rule(crd_api, mine["namespace"], services.BUILTIN_OBJECT) is None
    assert not AlertRule.objects.exists() and not BuiltinRules.objects.exists()
    # The page of the other namespace's owner shows nothing of theirs either way.
    other = login(client, theirs["user"]).get(reverse("observability:rule_list", args=[mine["cluster"].pk]))
    assert mine["namespace"] not in other.content.decode()


def test_a_written_expression_only_sees_its_own_namespace(client, owners, crd_api):
    mine, theirs = owners
    url = reverse("observability:rule_create", args=[mine["cluster"].pk])
    escape = f'up{{namespace="{theirs["namespace"]}"}} or vector(1)'

    login(client, mine["user"]).post(url, rule_form(mine["namespace"], template="custom", expr=escape, name="peek"))

    expr = read_rule(crd_api, mine["namespace"], "kubemate-peek")["spec"]["groups"][0]["rules"][0]["expr"]
    assert f'namespace="{mine["namespace"]}"' in expr
    assert AlertRule.objects.get(name="peek").expr == expr


@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        ({"summary": '{{ query "up" }}'}, "The summary cannot hold"),
        ({"threshold": "250"}, "Choose a threshold between 1 and 100."),
        ({"workload": "Not A Name"}, "Name the workload or app"),
        ({"alert": "1bad"}, "Name the alert with letters"),
        ({"template": "custom", "expr": "sum(rate(x[5m])"}, ""),
    ],
)
def test_a_rule_that_cannot_be_written_is_a_sentence_and_leaves_nothing(client, owners, crd_api, overrides, sentence):
    team = owners[0]
    url = reverse("observability:rule_create", args=[team["cluster"].pk])

    response = login(client, team["user"]).post(url, rule_form(team["namespace"], **overrides))

    assert response.status_code == 400
    shown = response.content.decode()
    assert 'data-testid="rule-error"' in shown and sentence in shown
    assert read_rule(crd_api, team["namespace"], "kubemate-payments-memory") is None
    assert not AlertRule.objects.exists()


def test_changing_and_removing_a_rule_changes_and_removes_its_object(client, owners, crd_api):
    team = owners[0]
    login(client, team["user"])
    client.post(reverse("observability:rule_create", args=[team["cluster"].pk]), rule_form(team["namespace"]))
    rule = AlertRule.objects.get()

    client.post(
        reverse("observability:rule_edit", args=[team["cluster"].pk, rule.pk]),
        rule_form(team["namespace"], threshold="75", severity="critical", for_seconds="60"),
    )
    changed = read_rule(crd_api, team["namespace"], rule.object_name)["spec"]["groups"][0]["rules"][0]
    client.post(reverse("observability:rule_delete", args=[team["cluster"].pk, rule.pk]))

    assert changed["expr"].endswith("> 75") and changed["labels"]["severity"] == "critical" and changed["for"] == "1m"
    assert read_rule(crd_api, team["namespace"], rule.object_name) is None
    assert not AlertRule.objects.exists()
    assert list(
        AuditEvent.objects.filter(action__startswith="observability.rule.")
        .order_by("seq")
        .values_list("action", flat=True)
    ) == [
        "observability.rule.create",
        "observability.rule.update",
        "observability.rule.delete",
    ]


def test_a_cluster_administrator_installs_the_builtin_set(client, sandbox, registered_cluster, admin_user, crd_api):
    namespace = unique("monitoring")
    create_namespace(sandbox, namespace)
    bind(admin_user, registered_cluster, admin_user, "cluster-admin")
    try:
        login(client, admin_user).post(
            reverse("observability:builtin_rules", args=[registered_cluster.pk]), {"namespace": namespace}
        )
        written = read_rule(crd_api, namespace, services.BUILTIN_OBJECT)
        assert [g["name"] for g in written["spec"]["groups"]] == [g["name"] for g in catalogue.builtin_groups()]
        assert BuiltinRules.objects.get(cluster=registered_cluster).namespace == namespace
        page = client.get(reverse("observability:rule_list", args=[registered_cluster.pk])).content.decode()
        assert 'data-testid="builtin-installed"' in page and "KubematePodCrashLooping" in page
    finally:
        delete_namespace(sandbox, namespace)


def test_every_rule_kubemate_writes_passes_promtool(tmp_path):
    """Prometheus's own checker reads the built-in set and a rule of every template as a rule file."""
    rules = [
        AlertRule(
            namespace="payments",
            name=f"r-{t.code.replace('_', '-')}",
            alert="PaymentsProblem",
            expr=services.build(
                services.Draft(
                    namespace="payments",
                    name="r",
                    alert="PaymentsProblem",
                    severity="warning",
                    for_seconds=90,
                    template=t.code,
                    workload="payments",
                    threshold=t.default or t.low,
                )
            )[0],
            for_seconds=90,
            summary="x",
        )
        for t in catalogue.TEMPLATES
    ]
    document = {"groups": catalogue.builtin_groups() + [services.group(r) for r in rules]}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(document))

    checked = subprocess.run(["/usr/bin/promtool", "check", "rules", str(path)], capture_output=True, text=True)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(catalogue.BUILTIN) + len(rules)} rules found" in checked.stdout


def test_a_rule_saved_in_kubemate_is_the_rule_that_fires_and_is_mailed_shown_and_silenced(
    client, owners, crd_api, alerting
):
    """The PrometheusRule Kubemate wrote is loaded by the test's Prometheus as a rule file (the Prometheus Operator
    does that in a cluster; it does not run here): the rule fires, reaches Alertmanager, is mailed, the rules page
    shows it firing, the alerts page shows it to its project, and the project silences it from the page."""
    prometheus, alertmanager = alerting.prometheus, alerting.alertmanager
    team = owners[0]
    cluster = team["cluster"]
    cluster.prometheus_url, cluster.alertmanager_url = prometheus.url, alertmanager.url
    cluster.save(update_fields=["prometheus_url", "alertmanager_url"])
    cache.clear()
    login(client, team["user"]).post(
        reverse("observability:rule_create", args=[cluster.pk]),
        rule_form(team["namespace"], for_seconds="0", threshold="60", alert="PaymentsMemoryHigh"),
    )
    written = read_rule(crd_api, team["namespace"], "kubemate-payments-memory")
    pod = {"namespace": team["namespace"], "pod": "payments-7d9f-abcde"}
    prometheus.exporter.set("container_memory_working_set_bytes", {**pod, "container": "app"}, 700)
    prometheus.exporter.set(
        "kube_pod_container_resource_limits", {**pod, "container": "app", "resource": "memory"}, 1000
    )
    # Another namespace's pod over its limit is not this rule's business.
    other = {"namespace": owners[1]["namespace"], "pod": "payments-1-x", "container": "app"}
    prometheus.exporter.set("container_memory_working_set_bytes", other, 990)
    prometheus.exporter.set("kube_pod_container_resource_limits", {**other, "resource": "memory"}, 1000)

    prometheus.write_rules("kubemate-payments-memory", yaml.safe_dump({"groups": written["spec"]["groups"]}))

    mail = alertmanager.mailbox.wait_for(lambda m: "PaymentsMemoryHigh" in m["Subject"], timeout=60)
    assert team["namespace"] in mail["Subject"] and owners[1]["namespace"] not in mail["Subject"]
    assert "Pod payments-7d9f-abcde of payments uses more than 60 % of its memory limit." in (
        alertmanager.mailbox.text(mail)
    )
    firing = [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "PaymentsMemoryHigh"]
    assert [a["labels"]["namespace"] for a in firing] == [team["namespace"]]
    page = client.get(reverse("observability:rule_list", args=[cluster.pk])).content.decode()
    assert 'data-rule="payments-memory"' in page and 'data-state="firing"' in page

    # The project owner sees it on the alerts page and silences it from there; Alertmanager holds the silence.
    alerts_page = client.get(ALERTS).content.decode()
    assert f'data-alert="PaymentsMemoryHigh" data-state="active" data-namespace="{team["namespace"]}"' in alerts_page
    assert owners[1]["namespace"] not in alerts_page
    link = f"{new_silence_url(cluster)}?alert={firing[0]['fingerprint']}"
    fields = form_of(client.get(link)) | {"duration": "2h", "comment": "CHG-42 raising the limit"}
    created = client.post(new_silence_url(cluster), fields)
    assert created.status_code == 302
    silence = next(s for s in alertmanager.silences() if s["comment"] == "CHG-42 raising the limit")
    assert silence["createdBy"] == team["user"].username
    assert {"name": "namespace", "value": team["namespace"], "isRegex": False, "isEqual": True} in silence["matchers"]
    assert wait_for(
        lambda: (
            next(a for a in alertmanager.alerts() if a["labels"]["alertname"] == "PaymentsMemoryHigh")["status"][
                "state"
            ]
            == "suppressed"
        )
    )
    prometheus.exporter.clear()
