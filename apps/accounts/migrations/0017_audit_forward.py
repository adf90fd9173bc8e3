"""Audit forwarding to the SIEM (apps/compliance) is the platform administrators' capability. Reversing takes it
away again."""

from django.db import migrations

from apps.accounts.migrations import _capabilities

GRANTS = {"audit.forward": ("platform-admin",)}


def grant(apps, schema_editor):
    for code, roles in GRANTS.items():
        _capabilities.grant(apps, code, roles)


def revoke(apps, schema_editor):
    for code in GRANTS:
        _capabilities.revoke(apps, code)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0016_ai")]

    operations = [migrations.RunPython(grant, revoke)]
