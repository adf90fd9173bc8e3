"""Metrics and alerts join the built-in roles: everyone who sees workloads sees their metrics and alerts; those
who change what runs also write PromQL and silence alerts; owners and cluster administrators write alert rules. Reversing takes them away again."""

from django.db import migrations

from apps.accounts.migrations import _capabilities

GRANTS = {
    "metrics.view": ("cluster-admin", "project-owner", "developer", "viewer", "auditor"),
    "alerts.view": ("cluster-admin", "project-owner", "developer", "viewer", "auditor"),
    "metrics.query": ("cluster-admin", "project-owner", "developer"),
    "alerts.silence": ("cluster-admin", "project-owner", "developer"),
    "alerts.rules": ("cluster-admin", "project-owner"),
}


def grant(apps, schema_editor):
    for code, roles in GRANTS.items():
        _capabilities.grant(apps, code, roles)


def revoke(apps, schema_editor):
    for code in GRANTS:
        _capabilities.revoke(apps, code)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0008_secrets_read")]

    operations = [migrations.RunPython(grant, revoke)]
