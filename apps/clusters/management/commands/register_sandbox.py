"""Register (or refresh) a local sandbox cluster from its admin kubeconfig."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.clusters.services import InvalidKubeconfig, register_cluster


class Command(BaseCommand):
    help = "Register the cluster described by a kubeconfig file as a managed cluster."

    def add_arguments(self, parser):
        parser.add_argument("kubeconfig", type=Path)
        parser.add_argument("--name", default="sandbox")
        parser.add_argument("--environment", default="demo")

    def handle(self, *args, kubeconfig: Path, name: str, environment: str, **options):
        if not kubeconfig.is_file():
            raise CommandError(f"No kubeconfig at {kubeconfig}; start the sandbox first.")
        try:
            cluster = register_cluster(name=name, kubeconfig_yaml=kubeconfig.read_text(), environment=environment)
        except InvalidKubeconfig as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Registered cluster '{cluster.name}' at {cluster.api_server}")
