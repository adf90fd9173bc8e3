"""Logs and traces join the built-in roles: everyone who sees workloads searches their logs and traces; those
who change what runs also write LogsQL or LogQL by hand. Reversing takes them away again."""

from django.db import migrations

from apps.accounts.migrations import _capabilities

GRANTS = {
    "logs.view": ("cluster-admin", "project-owner", "developer", "viewer", "auditor"),
    "traces.view": ("cluster-admin", "project-owner", "developer", "viewer", "auditor"),
    "logs.query": ("cluster-admin", "project-owner", "developer"),
}


def grant(apps, schema_editor):
    for code, roles in GRANTS.items():
        _capabilities.grant(apps, code, roles)


def revoke(apps, schema_editor):
    for code in GRANTS:
        _capabilities.revoke(apps, code)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0010_alerts_notify")]

    operations = [migrations.RunPython(grant, revoke)]
