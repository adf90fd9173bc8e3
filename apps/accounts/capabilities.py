"""Capabilities: one per console action, and the Kubernetes rules each one needs.

This table is the single place that says what a button means in Kubernetes
RBAC. A role's ClusterRole (``kubemate:<role>``) is the union of the rules of
its capabilities, so the console's button decision and the cluster's own
answer agree. Capabilities marked ``platform`` act on Kubemate itself (users,
audit) and need no Kubernetes rule; every other capability must list rules,
which tests/accounts/test_capabilities.py checks.

Scopes: a capability with ``cluster_wide=True`` acts on cluster-scoped objects
(nodes) and is granted through a ClusterRoleBinding even when the role is bound
to a project, only if bound at cluster or platform scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Rule:
    """One Kubernetes PolicyRule."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"apiGroups": list(self.api_groups), "resources": list(self.resources), "verbs": list(self.verbs)}


@dataclass(frozen=True)
class Capability:
    code: str
    domain: str
    label: object
    rules: tuple[Rule, ...] = field(default_factory=tuple)
    platform: bool = False
    cluster_wide: bool = False
    dangerous: bool = False


# The codes, stored in roles and projected into RBAC: name them through these constants, so a typo fails
# at import rather than when a person presses a button.
WORKLOADS_VIEW = "workloads.view"
WORKLOADS_SCALE = "workloads.scale"
WORKLOADS_RESTART = "workloads.restart"
PODS_DELETE = "pods.delete"
PODS_LOGS = "pods.logs"
PODS_EXEC = "pods.exec"
YAML_EDIT = "yaml.edit"
SECRETS_VIEW_METADATA = "secrets.view_metadata"
SECRETS_READ = "secrets.read"
NODES_VIEW = "nodes.view"
NODES_CORDON = "nodes.cordon"
NODES_DRAIN = "nodes.drain"
RELEASES_DEPLOY = "releases.deploy"
RELEASES_ROLLBACK = "releases.rollback"
RELEASES_CANARY = "releases.canary"
METRICS_VIEW = "metrics.view"
METRICS_QUERY = "metrics.query"
ALERTS_VIEW = "alerts.view"
ALERTS_SILENCE = "alerts.silence"
ALERTS_RULES = "alerts.rules"
ALERTS_NOTIFY = "alerts.notify"
LOGS_VIEW = "logs.view"
LOGS_QUERY = "logs.query"
TRACES_VIEW = "traces.view"
INSPECTION_VIEW = "inspection.view"
INSPECTION_RUN = "inspection.run"
INSPECTION_SCHEDULE = "inspection.schedule"
INSPECTION_TARGETS = "inspection.targets"
CICD_VIEW = "cicd.view"
CICD_RUN = "cicd.run"
CICD_EDIT = "cicd.edit"
CICD_DEPLOY = "cicd.deploy"
CICD_EXCEPTIONS = "cicd.exceptions"
CICD_ADMIN = "cicd.admin"
BACKUPS_VIEW = "backups.view"
BACKUPS_SCHEDULE = "backups.schedule"
BACKUPS_RUN = "backups.run"
BACKUPS_RESTORE = "backups.restore"
BACKUPS_ADMIN = "backups.admin"
AI_VIEW = "ai.view"
AI_SERVE = "ai.serve"
AI_KNOWLEDGE = "ai.knowledge"
AI_ASK = "ai.ask"
AI_ADMIN = "ai.admin"
AUDIT_VIEW = "audit.view"
AUDIT_FORWARD = "audit.forward"
CHANGES_APPROVE = "changes.approve"
CHANGES_BREAK_GLASS = "changes.break_glass"
CHANGES_POLICIES = "changes.policies"
ACCESS_REVIEW = "access.review"
USERS_MANAGE = "users.manage"
PROJECTS_MANAGE = "projects.manage"
CLUSTERS_MANAGE = "clusters.manage"

