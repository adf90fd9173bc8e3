"""The sidebar: one section per domain, showing the pages that the user may open.

A page joins the sidebar by being listed here with its URL name; a domain gets its section when its
first page lands. It spans every app, so it lives in the project package; ``console`` is the context
processor that hands it to every page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.accounts import capabilities
from apps.accounts.access import may, scope
from apps.accounts.capabilities import (
    ACCESS_REVIEW,
    AI_ASK,
    AI_VIEW,
    ALERTS_NOTIFY,
    ALERTS_VIEW,
    AUDIT_FORWARD,
    AUDIT_VIEW,
    BACKUPS_ADMIN,
    BACKUPS_VIEW,
    CHANGES_POLICIES,
    CICD_ADMIN,
    CICD_VIEW,
    INSPECTION_TARGETS,
    INSPECTION_VIEW,
    LOGS_VIEW,
    METRICS_QUERY,
    METRICS_VIEW,
    PROJECTS_MANAGE,
    TRACES_VIEW,
    USERS_MANAGE,
)


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    icon: str
    superuser_only: bool = False
    capability: str | None = None
    exact: bool = False  # active on its own page only (an overview whose address begins its section's pages)


@dataclass(frozen=True)
class NavSection:
    label: str
    items: tuple[NavItem, ...]


SECTIONS = (
    NavSection(
        _("Overview"),
        (
            NavItem(_("Dashboard"), "dashboard", "layout-dashboard"),
            NavItem(_("Jobs"), "core:job_list", "list-check"),
        ),
    ),
    NavSection(_("Clusters"), (NavItem(_("Clusters"), "clusters:cluster_list", "server-2"),)),
    NavSection(
        _("Releases"),
        (
            NavItem(_("Releases"), "releases:release_list", "rocket"),
            # Everyone sees their own requests; approvers see what waits for them.
            NavItem(_("Change requests"), "compliance:change_list", "checklist"),
        ),
    ),
    NavSection(
        _("Observability"),
        (
            NavItem(_("Alerts"), "observability:alert_list", "bell-ringing", capability=ALERTS_VIEW),
            NavItem(_("Alert rules"), "observability:rules_home", "bell-cog", capability=ALERTS_VIEW),
            NavItem(_("Notifications"), "observability:notify_home", "send", capability=ALERTS_NOTIFY),
            NavItem(_("Metrics explorer"), "observability:explorer", "chart-line", capability=METRICS_QUERY),
            NavItem(_("Logs"), "observability:logs_search", "file-search", capability=LOGS_VIEW),
            NavItem(_("Traces"), "observability:trace_search", "route", capability=TRACES_VIEW),
            NavItem(_("Observability status"), "observability:stack_status", "heartbeat", capability=METRICS_VIEW),
        ),
    ),
    NavSection(
        _("Inspection"),
        (
            NavItem(_("Inspections"), "inspection:home", "stethoscope", capability=INSPECTION_VIEW),
            NavItem(_("Templates"), "inspection:template_list", "checklist", capability=INSPECTION_VIEW),
            NavItem(_("Schedules"), "inspection:schedule_list", "calendar-time", capability=INSPECTION_VIEW),
            NavItem(_("Weekly reports"), "inspection:weekly_list", "report-analytics", capability=INSPECTION_VIEW),
            NavItem(_("Hosts and databases"), "inspection:target_list", "server-bolt", capability=INSPECTION_TARGETS),
        ),
    ),
    NavSection(
        _("CI/CD"),
        (
            NavItem(_("Pipelines"), "cicd:home", "git-merge", capability=CICD_VIEW),
            NavItem(_("Registries and images"), "cicd:registry_list", "packages", capability=CICD_VIEW),
            NavItem(_("Policies and exceptions"), "cicd:policy_list", "shield-check", capability=CICD_VIEW),
            NavItem(_("Vulnerability database"), "cicd:vulndb", "database-search", capability=CICD_ADMIN),
        ),
    ),
    NavSection(
        _("Backups"),
        (
            NavItem(_("Backups"), "backups:home", "database-export", capability=BACKUPS_VIEW),
            NavItem(_("Backup storage"), "backups:platform", "bucket", capability=BACKUPS_ADMIN),
        ),
    ),
    NavSection(
        _("AI"),
        (
            NavItem(_("AI overview"), "ai:home", "sparkles", capability=AI_VIEW, exact=True),
            NavItem(_("GPUs"), "ai:gpu_home", "cpu-2", capability=AI_VIEW),
            NavItem(_("Model servers"), "ai:server_list", "server-cog", capability=AI_VIEW),
            NavItem(_("Knowledge bases"), "ai:knowledge_list", "library", capability=AI_VIEW),
            NavItem(_("Assistant"), "ai:assistant", "message-chatbot", capability=AI_ASK),
        ),
    ),
    NavSection(
        _("Accounts"),
        (
            NavItem(_("Users"), "accounts:user_list", "users", capability=USERS_MANAGE),
            NavItem(_("Groups"), "accounts:group_list", "users-group", capability=USERS_MANAGE),
            NavItem(_("Roles"), "accounts:role_list", "shield-lock", capability=USERS_MANAGE),
            NavItem(_("Projects"), "accounts:project_list", "folders", capability=PROJECTS_MANAGE),
            NavItem(_("Bindings"), "accounts:binding_list", "link", capability=PROJECTS_MANAGE),
            NavItem(_("Audit log"), "accounts:audit_list", "file-certificate", capability=AUDIT_VIEW),
            NavItem(_("Audit forwarding"), "compliance:destination_list", "broadcast", capability=AUDIT_FORWARD),
            NavItem(_("Approval policies"), "compliance:policy_list", "shield-check", capability=CHANGES_POLICIES),
            NavItem(_("Access reviews"), "compliance:review_list", "user-search", capability=ACCESS_REVIEW),
        ),
    ),
    NavSection(_("Administration"), (NavItem(_("Django admin"), "admin:index", "settings", superuser_only=True),)),
)


def holds(user, code: str) -> bool:
    """The user holds ``code`` somewhere: a platform capability on the platform, any other in some cluster or
    namespace (the page then shows only those places)."""
    if capabilities.get(code).platform:
        return may(user, code)
    held = scope(user, code)
    return held.everywhere or bool(held.clusters) or any(held.namespaces.values())


def sidebar_for(request) -> list[dict]:
    path = request.path
    sections = []
    for section in SECTIONS:
        items = []
        for item in section.items:
            if item.superuser_only and not request.user.is_superuser:
                continue
            if item.capability and not holds(request.user, item.capability):
                continue
            url = reverse(item.url_name)
            active = path == url or (url != "/" and not item.exact and path.startswith(url))
            items.append({"label": item.label, "url": url, "icon": item.icon, "active": active})
        if items:
            sections.append({"label": section.label, "items": items})
    return sections


def console(request) -> dict:
    """What every console page needs: version and, for signed-in users, the sidebar."""
    user = getattr(request, "user", None)
    return {
        "kubemate_version": settings.KUBEMATE_VERSION,
        "sidebar": sidebar_for(request) if user is not None and user.is_authenticated else [],
    }
