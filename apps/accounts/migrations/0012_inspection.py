"""Inspection joins the built-in roles: everyone who sees workloads reads inspection reports (for their own
namespaces); those who change what runs also run inspections; owners and cluster administrators schedule them.
Registering host agents and databases is a platform capability (platform administrators hold every one).
Reversing takes them away again."""

from django.db import migrations

from apps.accounts.migrations import _capabilities

GRANTS = {
    "inspection.view": ("cluster-admin", "project-owner", "developer", "viewer", "auditor"),
    "inspection.run": ("cluster-admin", "project-owner", "developer"),
    "inspection.schedule": ("cluster-admin", "project-owner"),
}


def grant(apps, schema_editor):
    for code, roles in GRANTS.items():
        _capabilities.grant(apps, code, roles)


def revoke(apps, schema_editor):
    for code in GRANTS:
        _capabilities.revoke(apps, code)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0011_logs_traces")]

    operations = [migrations.RunPython(grant, revoke)]
