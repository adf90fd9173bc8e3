"""Register (or refresh) a local sandbox cluster from its admin kubeconfig.

It takes the registration form's own path (``registry.services.register_from_kubeconfig``):
the admin credentials install Kubemate's own least-privilege identity
(deploy/kubernetes/kubemate-rbac.yaml) and are not stored; the console then
talks to the cluster as that ServiceAccount, and to operators' actions as theirs.
The registration is audited as done by "system".
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.clusters.registry.services import RegistryError, register_from_kubeconfig


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
            cluster = register_from_kubeconfig(
                actor=None, name=name, kubeconfig_text=kubeconfig.read_text(), environment=environment
            )
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Registered cluster '{cluster.name}' at {cluster.api_server} as kubemate-system/kubemate")
