"""Capabilities without a feature yet (pipelines.run, inspections.run, backups.restore, alerts.silence) leave
every role, so no cluster's RBAC grants what no console button uses; they return with their features.

The developer role's description no longer promises pipelines. Reversing puts nothing back: a role that
held them held nothing usable.
"""

from django.db import migrations

DROPPED = ("pipelines.run", "inspections.run", "backups.restore", "alerts.silence")


def drop_capabilities(apps, schema_editor):
    Role = apps.get_model("accounts", "Role")
    for role in Role.objects.filter(capabilities__overlap=list(DROPPED)):
        role.capabilities = [code for code in role.capabilities if code not in DROPPED]
        role.save(update_fields=["capabilities"])
    Role.objects.filter(slug="developer", builtin=True).update(
        description_en="Deploys and rolls back apps, scales and restarts them, and reads logs.",
        description_zh="部署和回滚应用、扩缩容和重启，并查看日志。",
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_audit_log_moves_to_core")]

    operations = [migrations.RunPython(drop_capabilities, migrations.RunPython.noop)]
