"""secrets.read (reveal a secret's value on its page, audited) joins the built-in roles that run a cluster or a
project; developers and viewers see secret names only. Reversing takes it away again."""

from django.db import migrations

ROLES = ("cluster-admin", "project-owner")
CODE = "secrets.read"


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
    dependencies = [("accounts", "0007_pods_exec")]

    operations = [migrations.RunPython(grant, revoke)]
