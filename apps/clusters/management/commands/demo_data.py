"""Demo projects on the sandbox cluster, so that a fresh demo can deploy apps at once. Idempotent."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.accounts import services
from apps.accounts.models import Project
from apps.clusters.models import Cluster
from apps.clusters.registry.services import ClusterSettings, update_cluster

PROJECTS = (("payments", "Payments", ["payments"]), ("erp", "ERP", ["erp"]))


class Command(BaseCommand):
    help = "Create the demo projects (payments, erp) on a registered cluster."

    def add_arguments(self, parser):
        parser.add_argument("--cluster", default="sandbox")
        parser.add_argument("--actor", default="admin")
        parser.add_argument("--prometheus-url", default="", help="set as the cluster's Prometheus URL")
        parser.add_argument("--alertmanager-url", default="", help="set as the cluster's Alertmanager URL")
        parser.add_argument("--logs-url", default="", help="set as the cluster's log store (VictoriaLogs) URL")
        parser.add_argument("--jaeger-url", default="", help="set as the cluster's Jaeger URL")

    def handle(
        self,
        *args,
        cluster: str,
        actor: str,
        prometheus_url: str,
        alertmanager_url: str = "",
        logs_url: str = "",
        jaeger_url: str = "",
        **options,
    ):
        target = Cluster.objects.filter(name=cluster).first()
        if target is None:
            raise CommandError(f"No cluster named {cluster}; register it first.")
        admin = get_user_model().objects.filter(username=actor).first()
        for slug, name, namespaces in PROJECTS:
            if not Project.objects.filter(cluster=target, slug=slug).exists():
                services.save_project(
                    actor=admin, project=Project(cluster=target, slug=slug, name=name, namespaces=namespaces)
                )
                self.stdout.write(f"Created project {name} ({', '.join(namespaces)})")
        for field, url, what in (
            ("prometheus_url", prometheus_url, "reads metrics from"),
            ("alertmanager_url", alertmanager_url, "reads alerts from"),
            ("logs_url", logs_url, "reads logs from"),
            ("jaeger_url", jaeger_url, "reads traces from"),
        ):
            if url and getattr(target, field) != url:
                # Cluster.endpoint_auth is a method (the credentials): leave them as stored.
                fields = {f: getattr(target, f) for f in ClusterSettings.__dataclass_fields__ if f != "endpoint_auth"}
                update_cluster(actor=admin, cluster=target, settings=ClusterSettings(**{**fields, field: url}))
                target.refresh_from_db()
                self.stdout.write(f"Cluster {target.name} {what} {url}")
