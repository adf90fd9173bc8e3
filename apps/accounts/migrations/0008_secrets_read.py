"""secrets.read (reveal a secret's value on its page, audited) joins the built-in roles that run a cluster or a
project; developers and viewers see secret names only. Reversing takes it away again."""

from django.db import migrations

from apps.accounts.migrations import _capabilities

ROLES = ("cluster-admin", "project-owner")
CODE = "secrets.read"


def grant(apps, schema_editor):
    _capabilities.grant(apps, CODE, ROLES)


def revoke(apps, schema_editor):
    _capabilities.revoke(apps, CODE)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0007_pods_exec")]

    operations = [migrations.RunPython(grant, revoke)]
