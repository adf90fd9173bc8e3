"""The audit log moves from accounts to core: state only, the tables keep their names and their data.

The append-only trigger (accounts 0002, 0003) stays on ``accounts_auditevent``; nothing is copied or renamed.
accounts 0004 removes the models from the accounts state after this migration adds them to core's.
The chain head's single row is created here (it was created by accounts 0002 before).
"""

from django.db import migrations, models


def create_head(apps, schema_editor):
    apps.get_model("core", "AuditHead").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("accounts", "0003_audit_truncate_for_test_flush"),
    ]

    state_operations = [
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seq", models.BigIntegerField(editable=False, unique=True)),
                ("created_at", models.DateTimeField(db_index=True, editable=False, verbose_name="time")),
                ("actor_id", models.BigIntegerField(editable=False, null=True)),
                ("actor_name", models.CharField(db_index=True, editable=False, max_length=150, verbose_name="actor")),
                ("action", models.CharField(db_index=True, editable=False, max_length=100, verbose_name="action")),
                (
                    "result",
                    models.CharField(
                        choices=[("success", "Success"), ("failure", "Failure"), ("denied", "Denied")],
                        editable=False,
                        max_length=16,
                        verbose_name="result",
                    ),
                ),
                (
                    "cluster",
                    models.CharField(blank=True, db_index=True, editable=False, max_length=63, verbose_name="cluster"),
                ),
                ("namespace", models.CharField(blank=True, editable=False, max_length=63, verbose_name="namespace")),
                ("object_kind", models.CharField(blank=True, editable=False, max_length=63, verbose_name="kind")),
                ("object_name", models.CharField(blank=True, editable=False, max_length=253, verbose_name="object")),
                ("detail", models.JSONField(blank=True, default=dict, editable=False, verbose_name="detail")),
                ("ip", models.GenericIPAddressField(blank=True, editable=False, null=True, verbose_name="address")),
                ("prev_hash", models.CharField(editable=False, max_length=64)),
                ("hash", models.CharField(editable=False, max_length=64)),
            ],
            options={
                "verbose_name": "audit event",
                "verbose_name_plural": "audit events",
                "db_table": "accounts_auditevent",
                "ordering": ["-seq"],
            },
        ),
        migrations.CreateModel(
            name="AuditHead",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seq", models.BigIntegerField(default=0)),
                (
                    "hash",
                    models.CharField(
                        default="0000000000000000000000000000000000000000000000000000000000000000", max_length=64
                    ),
                ),
            ],
            options={
                "verbose_name": "audit chain head",
                "db_table": "accounts_audithead",
            },
        ),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=state_operations),
        migrations.RunPython(create_head, migrations.RunPython.noop),
    ]
