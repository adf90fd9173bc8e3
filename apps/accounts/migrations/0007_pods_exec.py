"""The web terminal's capability, pods.exec, joins the built-in roles that run a project or a cluster (cluster
administrators and project owners); developers and viewers do not get a shell. Reversing takes it away again."""

from django.db import migrations

from apps.accounts.migrations import _capabilities

ROLES = ("cluster-admin", "project-owner")
CODE = "pods.exec"


def grant(apps, schema_editor):
    _capabilities.grant(apps, CODE, ROLES)


def revoke(apps, schema_editor):
    _capabilities.revoke(apps, CODE)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_preference")]

    operations = [migrations.RunPython(grant, revoke)]
