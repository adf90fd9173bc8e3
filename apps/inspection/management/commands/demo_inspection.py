"""Demo inspection data: this machine's host agent and the console's own PostgreSQL (through a read-only role made
here) registered, a morning schedule emailing its report, a weekly report, and one run of each built-in template.
Every change goes through the services as the demo administrator, so it is audited like any other. Idempotent."""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from apps.clusters.models import Cluster
from apps.core.deferred import Failure
from apps.inspection import agents, databases, services
from apps.inspection.models import DatabaseTarget, HostAgent, Schedule, Template

READ_ONLY_ROLE = "kubemate_inspect"


class Command(BaseCommand):
    help = "Register the demo host agent and database, a schedule, and run each built-in inspection once."

    def add_arguments(self, parser):
        parser.add_argument("--cluster", default="sandbox")
        parser.add_argument("--actor", default="admin")
        parser.add_argument("--agent-port", type=int, required=True)
        parser.add_argument("--agent-token-file", required=True)

    def handle(self, *args, cluster: str, actor: str, agent_port: int, agent_token_file: str, **options):
        user = get_user_model().objects.filter(username=actor).first()
        target = Cluster.objects.filter(name=cluster).first()
        if user is None or target is None:
            raise CommandError(f"run demo_admin and register_sandbox first (user {actor}, cluster {cluster})")
        try:
            self._agent(user, target, agent_port, Path(agent_token_file).read_text().strip())
            self._database(user)
        except Failure as exc:
            raise CommandError(str(exc)) from exc
        self._schedules(user, target)
        for template in Template.objects.filter(builtin=True):
            services.start_run(actor=user, template=template, clusters=[target])
        services.make_weekly(actor=user, clusters=[target])
        self.stdout.write("Inspection demo: agent, database, schedules, one run of each built-in template queued.")

    def _agent(self, user, cluster, port: int, token: str) -> None:
        url = f"https://127.0.0.1:{port}"
        found = HostAgent.objects.filter(name="demo-host").first()
        if found and found.url == url:
            return
        if found:
            agents.delete_agent(actor=user, agent=found)
        agents.register_agent(actor=user, name="demo-host", url=url, token=token, cluster=cluster, node_name="demo")

    def _database(self, user) -> None:
        if DatabaseTarget.objects.filter(name="kubemate-db").exists():
            return
        password = secrets.token_urlsafe(18)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [READ_ONLY_ROLE])
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            cursor.execute(f"{verb} ROLE {READ_ONLY_ROLE} LOGIN PASSWORD %s", [password])
            cursor.execute(f"GRANT pg_monitor TO {READ_ONLY_ROLE}")
        db = settings.DATABASES["default"]
        databases.register_database(
            actor=user,
            name="kubemate-db",
            engine=DatabaseTarget.Engine.POSTGRESQL,
            host=db["HOST"] or "127.0.0.1",
            port=int(db["PORT"] or 5432),
            database=db["NAME"],
            username=READ_ONLY_ROLE,
            password=password,
        )

    def _schedules(self, user, cluster) -> None:
        if not Schedule.objects.filter(name="Morning health check").exists():
            services.save_schedule(
                actor=user,
                name="Morning health check",
                kind=Schedule.Kind.INSPECTION,
                template=Template.objects.get(slug="daily-cluster-health"),
                clusters=[cluster],
                cron="0 7 * * *",
                tz="Asia/Shanghai",
                enabled=True,
                recipients=["ops@bank.example"],
                language="zh-hans",
            )
        if not Schedule.objects.filter(name="Managers' weekly report").exists():
            services.save_schedule(
                actor=user,
                name="Managers' weekly report",
                kind=Schedule.Kind.WEEKLY,
                template=None,
                clusters=[cluster],
                cron="0 8 * * 1",
                tz="Asia/Shanghai",
                enabled=True,
                recipients=["cio@bank.example"],
                language="zh-hans",
            )
