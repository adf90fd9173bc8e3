"""manage.py demo_compliance, as `make demo` runs it after the other demo data: every compliance page has something
to show, and a second run changes nothing."""

import pytest
from django.core.management import call_command
from kubernetes import client as k8s

from apps.accounts import services as accounts
from apps.accounts.models import Project
from apps.compliance.models import AccessReview, ApprovalPolicy, ChangeRequest, ChangeWindow, SyslogDestination
from tests.helpers import create_namespace, delete_namespace, unique

pytestmark = [pytest.mark.django_db, pytest.mark.sandbox]


def test_the_demo_has_a_siem_destination_a_waiting_change_windows_and_a_review(
    sandbox, registered_cluster, admin_user, rsyslog
):
    namespace = unique("payments")
    create_namespace(sandbox, namespace)
    k8s.CoreV1Api(sandbox.api_client).create_namespaced_config_map(  # as deploy/sandbox/demo/20-payments.yaml
        namespace, {"metadata": {"name": "fee-rates"}, "data": {"card": "0.006", "transfer": "0.001"}}
    )
    try:
        accounts.save_project(
            actor=admin_user,
            project=Project(cluster=registered_cluster, slug="payments", name="Payments", namespaces=[namespace]),
        )
        for _run in range(2):
            call_command(
                "demo_compliance",
                cluster=registered_cluster.name,
                actor=admin_user.username,
                syslog_port=rsyslog.tcp_port,
            )

        assert SyslogDestination.objects.get().port == rsyslog.tcp_port
        policy = ApprovalPolicy.objects.get()
        assert policy.project.slug == "payments" and {"roles.grant", "backups.restore"} <= set(policy.actions)
        waiting = ChangeRequest.objects.get()
        assert waiting.status == ChangeRequest.Status.PENDING and waiting.maker.username == "zhao.dev"
        assert waiting.kind == "ConfigMap" and waiting.manifests[0]["data"]["card"] == "0.0055"
        assert sorted(ChangeWindow.objects.values_list("kind", flat=True)) == ["freeze", "window"]
        review = AccessReview.objects.get()
        assert {"zhao.dev", "@payments-developers"} <= set(review.items.values_list("subject", flat=True))
    finally:
        delete_namespace(sandbox, namespace)
