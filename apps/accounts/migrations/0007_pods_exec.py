"""The web terminal's capability, pods.exec, joins the built-in roles that run a project or a cluster (cluster
administrators and project owners); developers and viewers do not get a shell. Reversing takes it away again."""

from django.db import migrations

ROLES = ("cluster-admin", "project-owner")
CODE = "pods.exec"


def grant(apps, schema_editor):
    Role = apps.get_model("accounts", "Role")
    for role in Role.objects.filter(slug__in=ROLES, builtin=True):
        if CODE not in role.capabilities:
            role.capabilities = [*role.capabilities, CODE]
            role.save(update_fields=["capabilities"])


def revoke(apps, schema_editor):
    Role = apps.get_model("accounts", "Role")
    for role in Role.objects.filter(capabilities__contains=[CODE]):
        role.capabilities = [code for code in role.capabilities if code != CODE]
        role.save(update_fields=["capabilities"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_preference")]

    operations = [migrations.RunPython(grant, revoke)]
