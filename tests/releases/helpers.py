"""What the release tests share: form data as a browser posts it, releases, members, rollouts, canary objects."""

from datetime import timedelta

from django.utils import timezone
from kubernetes import client as k8s

from apps.accounts import services as account_services
from apps.accounts.models import Project, Role
from apps.core.models import Job
from apps.releases import analysis, render
from apps.releases.forms import initial_from_spec
from apps.releases.models import Canary, Release, Revision
from apps.releases.tasks import wait_rollout
from tests.factories import UserFactory

NAME = "payments-api"
CANARY = f"{NAME}-canary"
OLD = "registry.bank.example/payments-api:1.0.0"
NEW = "registry.bank.example/payments-api:2.0.0"


def form_data(**overrides) -> dict:
    data = {k: v for k, v in initial_from_spec(render.default_spec()).items() if v is not None and v is not False}
    data.update(image="registry.bank.example/payments-api:1.0.0", replicas=2)
    data["service_enabled"] = "on"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


ROUTE = {
    "route_enabled": "on",
    "route_hostname": "pay.bank.example",
    "gateway_name": "public",
    "gateway_namespace": "gateway-system",
}


def release_in(project: Project) -> Release:
    """payments-api in the project's first namespace with one succeeded revision (no cluster is called)."""
    spec = {**render.default_spec(), "image": OLD}
    release = Release.objects.create(project=project, namespace=project.namespaces[0], name=NAME, spec=spec)
    Revision.objects.create(release=release, number=1, spec=spec, spec_hash="x", result=Revision.Result.SUCCEEDED)
    return release


def member(release, role="developer"):
    """A new user bound to ``role`` on the release's project (the binding row and its audit event)."""
    user = UserFactory()
    account_services.create_binding(actor=None, role=Role.objects.get(slug=role), user=user, project=release.project)
    return user


def roll_out(revision: Revision) -> Job:
    """Run the rollout wait the way the worker runs it, and return its finished Job."""
    wait_rollout(str(revision.job_id), revision.pk)
    return Job.objects.get(pk=revision.job_id)


def check_now(canary: Canary) -> Canary:
    """Make the canary due and run the periodic task's function once."""
    Canary.objects.filter(pk=canary.pk).update(next_check_at=timezone.now() - timedelta(seconds=1))
    analysis.analyse_due()
    canary.refresh_from_db()
    return canary


def live_route(sandbox, namespace: str) -> dict:
    return k8s.CustomObjectsApi(sandbox.api_client).get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", NAME
    )


def weights(route: dict) -> list[tuple[str, int]]:
    return [(ref["name"], ref.get("weight", 1)) for ref in route["spec"]["rules"][-1]["backendRefs"]]


def deployments(apps_api, namespace: str) -> list[tuple[str, str]]:
    items = apps_api.list_namespaced_deployment(namespace, label_selector=f"kubemate.io/release={NAME}").items
    return sorted((d.metadata.name, d.spec.template.spec.containers[0].image) for d in items)


def canary_leftovers(apps_api, core_api, namespace: str) -> list[str]:
    """Every object of the canary still in the namespace: Deployment, Service, ReplicaSets and pods."""
    selector = f"app.kubernetes.io/name={CANARY}"
    found = [
        f"ReplicaSet/{r.metadata.name}"
        for r in apps_api.list_namespaced_replica_set(namespace, label_selector=selector).items
    ]
    found += [f"Pod/{p.metadata.name}" for p in core_api.list_namespaced_pod(namespace, label_selector=selector).items]
    found += [
        f"Deployment/{d.metadata.name}"
        for d in apps_api.list_namespaced_deployment(namespace).items
        if d.metadata.name == CANARY
    ]
    found += [
        f"Service/{s.metadata.name}"
        for s in core_api.list_namespaced_service(namespace).items
        if s.metadata.name == CANARY
    ]
    return found
