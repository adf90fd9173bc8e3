"""AI joins the built-in roles: everyone who sees workloads sees their projects' GPUs, model servers and knowledge
bases and may ask the assistant; cluster administrators and project owners deploy model servers; developers also
manage knowledge bases. Model endpoints registered for the whole platform, the assistant's limits and the
operations knowledge base are a platform capability. Reversing takes them away again."""

from django.db import migrations

from apps.accounts.migrations import _capabilities

GRANTS = {
    "ai.view": ("platform-admin", "cluster-admin", "project-owner", "developer", "viewer", "auditor"),
    "ai.serve": ("platform-admin", "cluster-admin", "project-owner"),
    "ai.knowledge": ("platform-admin", "cluster-admin", "project-owner", "developer"),
    "ai.ask": ("platform-admin", "cluster-admin", "project-owner", "developer", "viewer"),
    "ai.admin": ("platform-admin",),
}


def grant(apps, schema_editor):
    for code, roles in GRANTS.items():
        _capabilities.grant(apps, code, roles)


def revoke(apps, schema_editor):
    for code in GRANTS:
        _capabilities.revoke(apps, code)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0015_backups")]

    operations = [migrations.RunPython(grant, revoke)]
