"""manage.py demo_compliance: the demo's compliance data, made as the demo's administrator through the services.

- the demo's rsyslog (deploy/local/demo) as a SIEM destination receiving the whole audit log;
- the group ``payments-developers`` of the demo's identity provider bound to Developer on project payments, so
  li.wei lands there at their first single sign-on;
- an approval policy on project payments (deploy, roll back, YAML edit, restore, role grants), and a developer's
  edit of the ConfigMap fee-rates waiting as a change request for the administrator;
- weekly change windows and a year-end freeze for clusters labelled env=prod (the demo's sandbox is not);
- an access review of project payments.
"""

from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.accounts import services as accounts
from apps.accounts.models import Binding, Project, Role
from apps.accounts.reconcile import reconcile_rbac
from apps.clusters import kube
from apps.clusters.actions import services as actions
from apps.clusters.actions.targets import Target
from apps.clusters.models import Cluster
from apps.compliance.approvals import services as approvals
from apps.compliance.forwarding import services as forwarding
from apps.compliance.models import ApprovalPolicy, ChangeRequest, ChangeWindow, SyslogDestination
from apps.compliance.reviews import services as reviews
from apps.core import gates


class Command(BaseCommand):
    help = "Make the demo's compliance data: SIEM destination, approval policy and a waiting request, windows, review."

    def add_arguments(self, parser):
        parser.add_argument("--cluster", default="sandbox")
        parser.add_argument("--actor", default="admin")
        parser.add_argument("--syslog-port", type=int, default=0, help="the demo's rsyslog (TCP); 0: none")

    def handle(self, *args, cluster, actor, syslog_port, **options):
        User = get_user_model()
        admin = User.objects.filter(username=actor).first()
        found = Cluster.objects.filter(name=cluster).first()
        project = Project.objects.filter(cluster=found, slug="payments").first() if found else None
        if admin is None or project is None:
            raise CommandError(f"run demo_admin, register_sandbox and demo_data first (user {actor}, {cluster})")
        namespace = project.namespaces[0]

        if syslog_port and not SyslogDestination.objects.filter(name="demo-siem").exists():
            forwarding.create(
                admin,
                SyslogDestination(name="demo-siem", host="127.0.0.1", port=syslog_port, transport="tcp"),
                from_start=True,
            )
            self.stdout.write(f"SIEM destination demo-siem: rsyslog on 127.0.0.1:{syslog_port}")

        developers, _ = Group.objects.get_or_create(name="payments-developers")
        developer_role = Role.objects.get(slug="developer")
        if not Binding.objects.filter(group=developers, project=project).exists():
            accounts.create_binding(actor=admin, role=developer_role, group=developers, project=project)
        developer = User.objects.filter(username="zhao.dev").first()
        if developer is None:
            developer = accounts.create_user(
                actor=admin,
                username="zhao.dev",
                email="zhao.dev@bank.example",
                full_name="Zhao Dev",
                password=secrets.token_urlsafe(18),  # the demo signs in as li.wei through Bank SSO instead
            )
            owner_role = Role.objects.get(slug="project-owner")  # edits YAML, which the policy holds back
            accounts.create_binding(actor=admin, role=owner_role, user=developer, project=project)
        reconcile_rbac(found)

        with kube.client(found, as_user=admin) as k:
            live = k.read("ConfigMap", namespace, "fee-rates")  # from deploy/sandbox/demo/20-payments.yaml
        policy = ApprovalPolicy.objects.filter(name="Payments changes").first()
        if policy is None:
            policy = ApprovalPolicy(
                name="Payments changes",
                project=project,
                actions=["releases.deploy", "releases.rollback", "yaml.edit", "backups.restore", "roles.grant"],
                expiry_hours=72,
            )
            approvals.save_policy(actor=admin, policy=policy, created=True)
        if live is None:
            self.stdout.write("No ConfigMap fee-rates in payments: no change request waits.")
        elif not ChangeRequest.objects.filter(status=ChangeRequest.Status.PENDING).exists():
            target = Target(cluster=found, kind="ConfigMap", namespace=namespace, name="fee-rates")
            document = actions.read_yaml(user=developer, target=target)
            try:
                actions.apply_yaml_edit(
                    actor=developer,
                    target=target,
                    text=document.text.replace("0.006", "0.0055"),
                    resource_version=live["metadata"]["resourceVersion"],
                )
            except gates.ApprovalRequired as exc:
                self.stdout.write(f"ConfigMap fee-rates: {exc}")
        zone = ZoneInfo("Asia/Shanghai")
        if not ChangeWindow.objects.filter(name="Weeknight changes").exists():
            approvals.save_window(
                actor=admin,
                window=ChangeWindow(
                    name="Weeknight changes",
                    cluster_labels={"env": "prod"},
                    weekdays=[0, 1, 2, 3, 4],
                    start_time=time(20, 0),
                    end_time=time(23, 0),
                    time_zone="Asia/Shanghai",
                ),
                created=True,
            )
        if not ChangeWindow.objects.filter(name="Year-end freeze").exists():
            year = timezone.now().astimezone(zone).year
            approvals.save_window(
                actor=admin,
                window=ChangeWindow(
                    name="Year-end freeze",
                    kind=ChangeWindow.Kind.FREEZE,
                    cluster_labels={"env": "prod"},
                    starts_at=datetime(year, 12, 28, tzinfo=zone),
                    ends_at=datetime(year, 12, 28, tzinfo=zone) + timedelta(days=7),
                    reason="year-end close",
                ),
                created=True,
            )
        review = reviews.start_review(project, actor=admin)
        self.stdout.write(f"Access review {review.period} of payments: {review.items.count()} lines")
