"""The audit log now belongs to core (core 0002): forget the models here without touching their tables."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_audit_truncate_for_test_flush"),
        ("core", "0002_audit_log_from_accounts"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEvent"), migrations.DeleteModel(name="AuditHead")]
        )
    ]
