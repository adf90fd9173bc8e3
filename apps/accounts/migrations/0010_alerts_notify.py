"""Alert notifications join the built-in roles: owners and cluster administrators manage their receivers.
Reversing takes the capability away again."""

from django.db import migrations

from apps.accounts.migrations import _capabilities

GRANTS = {"alerts.notify": ("cluster-admin", "project-owner")}


def grant(apps, schema_editor):
    for code, roles in GRANTS.items():
        _capabilities.grant(apps, code, roles)


def revoke(apps, schema_editor):
    for code in GRANTS:
        _capabilities.revoke(apps, code)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0009_observability")]

    operations = [migrations.RunPython(grant, revoke)]
