"""Demo backups: the demo's S3 store (versitygw) registered as a storage target, Kubemate given the demo sandbox's
etcd, an etcd plan with three snapshots taken now, Kubemate's own database plan with one dump, and, where Velero
runs, its namespace named, a Velero plan of the Payments project's namespaces with one backup run now. Every change
goes through the services as the demo administrator, so it is audited like any other. Idempotent: plans are kept,
snapshots are added.

The store's address, bucket and keys, and Velero's namespace, are read from the env file deploy/local/backup_services
writes (``--env-file``, default .run/backups/env), never from the command line."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Project
from apps.accounts.reconcile import reconcile_rbac
from apps.backups import services, tasks
from apps.backups.models import Backup, Kind, Plan, Target
from apps.backups.velero import services as velero
from apps.clusters.models import Cluster
from apps.core.deferred import Failure


class Command(BaseCommand):
    help = "Register the demo's S3 store and etcd, and take demo backups (etcd, database, Velero)."

    def add_arguments(self, parser):
        parser.add_argument("--cluster", default="sandbox")
        parser.add_argument("--actor", default="admin")
        parser.add_argument("--env-file", default=".run/backups/env", help="written by deploy/local/backup_services")
        parser.add_argument("--etcd", required=True, help="the demo sandbox's etcd client URL")

    def handle(self, *args, cluster, actor, env_file, etcd, **options):
        user = get_user_model().objects.filter(username=actor).first()
        found = Cluster.objects.filter(name=cluster).first()
        if user is None or found is None:
            raise CommandError(f"run demo_admin and register_sandbox first (user {actor}, cluster {cluster})")
        env = {}
        for line in Path(env_file).read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                env[key.strip()] = value.strip()
        try:
            s3_endpoint, s3_bucket = env["KUBEMATE_DEMO_S3_ENDPOINT"], env["KUBEMATE_DEMO_S3_BUCKET"]
            keys = env["KUBEMATE_DEMO_S3_ACCESS_KEY"], env["KUBEMATE_DEMO_S3_SECRET_KEY"]
        except KeyError as exc:
            raise CommandError(f"{env_file} lacks {exc}; run deploy/local/backup_services up") from None
        velero_namespace = env.get("KUBEMATE_DEMO_VELERO_NAMESPACE", "")
        try:
            target = self._target(user, s3_endpoint, s3_bucket, *keys)
            services.save_etcd_access(actor=user, cluster=found, endpoints=[etcd])
            etcd_plan = self._plan(user, Kind.ETCD, "etcd-nightly", found, target, "0 1 * * *", keep=7, rpo=24)
            database_plan = self._plan(user, Kind.DATABASE, "kubemate-db", None, target, "30 1 * * *", keep=14, rpo=24)
            for _ in range(3):
                services.take_backup_now(actor=user, plan=etcd_plan)
            services.take_backup_now(actor=user, plan=database_plan)
            if velero_namespace:
                self._velero(user, found, velero_namespace)
        except Failure as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Backups demo: target {target.name}, {Backup.objects.filter(status='succeeded').count()} good backups."
        )

    def _target(self, user, endpoint, bucket, access_key, secret_key) -> Target:
        found = Target.objects.filter(name="demo-s3").first() or Target(name="demo-s3")
        found.endpoint, found.bucket, found.region, found.path_style, found.prefix = (
            endpoint,
            bucket,
            "us-east-1",
            True,
            "kubemate",
        )
        return services.save_target(actor=user, target=found, access_key=access_key, secret_key=secret_key)

    def _plan(self, user, kind, name, cluster, target, cron, *, keep, rpo) -> Plan:
        found = Plan.objects.filter(kind=kind, name=name, cluster=cluster).first() or Plan(
            kind=kind, name=name, cluster=cluster
        )
        found.target, found.cron, found.keep_count, found.keep_days, found.rpo_hours = target, cron, keep, keep, rpo
        return services.save_plan(actor=user, plan=found)

    def _velero(self, user, cluster, namespace) -> None:
        services.set_velero_namespace(actor=user, cluster=cluster, namespace=namespace)
        cluster.refresh_from_db()
        # What the reconcile queued by that change does in a worker; here at once, so the Velero namespace's
        # bindings exist before the demo's plan is saved as the administrator.
        reconcile_rbac(cluster)
        payments = Project.objects.filter(cluster=cluster, slug="payments").first()
        namespaces = list(payments.namespaces) if payments else []
        found = Plan.objects.filter(kind=Kind.VELERO, name="payments-daily", cluster=cluster).first() or Plan(
            kind=Kind.VELERO, name="payments-daily", cluster=cluster
        )
        found.namespaces, found.cron, found.keep_days, found.rpo_hours = namespaces, "0 3 * * *", 7, 24
        plan = velero.save_plan(actor=user, plan=found)
        backup = velero.run_backup(actor=user, cluster=cluster, plan=plan)
        tasks.follow_velero(str(backup.job_id), "backup", backup.pk)
