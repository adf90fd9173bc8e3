"""Access reviews (apps/compliance/reviews) are the platform administrators' capability, besides each project's own
reviewer. Reversing takes it away again."""

from django.db import migrations

from apps.accounts.migrations import _capabilities

GRANTS = {"access.review": ("platform-admin",)}


def grant(apps, schema_editor):
    for code, roles in GRANTS.items():
        _capabilities.grant(apps, code, roles)


def revoke(apps, schema_editor):
    for code in GRANTS:
        _capabilities.revoke(apps, code)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0019_changes")]

    operations = [migrations.RunPython(grant, revoke)]
