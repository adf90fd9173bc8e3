"""Every routed URL, asked as anonymous, as a signed-in user without permission and as a permitted user.

NetBox's view tests, as one table: ``ROUTES`` names every URL with its path parameters (taken from real
rows made by ``world``) and the answer each kind of visitor gets to GET. Views that take POST are also
posted to by the anonymous visitor and by the user without permission, and nothing may change.
``test_the_table_names_every_routed_url`` fails when a URL is added without a line here, so the sweep
cannot silently shrink. Django admin is covered by one rule: every admin URL without parameters.

Pages read the inventory rows of "the bank" (tests/clusters/inventory_rows.py), on a cluster whose API
server points nowhere; the few pages that call a cluster are also asked against the sandbox
(``test_pages_that_call_the_cluster_answer_the_permitted_user_from_the_sandbox``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from kubernetes import client as k8s

from apps.accounts.models import Binding, Project, Role
from apps.ai.knowledge import storage as knowledge_storage
from apps.ai.models import Conversation, Document, Endpoint, KnowledgeBase, Message
from apps.backups.models import Backup, EtcdAccess, Kind
from apps.backups.models import Plan as BackupPlan
from apps.backups.models import Restore as BackupRestore
from apps.backups.models import Target as BackupTarget
from apps.cicd.models import BaseImage, Pipeline, Registry, ScanException, Stage
from apps.cicd.models import Run as PipelineRun
from apps.clusters.models import Cluster, Resource
from apps.compliance.models import (
    AccessReview,
    AccessReviewItem,
    ApprovalPolicy,
    ChangeRequest,
    ChangeWindow,
    SyslogDestination,
)
from apps.core import crypto
from apps.core.deferred import render as R
from apps.core.models import AuditEvent, Job
from apps.inspection.models import DatabaseTarget, HostAgent, WeeklyReport
from apps.inspection.models import Finding as InspectionFinding
from apps.inspection.models import Run as InspectionRun
from apps.inspection.models import Schedule as InspectionSchedule
from apps.inspection.models import Template as InspectionTemplate
from apps.observability.models import AlertRule, Receiver
from apps.releases.models import Canary, Release, Revision
from tests.clusters.inventory_rows import build_bank
from tests.factories import AdminFactory, JobFactory, UserFactory
from tests.helpers import (
    bind,
    create_namespace,
    delete_namespace,
    deployment,
    grant,
    login,
    running_pods,
    unique,
    wait_for,
)
from tests.releases.helpers import release_in

LOGIN = "sign-in"  # 302 to the sign-in page, with ?next=
REAUTH = "confirm password"  # 302 to the password confirmation
ADMIN_LOGIN = "admin sign-in"  # 302 to Django admin's sign-in page
HOME = "home"  # 302 to the dashboard
# Sign in and out, the language, the password confirmation: every visitor may post these.
OPEN_POSTS = ("login", "logout", "set_language", "security:reauth")


@dataclass(frozen=True)
class Route:
    """What each visitor gets for a GET of one URL; ``post``: the view takes POST (sent unauthorized too)."""

    params: Callable[[SimpleNamespace], dict] = field(default=lambda w: {})
    query: dict = field(default_factory=dict)
    anonymous: int | str = LOGIN
    stranger: int | str = 404
    permitted: int | str = 200
    post: bool = False
    post_anonymous: int | str = LOGIN
    post_stranger: int | str = 404
    calls_cluster: bool = False  # the permitted GET calls the cluster: asked against the sandbox as well


def user(w):
    return {"user_id": w.member.pk}


def cluster(w):
    return {"cluster_id": w.cluster.pk}


def release(w):
    return {"pk": w.release.pk}


def pod(w):
    return {"cluster_id": w.cluster.pk, "namespace": "payments", "name": w.pod.name}


def node(w):
    return {"cluster_id": w.cluster.pk, "name": "node-1"}


def workload(w):
    return {"cluster_id": w.cluster.pk, "kind": "deployment", "namespace": "payments", "name": "pay-api"}


def job(w):
    return {"job_id": w.job.pk}


def alert_rule(w):
    return {"cluster_id": w.cluster.pk, "pk": w.rule.pk}


def project(w):
    return {"project_id": w.project.pk}


def receiver(w):
    return {"project_id": w.project.pk, "pk": w.receiver.pk}


def inspection_run(w):
    return {"pk": w.inspection_run.pk}


def model_server(w):
    return {"pk": w.model_server.pk}


def model_endpoint(w):
    return {"pk": w.model_endpoint.pk}


def knowledge_base(w):
    return {"pk": w.knowledge_base.pk}


def knowledge_document(w):
    return {"pk": w.document.pk}


def conversation(w):
    return {"pk": w.conversation.pk}


def answer(w):
    return {"pk": w.answer.pk}


def silence(w):
    return {"cluster_id": w.cluster.pk, "silence_id": "5b0d1c3e-8f1a-4c55-9a55-2f7d6c1e0b01"}


# Open to every signed-in user: they show only what the user may see (an empty page for a stranger).
EVERY_USER = {"stranger": 200}
# login_required before require_POST: a GET is refused for its method before anything is looked up.
ACTION = {"stranger": 405, "permitted": 405, "post": True}
# capability_required before require_POST: a GET from a user without the capability is a missing page.
MANAGED_ACTION = {"stranger": 404, "permitted": 405, "post": True}

ROUTES: dict[str, Route] = {
    # Public: health, sign-in and out, language.
    "healthz": Route(anonymous=200, stranger=200, permitted=200),
    "readyz": Route(anonymous=200, stranger=200, permitted=200),
    "login": Route(anonymous=200, stranger=HOME, permitted=HOME, post=True, post_anonymous=200, post_stranger=HOME),
    "logout": Route(anonymous=405, stranger=405, permitted=405, post=True, post_anonymous=LOGIN, post_stranger=LOGIN),
    "set_language": Route(
        anonymous=HOME, stranger=HOME, permitted=HOME, post=True, post_anonymous=HOME, post_stranger=HOME
    ),
    "security:reauth": Route(**EVERY_USER, post=True, post_stranger=200),
    # The console.
    "dashboard": Route(**EVERY_USER),
    "dashboard_facts": Route(**EVERY_USER),
    "core:job_list": Route(**EVERY_USER),
    "core:job_detail": Route(job),
    "core:job_status": Route(job),
    "core:job_cancel": Route(job, **ACTION),
    # Accounts.
    "accounts:my_access": Route(**EVERY_USER, calls_cluster=True),
    # Each person's own settings: everyone may change theirs.
    "accounts:my_settings": Route(**EVERY_USER, post=True, post_stranger=200),
    "accounts:user_list": Route(),
    "accounts:user_create": Route(post=True),
    "accounts:user_detail": Route(user),
    "accounts:user_set_active": Route(user, **MANAGED_ACTION),
    "accounts:user_delete": Route(user, post=True),
    "accounts:user_reset_password": Route(user, **MANAGED_ACTION),
    "accounts:user_end_sessions": Route(user, **MANAGED_ACTION),
    "accounts:user_access": Route(user, calls_cluster=True),
    "accounts:group_list": Route(),
    "accounts:group_create": Route(post=True),
    "accounts:group_edit": Route(lambda w: {"group_id": w.group.pk}, post=True),
    "accounts:group_delete": Route(lambda w: {"group_id": w.group.pk}, **MANAGED_ACTION),
    "accounts:role_list": Route(),
    "accounts:role_create": Route(post=True),
    "accounts:role_rules_preview": Route(**MANAGED_ACTION),
    "accounts:role_edit": Route(lambda w: {"role_id": w.role.pk}, post=True),
    "accounts:role_delete": Route(lambda w: {"role_id": w.role.pk}, **MANAGED_ACTION),
    "accounts:project_list": Route(),
    "accounts:project_create": Route(post=True),
    "accounts:project_detail": Route(lambda w: {"project_id": w.project.pk}, post=True),
    "accounts:project_edit": Route(lambda w: {"project_id": w.project.pk}, post=True),
    "accounts:project_delete": Route(lambda w: {"project_id": w.project.pk}, **MANAGED_ACTION),
    "accounts:binding_list": Route(post=True),
    "accounts:binding_delete": Route(lambda w: {"binding_id": w.binding.pk}, **MANAGED_ACTION),
    "accounts:audit_list": Route(),
    "accounts:audit_export": Route(),
    # Clusters: the registry.
    "clusters:registry_add": Route(post=True),
    "clusters:registry_test": Route(**MANAGED_ACTION),
    "clusters:registry_settings": Route(cluster, post=True),
    "clusters:registry_delete": Route(cluster, post=True),
    "clusters:registry_test_cluster": Route(cluster, **MANAGED_ACTION),
    # Clusters: the inventory pages (read from the inventory rows, never from the cluster).
    "clusters:cluster_list": Route(**EVERY_USER),
    "clusters:cluster_overview": Route(cluster),
    "clusters:resource_list": Route(lambda w: {**cluster(w), "kind_slug": "pods"}),
    "clusters:resource_detail": Route(
        lambda w: {**cluster(w), "kind_slug": "deployments", "namespace": "payments", "name": "pay-api"}
    ),
    # Clusters: day-2 actions.
    "clusters:workload_scale": Route(workload, **ACTION),
    "clusters:workload_restart": Route(workload, **ACTION),
    "clusters:pod_delete": Route(pod, **ACTION),
    "clusters:node_cordon": Route(node, **ACTION),
    "clusters:node_uncordon": Route(node, **ACTION),
    "clusters:node_drain": Route(node, **ACTION),
    "clusters:node_drain_resume": Route(node, **ACTION),
    "clusters:node_drain_undo": Route(node, **ACTION),
    "clusters:encrypt_field": Route(workload, **ACTION),
    "clusters:secret_reveal": Route(
        lambda w: {**cluster(w), "kind": "secret", "namespace": "payments", "name": "db-password"}, **ACTION
    ),
    "clusters:resource_yaml": Route(workload, calls_cluster=True),
    "clusters:resource_yaml_edit": Route(workload, post=True, calls_cluster=True),
    "clusters:pod_logs": Route(pod, calls_cluster=True),
    "clusters:pod_logs_follow": Route(pod, {"container": "app"}, permitted=286, calls_cluster=True),
    "clusters:pod_logs_download": Route(pod, {"container": "app"}, calls_cluster=True),
    # Releases.
    "releases:release_list": Route(**EVERY_USER),
    "releases:release_create": Route(post=True),
    "releases:release_preview": Route(**ACTION),
    "releases:release_detail": Route(release),
    "releases:release_edit": Route(release, post=True),
    "releases:release_edit_preview": Route(release, **ACTION),
    "releases:release_deploy": Route(release, **ACTION),
    "releases:release_rollback": Route(release, **ACTION),
    "releases:release_diff": Route(release, {"a": 1, "b": 1}),
    "releases:release_delete": Route(release, **ACTION),
    "releases:canary_start": Route(release, **ACTION),
    "releases:canary_step": Route(release, **ACTION),
    "releases:canary_promote": Route(release, **ACTION),
    "releases:canary_abort": Route(release, **ACTION),
    "releases:canary_pause": Route(release, **ACTION),
    "releases:canary_resume": Route(release, **ACTION),
    # The web terminal (its websocket is the terminal service's, not a console URL).
    "terminal:terminal_page": Route(pod, post=True, calls_cluster=True),
    # Metrics: the charts cards (the sweep's cluster has no Prometheus: each card says so) and the explorer.
    "observability:cluster_metrics": Route(cluster),
    "observability:resource_metrics": Route(
        lambda w: {**cluster(w), "kind_slug": "deployments", "namespace": "payments", "name": "pay-api"}
    ),
    "observability:app_metrics": Route(lambda w: {**cluster(w), "namespace": "payments", "name": "pay-api"}),
    "observability:explorer": Route(query={"query": "up", "range": "6h"}),
    # Alert rules (written to the cluster as PrometheusRule objects; the sweep's cluster has no Prometheus).
    "observability:rules_home": Route(stranger=404),
    "observability:rule_list": Route(cluster),
    "observability:rule_create": Route(cluster, post=True),
    "observability:rule_edit": Route(alert_rule, post=True),
    "observability:rule_delete": Route(alert_rule, **ACTION),
    "observability:builtin_rules": Route(cluster, **ACTION),
    # Alerts and silences, read from each cluster's Alertmanager (the sweep's cluster has none: a sentence).
    "observability:alert_list": Route(stranger=404),
    "observability:alert_counts": Route(**EVERY_USER),
    "observability:silence_list": Route(stranger=404),
    "observability:silence_create": Route(cluster, post=True),
    "observability:silence_expire": Route(silence, **ACTION),
    # Notifications (receivers written as AlertmanagerConfig objects; the relay answers Alertmanager, not people).
    "observability:notify_home": Route(stranger=404),
    "observability:receiver_list": Route(project),
    "observability:receiver_create": Route(project, post=True),
    "observability:notify_plain_config": Route(project),
    "observability:receiver_edit": Route(receiver, post=True),
    "observability:receiver_delete": Route(receiver, **ACTION),
    "observability:receiver_test": Route(receiver, **ACTION),
    # Log search over the cluster's log store (the sweep's cluster has none: pod logs from Kubernetes instead).
    "observability:logs_search": Route(query={"namespace": "payments", "q": "error"}),
    "observability:logs_results": Route(query={"namespace": "payments", "level": "error"}),
    "observability:logs_histogram": Route(query={"namespace": "payments", "level": "error"}),
    "observability:logs_context": Route(
        query={"namespace": "payments", "stream_id": "0", "time": "2026-01-01T00:00:00Z"}
    ),
    "observability:logs_tail": Route(query={"namespace": "payments", "after": "2026-01-01T00:00:00Z"}),
    "observability:logs_download": Route(query={"namespace": "payments", "limit": "1000"}),
    # Traces read from the cluster's Jaeger (the sweep's cluster has none: a sentence).
    "observability:trace_search": Route(query={"service": "web", "namespace": "payments", "min_duration": "100ms"}),
    "observability:trace_dependencies": Route(query={"range": "1h"}),
    "observability:trace_detail": Route(lambda w: {**cluster(w), "trace_id": "0123456789abcdef0123456789abcdef"}),
    # The observability stack's status (the sweep's cluster has nothing set: each system says so).
    "observability:stack_status": Route(stranger=404),
    # Inspection: runs, their reports and PDFs, templates, schedules, hosts and databases, the weekly reports.
    "inspection:home": Route(),
    "inspection:run_start": Route(**ACTION),
    "inspection:run_detail": Route(inspection_run),
    "inspection:run_status": Route(inspection_run, permitted=200),
    "inspection:run_pdf": Route(inspection_run),
    "inspection:template_list": Route(),
    "inspection:template_create": Route(post=True),
    "inspection:template_edit": Route(lambda w: {"pk": w.inspection_template.pk}, post=True),
    "inspection:template_copy": Route(lambda w: {"pk": w.inspection_template.pk}, **ACTION),
    "inspection:template_delete": Route(lambda w: {"pk": w.inspection_template.pk}, **ACTION),
    "inspection:schedule_list": Route(),
    "inspection:schedule_create": Route(post=True),
    "inspection:schedule_edit": Route(lambda w: {"pk": w.inspection_schedule.pk}, post=True),
    "inspection:schedule_delete": Route(lambda w: {"pk": w.inspection_schedule.pk}, **ACTION),
    "inspection:schedule_run": Route(lambda w: {"pk": w.inspection_schedule.pk}, **ACTION),
    "inspection:target_list": Route(),
    "inspection:agent_create": Route(**ACTION),
    "inspection:agent_delete": Route(lambda w: {"pk": w.agent.pk}, **ACTION),
    "inspection:database_create": Route(**ACTION),
    "inspection:database_delete": Route(lambda w: {"pk": w.database.pk}, **ACTION),
    "inspection:weekly_list": Route(),
    "inspection:weekly_create": Route(**ACTION),
    "inspection:weekly_detail": Route(lambda w: {"pk": w.weekly.pk}),
    "inspection:weekly_pdf": Route(lambda w: {"pk": w.weekly.pk}),
    # CI/CD: pipelines and runs.
    "cicd:home": Route(),
    "cicd:pipeline_create": Route(post=True),
    "cicd:pipeline_detail": Route(lambda w: {"pk": w.pipeline.pk}),
    "cicd:pipeline_edit": Route(lambda w: {"pk": w.pipeline.pk}, post=True),
    "cicd:pipeline_delete": Route(lambda w: {"pk": w.pipeline.pk}, **ACTION),
    "cicd:pipeline_upload": Route(lambda w: {"pk": w.pipeline.pk}, **ACTION),
    "cicd:pipeline_run": Route(lambda w: {"pk": w.pipeline.pk}, **ACTION),
    "cicd:pipeline_webhook_secret": Route(lambda w: {"pk": w.pipeline.pk}, **ACTION),
    "cicd:run_detail": Route(lambda w: {"pk": w.pipeline_run.pk}),
    "cicd:run_live": Route(lambda w: {"pk": w.pipeline_run.pk}),
    "cicd:run_cancel": Route(lambda w: {"pk": w.pipeline_run.pk}, **ACTION),
    "cicd:run_rerun": Route(lambda w: {"pk": w.pipeline_run.pk}, **ACTION),
    "cicd:run_scan": Route(lambda w: {"pk": w.pipeline_run.pk}),
    # No scan report file in the world: a missing artefact is a missing page, for everyone.
    "cicd:run_artifact": Route(lambda w: {"pk": w.pipeline_run.pk, "kind": "scan"}, permitted=404),
    # The push webhook: signed with the pipeline's secret, never a session; a GET is refused for its method.
    "cicd:webhook": Route(
        lambda w: {"pk": w.pipeline.pk},
        anonymous=405,
        stranger=405,
        permitted=405,
        post=True,
        post_anonymous=403,
        post_stranger=403,
    ),
    # CI/CD: the catalogue.
    "cicd:registry_list": Route(**EVERY_USER),
    "cicd:registry_create": Route(post=True),
    "cicd:registry_detail": Route(lambda w: {"pk": w.registry.pk}),
    "cicd:registry_edit": Route(lambda w: {"pk": w.registry.pk}, post=True),
    "cicd:registry_delete": Route(lambda w: {"pk": w.registry.pk}, **MANAGED_ACTION),
    "cicd:base_create": Route(lambda w: {"project": w.project.pk}, **MANAGED_ACTION),
    "cicd:base_withdraw": Route(lambda w: {"pk": w.base.pk}, **MANAGED_ACTION),
    "cicd:policy_list": Route(**EVERY_USER),
    "cicd:policy_edit": Route(lambda w: {"project": w.project.pk}, **MANAGED_ACTION),
    "cicd:exception_create": Route(lambda w: {"project": w.project.pk}, **MANAGED_ACTION),
    "cicd:exception_revoke": Route(lambda w: {"pk": w.scan_exception.pk}, **MANAGED_ACTION),
    "cicd:vulndb": Route(post=True),
    # Backups: each plan's freshness, etcd snapshots and the runbook, the plan forms, the storage targets, etcd access,
    # Velero's namespace and Kubemate's database. The sweep's cluster names no Velero namespace: its Velero pages are
    # missing (404), as for a cluster without Velero.
    "backups:home": Route(),
    "backups:cluster": Route(cluster),
    "backups:runbook": Route(cluster),
    "backups:plan_create": Route(cluster, post=True),
    "backups:cluster_velero": Route(cluster, permitted=404),
    "backups:velero_backup": Route(cluster, permitted=404, post=True),
    "backups:velero_restore": Route(lambda w: {**cluster(w), "name": "nightly"}, permitted=404, post=True),
    "backups:velero_backup_log": Route(lambda w: {**cluster(w), "name": "nightly"}, permitted=404),
    "backups:velero_restore_log": Route(lambda w: {**cluster(w), "name": "nightly"}, permitted=404),
    "backups:plan_edit": Route(lambda w: {"pk": w.backup_plan.pk}, post=True),
    "backups:plan_delete": Route(lambda w: {"pk": w.backup_plan.pk}, **MANAGED_ACTION),
    "backups:plan_run": Route(lambda w: {"pk": w.backup_plan.pk}, **MANAGED_ACTION),
    "backups:platform": Route(),
    "backups:target_create": Route(post=True),
    "backups:target_edit": Route(lambda w: {"pk": w.backup_target.pk}, post=True),
    "backups:target_delete": Route(lambda w: {"pk": w.backup_target.pk}, **MANAGED_ACTION),
    "backups:target_check": Route(lambda w: {"pk": w.backup_target.pk}, **MANAGED_ACTION),
    "backups:etcd_access": Route(cluster, post=True),
    "backups:velero_namespace": Route(cluster, **MANAGED_ACTION),
    "backups:database_plan_create": Route(post=True),
    # Compliance: audit forwarding (platform administrators).
    "compliance:destination_list": Route(),
    "compliance:destination_create": Route(post=True),
    "compliance:destination_edit": Route(lambda w: {"pk": w.syslog_destination.pk}, post=True),
    "compliance:destination_delete": Route(lambda w: {"pk": w.syslog_destination.pk}, **MANAGED_ACTION),
    "compliance:destination_test": Route(lambda w: {"pk": w.syslog_destination.pk}, **MANAGED_ACTION),
    # Change requests: everyone sees their own list; a request is seen by its maker and approvers (auditors).
    "compliance:change_list": Route(**EVERY_USER),
    "compliance:change_detail": Route(lambda w: {"pk": w.change_request.pk}),
    "compliance:change_approve": Route(lambda w: {"pk": w.change_request.pk}, **ACTION),
    "compliance:change_reject": Route(lambda w: {"pk": w.change_request.pk}, **ACTION),
    "compliance:change_cancel": Route(lambda w: {"pk": w.change_request.pk}, **ACTION),
    "compliance:policy_list": Route(),
    "compliance:policy_create": Route(post=True),
    "compliance:policy_edit": Route(lambda w: {"pk": w.approval_policy.pk}, post=True),
    "compliance:policy_delete": Route(lambda w: {"pk": w.approval_policy.pk}, **ACTION),
    "compliance:window_create": Route(post=True),
    "compliance:window_edit": Route(lambda w: {"pk": w.change_window.pk}, post=True),
    "compliance:window_delete": Route(lambda w: {"pk": w.change_window.pk}, **ACTION),
    # Access reviews: the platform's reviewers (and a project's own reviewer) only.
    "compliance:review_list": Route(**EVERY_USER),
    "compliance:review_detail": Route(lambda w: {"pk": w.access_review.pk}),
    "compliance:review_start": Route(lambda w: {"project_id": w.project.pk}, **ACTION),
    "compliance:review_decide": Route(lambda w: {"item_id": w.access_review_item.pk}, **ACTION),
    "compliance:review_settings": Route(lambda w: {"project_id": w.project.pk}, post=True),
    # Single sign-on is off in the sweep: both pages are missing for everyone.
    "oidc:authenticate": Route(anonymous=404, stranger=404, permitted=404),
    "oidc:callback": Route(anonymous=404, stranger=404, permitted=404),
    # AI.
    "ai:home": Route(),
    "ai:gpu_home": Route(),
    "ai:gpu_cluster": Route(cluster),
    "ai:gpu_metrics": Route(cluster),
    "ai:gpu_quotas": Route(cluster, calls_cluster=True),
    "ai:server_list": Route(),
    "ai:server_new": Route(post=True),
    "ai:server_preview": Route(**ACTION),
    "ai:server_detail": Route(model_server),
    "ai:server_live": Route(model_server, {"part": "models"}),
    "ai:server_check": Route(model_server, **ACTION),
    "ai:server_delete": Route(model_server, **ACTION),
    "ai:endpoint_new": Route(post=True),
    "ai:endpoint_edit": Route(model_endpoint, post=True),
    "ai:endpoint_delete": Route(model_endpoint, **ACTION),
    "ai:knowledge_list": Route(),
    "ai:knowledge_new": Route(post=True),
    "ai:knowledge_search": Route(),
    "ai:knowledge_detail": Route(knowledge_base),
    "ai:knowledge_edit": Route(knowledge_base, post=True),
    "ai:knowledge_delete": Route(knowledge_base, **ACTION),
    "ai:knowledge_reindex": Route(knowledge_base, **ACTION),
    "ai:knowledge_progress": Route(knowledge_base, permitted=286),  # nothing being indexed: the poll stops
    "ai:document_upload": Route(knowledge_base, **ACTION),
    "ai:document_detail": Route(knowledge_document),
    "ai:document_download": Route(knowledge_document),
    "ai:document_reindex": Route(knowledge_document, **ACTION),
    "ai:document_delete": Route(knowledge_document, **ACTION),
    "ai:assistant": Route(),
    "ai:assistant_ask": Route(**ACTION),
    "ai:conversation": Route(conversation),
    "ai:conversation_ask": Route(conversation, **ACTION),
    "ai:conversation_rename": Route(conversation, **ACTION),
    "ai:conversation_delete": Route(conversation, **ACTION),
    "ai:message_part": Route(answer),
    "ai:message_stream": Route(answer),
    "observability:notify_relay": Route(
        lambda w: {"receiver_id": w.receiver.pk},
        anonymous=405,
        stranger=405,
        permitted=405,
        post=True,
        post_anonymous=401,
        post_stranger=401,
    ),
}
ADMIN_NAMESPACE = "admin"
# What the POSTs of the sweep must not change: every row a person manages through the console.
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
    Receiver,
    InspectionRun,
    InspectionTemplate,
    InspectionSchedule,
    HostAgent,
    DatabaseTarget,
    WeeklyReport,
    Registry,
    BaseImage,
    Pipeline,
    PipelineRun,
    ScanException,
    BackupTarget,
    SyslogDestination,
    BackupPlan,
    Backup,
    BackupRestore,
    EtcdAccess,
    Endpoint,
    KnowledgeBase,
    Document,
    Conversation,
    Message,
)


def routed_names() -> dict[str, list[str]]:
    """Every named URL, by its full name, with the names of its path parameters."""
    found: dict[str, list[str]] = {}

    def walk(resolver: URLResolver, namespace: str, converters: list[str]) -> None:
        for entry in resolver.url_patterns:
            params = converters + list(entry.pattern.regex.groupindex)
            if isinstance(entry, URLResolver):
                walk(entry, f"{namespace}{entry.namespace}:" if entry.namespace else namespace, params)
            elif isinstance(entry, URLPattern) and entry.name:
                found[f"{namespace}{entry.name}"] = params

    walk(get_resolver(), "", [])
    return found


def answer(response) -> int | str:
    """The status code, or which page a redirect leads to."""
    if response.status_code != 302:
        return response.status_code
    location = response["Location"]
    for target, word in (
        (reverse("admin:login"), ADMIN_LOGIN),
        (reverse("login"), LOGIN),
        (reverse("security:reauth"), REAUTH),
    ):
        if location.startswith(target):
            return word
    return HOME if location == reverse("dashboard") else location


@pytest.fixture
def world(db):
    """The rows the parameters come from: the bank's cluster and projects, a release, a job, people and grants."""
    bank = build_bank()
    admin = AdminFactory()
    member = UserFactory()
    w = SimpleNamespace(
        cluster=bank["cluster"],
        project=bank["payments"],
        pod=bank["pods"][0],
        release=release_in(bank["payments"]),
        job=JobFactory(actor=admin),
        member=member,
        group=Group.objects.create(name="operators"),
        role=Role.objects.create(slug="reader", name_en="Reader", name_zh="读者", capabilities=["workloads.view"]),
        binding=grant(member, "viewer", project=bank["payments"]),
        rule=AlertRule.objects.create(
            cluster=bank["cluster"],
            namespace="payments",
            name="pay-memory",
            alert="PayMemoryHigh",
            expr='container_memory_working_set_bytes{namespace="payments"} > 1e9',
            summary="Pay uses too much memory.",
        ),
        receiver=Receiver.objects.create(
            project=bank["payments"],
            name="pay-mail",
            kind="email",
            options={"to": ["ops@bank.example"], "from": "am@bank.example", "smarthost": "smtp.bank.example:25"},
        ),
    )
    inspection_world(w, admin)
    cicd_world(w, admin)
    backups_world(w, admin)
    # A syslog receiver that answers nothing (port 9): a test event sent there fails, it never leaves the machine.
    w.syslog_destination = SyslogDestination.objects.create(name="siem", host="127.0.0.1", port=9, transport="tcp")
    w.approval_policy = ApprovalPolicy.objects.create(
        name="prod", cluster_labels={"env": "prod"}, actions=["releases.deploy"]
    )
    w.change_window = ChangeWindow.objects.create(
        name="weeknights",
        cluster_labels={"env": "prod"},
        weekdays=[0, 1, 2, 3],
        start_time=datetime.time(22, 0),
        end_time=datetime.time(23, 0),
    )
    w.access_review = AccessReview.objects.create(project=w.project, period="2026-Q4", due_at=timezone.now())
    w.access_review_item = AccessReviewItem.objects.create(
        review=w.access_review, subject=w.member.username, role="Developer", capabilities=["workloads.view"]
    )
    w.change_request = ChangeRequest.objects.create(
        action="releases.deploy",
        maker=w.member,
        cluster=w.cluster,
        namespace="payments",
        kind="Release",
        name="pay-api",
        summary="Deploy pay-api",
        manifests=[{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pay-api"}}],
        manifests_hash="0" * 64,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    ai_world(w, admin)
    w.names = [w.cluster.name, w.release.name, w.pod.name, R(w.job.title), w.member.username, w.role.slug]
    w.browsers = {
        "anonymous": Client(),
        "stranger": login(Client(), UserFactory(), recent_auth=True),
        "permitted": login(Client(), admin, recent_auth=True),
    }
    return w


def inspection_world(w, admin) -> None:
    """A finished inspection run with a finding, a template, a schedule, a host agent, a database, a weekly report."""
    template = InspectionTemplate.objects.create(slug="sweep", name="Sweep", checks=["cluster."])
    w.inspection_template = template
    w.inspection_run = InspectionRun.objects.create(
        template=template, actor=admin, status=InspectionRun.Status.FINISHED, finished_at=timezone.now()
    )
    w.inspection_run.clusters.set([w.cluster])
    InspectionFinding.objects.create(
        run=w.inspection_run,
        check_id="cluster.pods.crashloop",
        domain="cluster",
        severity="critical",
        target=f"cluster:{w.cluster.name}",
        cluster=w.cluster,
        namespace="lending",
        subject="Pod lending/loan-api-55d-x",
        message="crash looping",
        fingerprint="f" * 64,
        change="new",
    )
    w.inspection_schedule = InspectionSchedule.objects.create(
        name="Morning", template=template, cron="0 7 * * *", owner=admin
    )
    w.agent = HostAgent.objects.create(name="node-1", url="https://127.0.0.1:9", token_encrypted="x")
    w.database = DatabaseTarget.objects.create(
        name="orders", engine="postgresql", host="127.0.0.1", port=9, database="orders", username="ro"
    )
    w.weekly = WeeklyReport.objects.create(period_start=timezone.now(), period_end=timezone.now(), actor=admin)


def cicd_world(w, admin) -> None:
    """A registry of the cluster, an approved base of Payments, a jar pipeline with a blocked run, an exception."""
    w.registry = Registry.objects.create(name="bank-harbor", host="127.0.0.1:9", cluster=w.cluster)
    w.base = BaseImage.objects.create(
        project=w.project, name="jre17", reference="127.0.0.1:9/base/jre:17", digest="sha256:" + "a" * 64
    )
    w.pipeline = Pipeline.objects.create(
        project=w.project,
        namespace="payments",
        name="pay-build",
        base_image=w.base,
        registry=w.registry,
        repository="pay/api",
        webhook_secret_encrypted="",
    )
    w.pipeline_run = PipelineRun.objects.create(
        pipeline=w.pipeline, number=1, actor=admin, status=PipelineRun.Status.BLOCKED, finished_at=timezone.now()
    )
    Stage.objects.bulk_create(Stage(run=w.pipeline_run, key=k, position=n) for n, k in enumerate(Stage.ORDER))
    w.scan_exception = ScanException.objects.create(
        project=w.project,
        vuln_id="CVE-2021-44228",
        reason="vendor hotfix applied",
        expires_at=timezone.now(),
        created_by=admin,
    )


def backups_world(w, admin) -> None:
    """A storage target, the cluster's etcd plan with a good snapshot, Kubemate's database plan."""
    w.backup_target = BackupTarget.objects.create(
        name=w.cluster.name,
        endpoint="http://127.0.0.1:9",
        bucket="backups",
        access_key_encrypted=crypto.encrypt("key"),
        secret_key_encrypted=crypto.encrypt("secret"),
    )
    w.backup_plan = BackupPlan.objects.create(
        kind=Kind.ETCD, name="etcd", cluster=w.cluster, target=w.backup_target, cron="0 2 * * *", created_by=admin
    )
    Backup.objects.create(
        kind=Kind.ETCD,
        plan=w.backup_plan,
        cluster=w.cluster,
        target=w.backup_target,
        name=f"{w.cluster.name}-etcd",
        status=Backup.Status.SUCCEEDED,
        key=f"etcd/{w.cluster.name}/{w.cluster.name}-etcd.db.gz.sealed",
        size_bytes=4096,
        sha256="c" * 64,
        revision=1234,
        total_keys=321,
        actor=admin,
        finished_at=timezone.now(),
    )
    BackupPlan.objects.create(kind=Kind.DATABASE, name="db", target=w.backup_target, created_by=admin)


def ai_world(w, admin) -> None:
    """A model server deployed as the Payments release, an external endpoint, a knowledge base with a document."""
    w.model_server = Endpoint.objects.create(
        name="pay-llm",
        kind=Endpoint.Kind.OLLAMA,
        project=w.project,
        release=w.release,
        base_url="http://127.0.0.1:9",
        created_by=admin,
    )
    w.model_endpoint = Endpoint.objects.create(name="bank-gateway", base_url="http://127.0.0.1:9/v1", created_by=admin)
    w.knowledge_base = KnowledgeBase.objects.create(project=w.project, name="Runbooks", created_by=admin)
    stored = knowledge_storage.keep(w.knowledge_base, knowledge_storage.spool([b"Restart the pods."], name="notes.txt"))
    w.document = Document.objects.create(
        knowledge_base=w.knowledge_base,
        name="notes.txt",
        content_type="text/plain",
        size=17,
        storage=stored.storage,
        storage_key=stored.key,
        status=Document.Status.INDEXED,
        uploaded_by=admin,
    )
    w.conversation = Conversation.objects.create(user=admin, title="Restarts", endpoint=w.model_endpoint, model="m")
    Message.objects.create(conversation=w.conversation, role=Message.Role.USER, text="How do I restart Pay?")
    w.answer = Message.objects.create(
        conversation=w.conversation,
        role=Message.Role.ASSISTANT,
        text="Restart the pods [1].",
        model="m",
        cache_hit=False,
        citations=[
            {
                "n": 1,
                "document": w.document.pk,
                "knowledge_base": w.knowledge_base.pk,
                "knowledge_base_name": "Runbooks",
                "name": "notes.txt",
                "position": 0,
                "score": 0.9,
                "excerpt": "Restart the pods.",
            }
        ],
    )


def url_of(name: str, w) -> str:
    return reverse(name, kwargs=ROUTES[name].params(w))


def snapshot() -> dict:
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in GUARDED}


def test_the_table_names_every_routed_url():
    routed = routed_names()
    console = {name for name in routed if not name.startswith(f"{ADMIN_NAMESPACE}:")}

    assert sorted(console - set(ROUTES)) == [], "a URL without a line in ROUTES"
    assert sorted(set(ROUTES) - console) == [], "a line in ROUTES for a URL that no longer exists"
    assert {name: sorted(ROUTES[name].params(_EVERY_PARAMETER)) for name in ROUTES} == {
        name: sorted(routed[name]) for name in ROUTES
    }


class _EveryParameter(SimpleNamespace):
    """Stands in for the world when only the parameter names matter."""

    def __getattr__(self, name):
        return SimpleNamespace(pk=1, name="x")


_EVERY_PARAMETER = _EveryParameter()


@pytest.mark.parametrize("visitor", ["anonymous", "stranger", "permitted"])
def test_every_url_answers_each_visitor_a_get_as_the_table_says(world, visitor):
    browser = world.browsers[visitor]
    expected = {name: getattr(route, visitor) for name, route in ROUTES.items()}

    responses = {name: browser.get(url_of(name, world), ROUTES[name].query) for name in ROUTES}

    assert {name: answer(response) for name, response in responses.items()} == expected
    if visitor == "stranger":  # what every signed-in user may open shows nothing of the world to a stranger
        shown = {name: r for name, r in responses.items() if r.status_code == 200}
        seen = {name: [word for word in world.names if word in body(r).decode()] for name, r in shown.items()}
        assert {name: words for name, words in seen.items() if words} == {}


@pytest.mark.parametrize("visitor", ["anonymous", "stranger"])
def test_a_post_without_permission_is_refused_and_changes_nothing(world, visitor):
    browser = world.browsers[visitor]
    posted = [name for name, route in ROUTES.items() if route.post]
    expected = {name: getattr(ROUTES[name], f"post_{visitor}") for name in posted}
    refused = [name for name in posted if name not in OPEN_POSTS]
    open_to_all = sorted(OPEN_POSTS, key=lambda name: name == "logout")  # signing out ends the session: last
    before, last_event = snapshot(), AuditEvent.objects.order_by("seq").last().seq

    answers = {name: answer(browser.post(url_of(name, world))) for name in refused}
    after = snapshot()
    events = list(AuditEvent.objects.filter(seq__gt=last_event).values_list("action", "result"))
    answers |= {name: answer(browser.post(url_of(name, world))) for name in open_to_all}

    assert answers == expected
    assert after == before
    # Refused webhook deliveries are security events: audited as denied (the SIEM sees them); nothing else is.
    assert [e for e in events if e[0] != "cicd.webhook.refused"] == []
    assert events.count(("cicd.webhook.refused", "denied")) == 1


# What staff get from admin pages that are not forms or lists: rows only Kubemate writes cannot be added by hand.
ADMIN_EXCEPTIONS = {
    "admin:login": "/admin/",
    "admin:logout": 405,
    "admin:autocomplete": 403,  # asks for the field it completes
    "admin:axes_accessattempt_add": 403,
    "admin:axes_accesslog_add": 403,
    "admin:axes_accessfailurelog_add": 403,
    "admin:core_job_add": 403,
}


def test_every_admin_page_without_parameters_answers_only_staff(world):
    names = [name for name, params in routed_names().items() if name.startswith("admin:") and not params]
    urls = {name: reverse(name) for name in names}

    answers = {
        visitor: {name: answer(world.browsers[visitor].get(url)) for name, url in urls.items()}
        for visitor in ("anonymous", "stranger", "permitted")
    }

    assert len(names) > 10
    assert answers["anonymous"] == dict.fromkeys(names, ADMIN_LOGIN) | {"admin:login": 200, "admin:logout": "/admin/"}
    assert answers["stranger"] == dict.fromkeys(names, ADMIN_LOGIN) | {"admin:login": 200, "admin:logout": "/admin/"}
    assert answers["permitted"] == dict.fromkeys(names, 200) | ADMIN_EXCEPTIONS


@pytest.fixture
def live_world(sandbox, registered_cluster, admin_user):
    """The sandbox, with a namespace holding Deployment "web" and its running pod, for pages that call it."""
    namespace = unique("sweep")
    create_namespace(sandbox, namespace)
    k8s.AppsV1Api(sandbox.api_client).create_namespaced_deployment(namespace, deployment("web"))
    pod_name = wait_for(lambda: running_pods(sandbox, namespace, "app=web"))[0].metadata.name
    bind(admin_user, registered_cluster, admin_user, "cluster-admin")
    w = SimpleNamespace(
        cluster=registered_cluster,
        member=UserFactory(),
        pod=pod_name,
        browser=login(Client(), admin_user, recent_auth=True),
        namespace=namespace,
    )
    yield w
    delete_namespace(sandbox, namespace)


def live_pod(w):
    return {"cluster_id": w.cluster.pk, "namespace": w.namespace, "name": w.pod}


# The sandbox's objects for the pages that call the cluster; the other parameters come from ROUTES.
LIVE = {
    "clusters:pod_logs": (live_pod, {}),
    "clusters:pod_logs_follow": (live_pod, {"container": "web"}),
    "clusters:pod_logs_download": (live_pod, {"container": "web"}),
    "terminal:terminal_page": (live_pod, {}),
    "clusters:resource_yaml": (
        lambda w: {**cluster(w), "kind": "deployment", "namespace": w.namespace, "name": "web"},
        {},
    ),
    "clusters:resource_yaml_edit": (
        lambda w: {**cluster(w), "kind": "deployment", "namespace": w.namespace, "name": "web"},
        {},
    ),
}


@pytest.mark.sandbox
def test_pages_that_call_the_cluster_answer_the_permitted_user_from_the_sandbox(live_world):
    names = [name for name, route in ROUTES.items() if route.calls_cluster]
    asked = {name: LIVE.get(name, (ROUTES[name].params, ROUTES[name].query)) for name in names}

    responses = {
        name: live_world.browser.get(reverse(name, kwargs=params(live_world)), query)
        for name, (params, query) in asked.items()
    }

    assert {name: answer(r) for name, r in responses.items()} == dict.fromkeys(names, 200)
    assert [name for name, r in responses.items() if any(mark in body(r) for mark in ERROR_MARKS)] == []


# How the pages above say that the cluster refused or could not be reached.
ERROR_MARKS = (
    b'data-testid="log-error"',
    b'data-testid="yaml-error"',
    b'data-testid="terminal-error"',
    b'class="alert alert-warning mb-0"',
)


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content