READ = ("get", "list", "watch")
OBSERVABILITY_GROUP = "observability.kubemate.io"  # metrics, queries, alerts, silences: no objects, RBAC only
INSPECTION_GROUP = "inspection.kubemate.io"  # inspection reports, runs, schedules: no objects, RBAC only
CICD_GROUP = "cicd.kubemate.io"  # pipelines, their deploys and scan exceptions: no objects, RBAC only
TEKTON_GROUP = "tekton.dev"
BACKUPS_GROUP = "backups.kubemate.io"  # etcd snapshot plans and snapshots: no objects, RBAC only
VELERO_GROUP = "velero.io"
AI_GROUP = "ai.kubemate.io"  # model servers, knowledge bases, questions: no objects, RBAC only
WORKLOAD_KINDS = ("deployments", "statefulsets", "daemonsets", "replicasets")
DOMAINS = {
    "workloads": _("Workloads"),
    "nodes": _("Nodes"),
    "config": _("Configuration"),
    "releases": _("Releases"),
    "observability": _("Observability"),
    "inspection": _("Inspection"),
    "cicd": _("CI/CD"),
    "backups": _("Backups"),
    "ai": _("AI"),
    "platform": _("Platform"),
}

CAPABILITIES: tuple[Capability, ...] = (
    Capability(
        WORKLOADS_VIEW,
        "workloads",
        _("View workloads"),
        (
            Rule(("apps",), WORKLOAD_KINDS, READ),
            Rule(("",), ("pods", "services", "endpoints", "events", "persistentvolumeclaims", "configmaps"), READ),
            Rule(("batch",), ("jobs", "cronjobs"), READ),
            Rule(("autoscaling",), ("horizontalpodautoscalers",), READ),
            Rule(("networking.k8s.io",), ("ingresses",), READ),
            Rule(("gateway.networking.k8s.io",), ("httproutes", "gateways"), READ),
            Rule(("discovery.k8s.io",), ("endpointslices",), READ),
        ),
    ),
    Capability(
        WORKLOADS_SCALE,
        "workloads",
        _("Scale workloads"),
        (Rule(("apps",), ("deployments/scale", "statefulsets/scale"), ("get", "update", "patch")),),
    ),
    Capability(
        WORKLOADS_RESTART,
        "workloads",
        _("Restart workloads (rollout restart)"),
        (Rule(("apps",), ("deployments", "statefulsets", "daemonsets"), ("get", "patch")),),
    ),
    Capability(PODS_DELETE, "workloads", _("Delete pods"), (Rule(("",), ("pods",), ("delete",)),), dangerous=True),
    Capability(PODS_LOGS, "workloads", _("Read pod logs"), (Rule(("",), ("pods", "pods/log"), ("get",)),)),
    # A shell in a container (the web terminal): dangerous, so the password is asked again before each session.
    Capability(
        PODS_EXEC,
        "workloads",
        _("Open a shell in a container"),
        (Rule(("",), ("pods",), ("get",)), Rule(("",), ("pods/exec",), ("create", "get"))),
        dangerous=True,
    ),
    Capability(
        YAML_EDIT,
        "workloads",
        _("Edit YAML"),
        (
            Rule(("apps",), WORKLOAD_KINDS[:3], ("get", "patch", "update")),
            Rule(("",), ("services", "configmaps"), ("get", "patch", "update")),
            Rule(("batch",), ("jobs", "cronjobs"), ("get", "patch", "update")),
        ),
    ),
    Capability(
        SECRETS_VIEW_METADATA,
        "config",
        _("View secret names and metadata"),
        # RBAC cannot grant metadata without data: the console shows names only, from its own inventory.
        (Rule(("",), ("secrets",), ("list",)),),
    ),
    # Revealing a secret's value, one key at a time, on click: read live as the person, audited, never stored.
    Capability(
        SECRETS_READ,
        "config",
        _("Reveal secret values"),
        (Rule(("",), ("secrets",), ("get",)),),
        dangerous=True,
    ),
    Capability(NODES_VIEW, "nodes", _("View nodes"), (Rule(("",), ("nodes",), READ),), cluster_wide=True),
    Capability(
        NODES_CORDON,
        "nodes",
        _("Cordon and uncordon nodes"),
        (Rule(("",), ("nodes",), ("get", "patch")),),
        cluster_wide=True,
    ),
    Capability(
        NODES_DRAIN,
        "nodes",
        _("Drain nodes"),
        (
            Rule(("",), ("nodes",), ("get", "patch")),
            Rule(("",), ("pods",), ("get", "list")),
            Rule(("",), ("pods/eviction",), ("create",)),
        ),
        cluster_wide=True,
        dangerous=True,
    ),
    Capability(
        RELEASES_DEPLOY,
        "releases",
        _("Deploy releases"),
        (
            Rule(("apps",), ("deployments",), ("get", "list", "create", "update", "patch")),
            Rule(("",), ("services",), ("get", "list", "create", "update", "patch")),
            # A release's sensitive variables live in a Secret it writes; no get or list, so nothing is read back.
            Rule(("",), ("secrets",), ("create", "update", "patch", "delete")),
            Rule(
                ("gateway.networking.k8s.io",), ("httproutes",), ("get", "list", "create", "update", "patch", "delete")
            ),
            Rule(
                ("autoscaling",),
                ("horizontalpodautoscalers",),
                ("get", "list", "create", "update", "patch", "delete"),
            ),
            # A release may create the volume claim it mounts (a model server's models), and drop it again.
            Rule(("",), ("persistentvolumeclaims",), ("get", "list", "create", "update", "patch", "delete")),
        ),
    ),
    Capability(
        RELEASES_ROLLBACK,
        "releases",
        _("Roll back releases"),
        (
            Rule(("apps",), ("deployments",), ("get", "update", "patch")),
            Rule(("",), ("services",), ("get", "update", "patch")),
            # An earlier revision may differ in its sensitive variables, route and autoscaler.
            Rule(("",), ("secrets",), ("create", "update", "patch", "delete")),
            Rule(("gateway.networking.k8s.io",), ("httproutes",), ("get", "create", "update", "patch", "delete")),
            Rule(("autoscaling",), ("horizontalpodautoscalers",), ("get", "create", "update", "patch", "delete")),
            Rule(("",), ("persistentvolumeclaims",), ("get", "create", "update", "patch", "delete")),
        ),
    ),
    Capability(
        RELEASES_CANARY,
        "releases",
        _("Run canary and grey releases"),
        (
            Rule(("apps",), ("deployments",), ("get", "create", "update", "patch", "delete")),
            Rule(("",), ("services",), ("get", "create", "update", "patch", "delete")),
            Rule(("gateway.networking.k8s.io",), ("httproutes",), ("get", "update", "patch")),
        ),
    ),
    # Metrics and alerts are not Kubernetes objects: their rules name resources of Kubemate's own API group, which
    # RBAC grants like any other (it does not check that a resource exists), so a SubjectAccessReview, or a proxy
    # in front of Prometheus such as kube-rbac-proxy, answers what the console answers.
    Capability(
        METRICS_VIEW,
        "observability",
        _("View metrics and charts"),
        (Rule((OBSERVABILITY_GROUP,), ("metrics",), ("get",)),),
    ),
    Capability(
        METRICS_QUERY,
        "observability",
        _("Write PromQL queries and see the queries behind charts"),
        (Rule((OBSERVABILITY_GROUP,), ("queries",), ("create",)),),
    ),
    Capability(
        ALERTS_VIEW,
        "observability",
        _("View alerts and silences"),
        (Rule((OBSERVABILITY_GROUP,), ("alerts", "silences"), ("get", "list")),),
    ),
    Capability(
        ALERTS_SILENCE,
        "observability",
        _("Create and expire silences"),
        (Rule((OBSERVABILITY_GROUP,), ("silences",), ("create", "delete")),),
    ),
    # Alert rules are PrometheusRule objects Kubemate writes as the person (the Prometheus Operator's CRD).
    Capability(
        ALERTS_RULES,
        "observability",
        _("Write alert rules"),
        (
            Rule(
                ("monitoring.coreos.com",),
                ("prometheusrules",),
                ("get", "list", "watch", "create", "update", "patch", "delete"),
            ),
        ),
    ),
    # Notification receivers are AlertmanagerConfig objects, with their credentials in a Secret beside them.
    Capability(
        ALERTS_NOTIFY,
        "observability",
        _("Manage alert notifications"),
        (
            Rule(
                ("monitoring.coreos.com",),
                ("alertmanagerconfigs",),
                ("get", "list", "watch", "create", "update", "patch", "delete"),
            ),
            Rule(("",), ("secrets",), ("create", "update", "patch", "delete")),
        ),
    ),
    # Logs and traces live in a log store and Jaeger, outside Kubernetes: RBAC on Kubemate's own group says who
    # reads them; the namespaces of the binding say whose.
    Capability(
        LOGS_VIEW,
        "observability",
        _("Search logs and follow them live"),
        (Rule((OBSERVABILITY_GROUP,), ("logs",), ("get", "list")),),
    ),
    Capability(
        LOGS_QUERY,
        "observability",
        _("Write LogsQL or LogQL queries"),
        (Rule((OBSERVABILITY_GROUP,), ("logqueries",), ("create",)),),
    ),
    Capability(
        TRACES_VIEW,
        "observability",
        _("Search traces and read their spans"),
        (Rule((OBSERVABILITY_GROUP,), ("traces",), ("get", "list")),),
    ),
    # Inspections run in Kubemate: RBAC on Kubemate's own group says who reads reports, runs and schedules them; the
    # namespaces of the binding say whose findings a person reads.
    Capability(
        INSPECTION_VIEW,
        "inspection",
        _("Read inspection reports"),
        (Rule((INSPECTION_GROUP,), ("reports",), ("get", "list")),),
    ),
    Capability(
        INSPECTION_RUN,
        "inspection",
        _("Run inspections"),
        (Rule((INSPECTION_GROUP,), ("runs",), ("create",)),),
    ),
    Capability(
        INSPECTION_SCHEDULE,
        "inspection",
        _("Edit inspection templates, schedules and recipients"),
        (Rule((INSPECTION_GROUP,), ("schedules",), ("create", "update", "delete")),),
    ),
    Capability(
        INSPECTION_TARGETS,
        "platform",
        _("Register host agents and databases to inspect"),
        platform=True,
        dangerous=True,
    ),
    # CI/CD: pipelines live in a namespace; a run acts as the person who started it (or the trigger's owner), so
    # its in-cluster build (a Tekton PipelineRun or a Job, with a Secret for the registry and repository
    # credentials, owned by the build) is authorized by Kubernetes, and so is its deploy (releases.deploy's rules).
    Capability(
        CICD_VIEW,
        "cicd",
        _("View pipelines and their runs"),
        (Rule((CICD_GROUP,), ("pipelines",), ("get", "list")),),
    ),
    Capability(
        CICD_RUN,
        "cicd",
        _("Run, cancel and re-run pipelines"),
        (
            Rule((CICD_GROUP,), ("runs",), ("create",)),
            Rule((TEKTON_GROUP,), ("pipelines", "pipelineruns"), ("get", "list", "watch", "create", "patch", "delete")),
            Rule((TEKTON_GROUP,), ("taskruns",), READ),
            Rule(("batch",), ("jobs",), ("get", "list", "watch", "create", "delete")),
            Rule(("",), ("pods", "pods/log"), ("get", "list")),
            Rule(("",), ("secrets",), ("create", "delete")),
        ),
    ),
    Capability(
        CICD_EDIT,
        "cicd",
        _("Create and edit pipelines and the base image catalogue"),
        (Rule((CICD_GROUP,), ("pipelines",), ("create", "update", "delete")),),
    ),
    Capability(
        CICD_DEPLOY,
        "cicd",
        _("Let pipeline runs deploy releases"),
        (Rule((CICD_GROUP,), ("deployments",), ("create",)),),
    ),
    Capability(
        CICD_EXCEPTIONS,
        "cicd",
        _("Grant and revoke vulnerability exceptions"),
        (Rule((CICD_GROUP,), ("exceptions",), ("create", "delete")),),
        dangerous=True,
    ),
    Capability(
        CICD_ADMIN,
        "platform",
        _("Manage registries and the vulnerability database"),
        platform=True,
        dangerous=True,
    ),
    # Backups: Velero's objects live in Velero's namespace, where Kubernetes cannot limit a Backup to namespaces;
    # these rules are also bound there (projection.py, the cluster's Velero namespace) for people who hold them in
    # a project, and the console allows only their namespaces. etcd plans need the capability on the whole cluster.
    Capability(
        BACKUPS_VIEW,
        "backups",
        _("View backups, schedules and restores"),
        (
            Rule((BACKUPS_GROUP,), ("backups",), ("get", "list")),
            Rule((VELERO_GROUP,), ("backups", "schedules", "restores", "backupstoragelocations"), READ),
            Rule((VELERO_GROUP,), ("downloadrequests",), ("get", "create", "delete")),
        ),
    ),
    Capability(
        BACKUPS_SCHEDULE,
        "backups",
        _("Create and edit backup schedules"),
        (
            Rule((BACKUPS_GROUP,), ("plans",), ("create", "update", "delete")),
            Rule((VELERO_GROUP,), ("schedules",), ("create", "update", "patch", "delete")),
        ),
    ),
    Capability(
        BACKUPS_RUN,
        "backups",
        _("Run backups"),
        (
            Rule((BACKUPS_GROUP,), ("snapshots",), ("create",)),
            Rule((VELERO_GROUP,), ("backups",), ("create",)),
        ),
    ),
    Capability(
        BACKUPS_RESTORE,
        "backups",
        _("Restore from backups"),
        (Rule((VELERO_GROUP,), ("restores",), ("create",)),),
        dangerous=True,
    ),
    Capability(
        BACKUPS_ADMIN,
        "platform",
        _("Manage storage targets, etcd access and Kubemate's own backups"),
        platform=True,
        dangerous=True,
    ),
    # AI: GPU views, model servers (deployed as releases), knowledge bases and the assistant of a project.
    Capability(
        AI_VIEW,
        "ai",
        _("View GPUs, model servers and knowledge bases"),
        (
            Rule((AI_GROUP,), ("gpus", "modelservers", "knowledgebases"), ("get", "list")),
            # The GPU pages read the namespaces' quotas on nvidia.com/gpu live, as the person.
            Rule(("",), ("resourcequotas",), ("get", "list")),
        ),
    ),
    Capability(
        AI_SERVE,
        "ai",
        _("Deploy and remove model servers"),
        (
            Rule((AI_GROUP,), ("modelservers",), ("create", "update", "delete")),
            # Removing a model server deletes its release's Deployment, Service and model volume claim (deploying
            # it takes releases.deploy's rules as well).
            Rule(("apps",), ("deployments",), ("delete",)),
            Rule(("",), ("services", "persistentvolumeclaims"), ("delete",)),
        ),
    ),
    Capability(
        AI_KNOWLEDGE,
        "ai",
        _("Manage knowledge bases and their documents"),
        (Rule((AI_GROUP,), ("knowledgebases", "documents"), ("create", "update", "delete")),),
    ),
    Capability(
        AI_ASK,
        "ai",
        _("Ask the assistant"),
        (Rule((AI_GROUP,), ("questions",), ("create",)),),
    ),
    Capability(
        AI_ADMIN,
        "platform",
        _("Manage model endpoints, assistant limits and the operations knowledge base"),
        platform=True,
    ),
    Capability(AUDIT_VIEW, "platform", _("View the audit log"), platform=True),
    # Where the audit log goes beyond the console (the SIEM's syslog receivers): dangerous, since pointing it
    # elsewhere, or stopping it, hides what happens next from the bank's security team.
    Capability(AUDIT_FORWARD, "platform", _("Forward the audit log to the SIEM"), platform=True, dangerous=True),
    # Four-eyes approval (apps/compliance/approvals): the checker approves or rejects another person's change; the
    # maker's own rights apply it.
    Capability(CHANGES_APPROVE, "platform", _("Approve or reject change requests"), platform=True),
    # An emergency change without approval, outside a window or in a freeze: audited loudly and mailed to the
    # security contact. No built-in role holds it: give it to a role of its own.
    Capability(
        CHANGES_BREAK_GLASS,
        "platform",
        _("Apply a change without approval in an emergency (break glass)"),
        platform=True,
        dangerous=True,
    ),
    Capability(
        CHANGES_POLICIES, "platform", _("Manage approval policies and change windows"), platform=True, dangerous=True
    ),
    # Access reviews (apps/compliance/reviews): confirm or revoke each grant of a project's quarterly report.
    Capability(ACCESS_REVIEW, "platform", _("Review who holds which access, and revoke it"), platform=True),
    Capability(USERS_MANAGE, "platform", _("Manage users, groups and roles"), platform=True, dangerous=True),
    Capability(PROJECTS_MANAGE, "platform", _("Manage projects and bindings"), platform=True),
    Capability(CLUSTERS_MANAGE, "platform", _("Register and configure clusters"), platform=True),
)

