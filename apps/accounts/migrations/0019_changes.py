"""Four-eyes approval and change windows (apps/compliance/approvals): platform administrators approve change
requests and manage the policies. Break glass is held by no built-in role. Reversing takes them away again."""

from django.db import migrations

from apps.accounts.migrations import _capabilities

GRANTS = {"changes.approve": ("platform-admin",), "changes.policies": ("platform-admin",)}


def grant(apps, schema_editor):
    for code, roles in GRANTS.items():
        _capabilities.grant(apps, code, roles)


def revoke(apps, schema_editor):
    for code in GRANTS:
        _capabilities.revoke(apps, code)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0018_external_identity")]

    operations = [migrations.RunPython(grant, revoke)]
