"""Register (or refresh) a local sandbox cluster from its admin kubeconfig.

The admin credentials install Kubemate's own least-privilege identity
(deploy/kubernetes/kubemate-rbac.yaml) and are not stored; the console then
talks to the cluster as that ServiceAccount, and to operators' actions as theirs.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.clusters.kube import KubeError
from apps.clusters.services import InvalidKubeconfig, register_with_admin_credentials


class Command(BaseCommand):
    help = "Install Kubemate's identity into the cluster of an admin kubeconfig and register the cluster."

    def add_arguments(self, parser):
        parser.add_argument("kubeconfig", type=Path)
        parser.add_argument("--name", default="sandbox")
        parser.add_argument("--environment", default="demo")

    def handle(self, *args, kubeconfig: Path, name: str, environment: str, **options):
        if not kubeconfig.is_file():
            raise CommandError(f"No kubeconfig at {kubeconfig}; start the sandbox first.")
        try:
            cluster = register_with_admin_credentials(
                name=name, admin_kubeconfig_yaml=kubeconfig.read_text(), environment=environment
            )
        except (InvalidKubeconfig, KubeError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Registered cluster '{cluster.name}' at {cluster.api_server} as kubemate-system/kubemate")
