"""Cross-site request forgery: no routed URL takes a POST without the CSRF token (issue 11).

A signed-in superuser who has just confirmed their password posts to every routed URL without a
token, the way a page on another site would make their browser post: permission is never what
refuses it, so each answer must be Django's CSRF refusal (403, logged by ``django.security.csrf``)
and nothing may change. Every URL is posted to, not only those whose view takes POST: the CSRF
middleware answers before the view runs, whatever methods the view takes. And no view in the
URLconf may be marked ``csrf_exempt``.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.accounts.models import Binding, Project, Role
from apps.backups.models import Backup, EtcdAccess
from apps.backups.models import Plan as BackupPlan
from apps.backups.models import Restore as BackupRestore
from apps.backups.models import Target as BackupTarget
from apps.clusters.models import Cluster, Resource
from apps.core.models import AuditEvent, Job
from apps.releases.models import Canary, Release, Revision
from tests.clusters.inventory_rows import build_bank
from tests.factories import AdminFactory, JobFactory, UserFactory
from tests.helpers import grant, login
from tests.releases.helpers import release_in

# Views allowed to take a POST without a token. A URL here needs a reason next to it.
CSRF_EXEMPT_ALLOWED: set[str] = {
    # Alertmanager posts robot receivers' alerts here: no session, no cookie; a per-receiver bearer token
    # (compared with hmac.compare_digest) is what authorizes it, and it changes nothing in Kubemate.
    "observability:notify_relay",
    # A git server posts push events here: no session, no cookie; the HMAC-SHA256 of the body with the pipeline's
    # own secret (compared with hmac.compare_digest) is checked before anything is read, and a push only starts a
    # run as the pipeline's configured webhook owner.
    "cicd:webhook",
}
GUARDED = (
    get_user_model(),
    Group,
    Role,
    Project,
    Binding,
    Cluster,
    Resource,
    Release,
    Revision,
    Canary,
    Job,
    # Backups' URLs take the parameters above (cluster_id, pk, name): nothing may be created or changed there either.
    BackupTarget,
    BackupPlan,
    Backup,
    BackupRestore,
    EtcdAccess,
)


def routed() -> dict[str, tuple[list[str], object]]:
    """Every named URL by its full name: the names of its path parameters and its view."""
    found: dict[str, tuple[list[str], object]] = {}

    def walk(resolver: URLResolver, namespace: str, params: list[str]) -> None:
        for entry in resolver.url_patterns:
            names = params + list(entry.pattern.regex.groupindex)
            if isinstance(entry, URLResolver):
                walk(entry, f"{namespace}{entry.namespace}:" if entry.namespace else namespace, names)
            elif isinstance(entry, URLPattern) and entry.name:
                found[f"{namespace}{entry.name}"] = (names, entry.callback)

    walk(get_resolver(), "", [])
    return found


def unwrapped(view) -> list:
    """The view and everything under it: decorated functions (``__wrapped__``) and a class view's handlers."""
    seen, todo = [], [view]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.append(getattr(item, "__wrapped__", None))
        todo.append(getattr(item, "__func__", None))
        view_class = getattr(item, "view_class", None)
        if view_class is not None:
            todo.extend(getattr(view_class, m, None) for m in ["dispatch", *view_class.http_method_names])
    return seen


def test_no_view_is_csrf_exempt():
    exempt = sorted(
        name
        for name, (_params, view) in routed().items()
        if any(getattr(f, "csrf_exempt", False) for f in unwrapped(view))
    )
    assert exempt == sorted(CSRF_EXEMPT_ALLOWED)


@pytest.fixture
def world(db):
    """Real rows for every path parameter: the bank's cluster and project, a release, a job, people, grants."""
    bank = build_bank()
    member = UserFactory()
    return SimpleNamespace(
        admin=AdminFactory(),
        cluster=bank["cluster"],
        project=bank["payments"],
        pod=bank["pods"][0],
        release=release_in(bank["payments"]),
        job=JobFactory(),
        member=member,
        group=Group.objects.create(name="operators"),
        role=Role.objects.create(slug="reader", name_en="Reader", name_zh="读者", capabilities=["workloads.view"]),
        binding=grant(member, "viewer", project=bank["payments"]),
    )


def parameters(url_name: str, names: list[str], w) -> dict:
    """Path parameters naming real objects: the pod for pod URLs, node-1 for node URLs, else Deployment pay-api."""
    short = url_name.rsplit(":", 1)[-1]
    object_name = w.pod.name if short.startswith("pod_") else "node-1" if short.startswith("node_") else "pay-api"
    values = {
        "cluster_id": w.cluster.pk,
        "user_id": w.member.pk,
        "pk": w.release.pk,
        "job_id": w.job.pk,
        "group_id": w.group.pk,
        "role_id": w.role.pk,
        "project_id": w.project.pk,
        "project": w.project.pk,
        "binding_id": w.binding.pk,
        "item_id": w.release.pk,  # refused for its missing token before anything is looked up
        "silence_id": "5b0d1c3e-8f1a-4c55-9a55-2f7d6c1e0b01",
        "trace_id": "0123456789abcdef0123456789abcdef",
        "kind": "deployment",
        "kind_slug": "deployments",
        "namespace": "payments",
        "name": object_name,
    }
    unknown = [n for n in names if n not in values]
    assert unknown == [], f"{url_name}: give the parameters {unknown} a value here"
    return {n: values[n] for n in names}


def urls(w) -> dict[str, str]:
    """Every console URL and every Django admin URL without parameters."""
    return {
        name: reverse(name, kwargs=parameters(name, params, w))
        for name, (params, _view) in routed().items()
        if (not name.startswith("admin:") or not params) and name not in CSRF_EXEMPT_ALLOWED
    }


def snapshot() -> dict:
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in GUARDED}


def test_a_post_without_the_csrf_token_is_refused_everywhere_and_changes_nothing(world, caplog, hostile_inputs):
    browser = login(Client(enforce_csrf_checks=True), world.admin, recent_auth=True)
    targets = urls(world)
    logout = reverse("logout")  # signing out ends the session: last
    order = sorted(targets, key=lambda name: targets[name] == logout)
    before, last_event = snapshot(), AuditEvent.objects.order_by("seq").last().seq

    with caplog.at_level(logging.WARNING, logger="django.security.csrf"):
        answers = {name: browser.post(targets[name], {"replicas": 0}).status_code for name in order}

    assert len(targets) > 60
    hostile_inputs(len(targets))
    assert answers == dict.fromkeys(targets, 403)
    refused = {r.args[1] for r in caplog.records if r.name == "django.security.csrf"}
    assert sorted(name for name, url in targets.items() if url not in refused) == []
    assert snapshot() == before
    assert list(AuditEvent.objects.filter(seq__gt=last_event).values_list("action", "result")) == []


def test_the_same_post_with_the_token_gets_through(world):
    """The refusals above are the token's: with one, the same browser's post reaches the view."""
    browser = login(Client(enforce_csrf_checks=True), world.admin, recent_auth=True)
    token = _get_new_csrf_string()
    browser.cookies[settings.CSRF_COOKIE_NAME] = token

    response = browser.post(reverse("set_language"), {"language": "zh-hans", "next": "/"}, HTTP_X_CSRFTOKEN=token)

    assert (response.status_code, response["Location"]) == (302, "/")