BY_CODE: dict[str, Capability] = {cap.code: cap for cap in CAPABILITIES}

# The request each button makes: (verb, API group, resource). The permission-parity test asks
# Kubernetes about exactly this request, as the user, and expects the console's answer.
# Cluster-wide capabilities are asked about across all namespaces.
PROBES: dict[str, tuple[str, str, str]] = {
    WORKLOADS_VIEW: ("list", "apps", "deployments"),
    WORKLOADS_SCALE: ("patch", "apps", "deployments/scale"),
    WORKLOADS_RESTART: ("patch", "apps", "deployments"),
    PODS_DELETE: ("delete", "", "pods"),
    PODS_LOGS: ("get", "", "pods/log"),
    PODS_EXEC: ("create", "", "pods/exec"),
    YAML_EDIT: ("patch", "", "configmaps"),
    SECRETS_VIEW_METADATA: ("list", "", "secrets"),
    SECRETS_READ: ("get", "", "secrets"),
    NODES_VIEW: ("list", "", "nodes"),
    NODES_CORDON: ("patch", "", "nodes"),
    NODES_DRAIN: ("create", "", "pods/eviction"),
    RELEASES_DEPLOY: ("create", "apps", "deployments"),
    RELEASES_ROLLBACK: ("update", "apps", "deployments"),
    RELEASES_CANARY: ("delete", "apps", "deployments"),
    METRICS_VIEW: ("get", OBSERVABILITY_GROUP, "metrics"),
    METRICS_QUERY: ("create", OBSERVABILITY_GROUP, "queries"),
    ALERTS_VIEW: ("list", OBSERVABILITY_GROUP, "alerts"),
    ALERTS_SILENCE: ("create", OBSERVABILITY_GROUP, "silences"),
    ALERTS_RULES: ("create", "monitoring.coreos.com", "prometheusrules"),
    ALERTS_NOTIFY: ("create", "monitoring.coreos.com", "alertmanagerconfigs"),
    LOGS_VIEW: ("list", OBSERVABILITY_GROUP, "logs"),
    LOGS_QUERY: ("create", OBSERVABILITY_GROUP, "logqueries"),
    TRACES_VIEW: ("list", OBSERVABILITY_GROUP, "traces"),
    INSPECTION_VIEW: ("list", INSPECTION_GROUP, "reports"),
    INSPECTION_RUN: ("create", INSPECTION_GROUP, "runs"),
    INSPECTION_SCHEDULE: ("update", INSPECTION_GROUP, "schedules"),
    CICD_VIEW: ("list", CICD_GROUP, "pipelines"),
    CICD_RUN: ("create", CICD_GROUP, "runs"),
    CICD_EDIT: ("update", CICD_GROUP, "pipelines"),
    CICD_DEPLOY: ("create", CICD_GROUP, "deployments"),
    CICD_EXCEPTIONS: ("create", CICD_GROUP, "exceptions"),
    BACKUPS_VIEW: ("list", VELERO_GROUP, "backups"),
    BACKUPS_SCHEDULE: ("create", VELERO_GROUP, "schedules"),
    BACKUPS_RUN: ("create", VELERO_GROUP, "backups"),
    BACKUPS_RESTORE: ("create", VELERO_GROUP, "restores"),
    AI_VIEW: ("list", AI_GROUP, "knowledgebases"),
    AI_SERVE: ("create", AI_GROUP, "modelservers"),
    AI_KNOWLEDGE: ("create", AI_GROUP, "documents"),
    AI_ASK: ("create", AI_GROUP, "questions"),
}


