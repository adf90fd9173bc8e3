"""Writes to the cluster registry."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from apps.clusters.models import Cluster


class InvalidKubeconfig(ValueError):
    pass


def server_of(kubeconfig_yaml: str) -> str:
    """The API server URL of the current context of a kubeconfig."""
    try:
        data = yaml.safe_load(kubeconfig_yaml)
        contexts = {c["name"]: c["context"] for c in data["contexts"]}
        clusters = {c["name"]: c["cluster"] for c in data["clusters"]}
        return clusters[contexts[data["current-context"]]["cluster"]]["server"]
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise InvalidKubeconfig(
            _("The kubeconfig is not valid: %(reason)s") % {"reason": exc.__class__.__name__}
        ) from None


def register_cluster(*, name: str, kubeconfig_yaml: str, environment: str = "") -> Cluster:
    """Register ``name`` or replace its credentials; the kubeconfig is stored encrypted."""
    api_server = server_of(kubeconfig_yaml)
    with transaction.atomic():
        cluster, _created = Cluster.objects.get_or_create(
            name=name, defaults={"api_server": api_server, "environment": environment}
        )
        cluster.api_server = api_server
        cluster.environment = environment or cluster.environment
        cluster.set_kubeconfig(kubeconfig_yaml)
        cluster.save()
    return cluster


def identity_manifest() -> list[dict]:
    path = Path(settings.BASE_DIR) / "deploy" / "kubernetes" / "kubemate-rbac.yaml"
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def register_with_admin_credentials(*, name: str, admin_kubeconfig_yaml: str, environment: str = "") -> Cluster:
    """Install Kubemate's least-privilege identity with an administrator's kubeconfig, then register the
    cluster with that identity. The administrator's credentials are used once and never stored."""
    from apps.clusters.k8s import install_identity

    server_of(admin_kubeconfig_yaml)
    admin = Cluster(name=name)
    admin.set_kubeconfig(admin_kubeconfig_yaml)
    own_kubeconfig = install_identity(admin, identity_manifest())
    return register_cluster(name=name, kubeconfig_yaml=own_kubeconfig, environment=environment)