def get(code: str) -> Capability:
    """The capability named ``code``; ValueError for a code that is not in the table."""
    try:
        return BY_CODE[code]
    except KeyError:
        raise ValueError(f"Unknown capability {code!r}") from None


def rules_for(codes, *, cluster_wide: bool | None = None) -> list[dict]:
    """The merged PolicyRules for a set of capability codes, stable in order for server-side apply.

    ``cluster_wide`` filters: True keeps only cluster-wide capabilities, False only namespaced ones.
    """
    merged: dict[tuple[tuple[str, ...], str], set[str]] = {}
    for code in sorted(codes):
        cap = get(code)
        if cluster_wide is not None and cap.cluster_wide != cluster_wide:
            continue
        for rule in cap.rules:
            for resource in rule.resources:
                merged.setdefault((rule.api_groups, resource), set()).update(rule.verbs)
    grouped: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for (groups, resource), verbs in sorted(merged.items()):
        grouped.setdefault((groups, tuple(sorted(verbs))), []).append(resource)
    return [
        {"apiGroups": list(groups), "resources": sorted(resources), "verbs": list(verbs)}
        for (groups, verbs), resources in sorted(grouped.items())
    ]


def grouped_by_domain() -> list[tuple[object, list[Capability]]]:
    return [(label, [c for c in CAPABILITIES if c.domain == key]) for key, label in DOMAINS.items()]
