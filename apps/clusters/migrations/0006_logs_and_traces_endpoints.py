"""The log store becomes VictoriaLogs or Loki (``logs_url`` + ``logs_backend``); the log store and Jaeger get
encrypted credentials like Prometheus. A cluster that had a Loki address keeps it, as a Loki store."""

from django.db import migrations, models


def loki_stays_loki(apps, schema_editor):
    Cluster = apps.get_model("clusters", "Cluster")
    Cluster.objects.exclude(logs_url="").update(logs_backend="loki")


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0005_endpoint_credentials"),
    ]

    operations = [
        migrations.RenameField(model_name="cluster", old_name="loki_url", new_name="logs_url"),
        migrations.AlterField(
            model_name="cluster",
            name="logs_url",
            field=models.URLField(blank=True, verbose_name="log store URL"),
        ),
        migrations.AddField(
            model_name="cluster",
            name="logs_backend",
            field=models.CharField(
                choices=[("victorialogs", "VictoriaLogs"), ("loki", "Loki")],
                default="victorialogs",
                max_length=16,
                verbose_name="log store",
            ),
        ),
        migrations.AddField(
            model_name="cluster",
            name="jaeger_auth_encrypted",
            field=models.TextField(blank=True, editable=False, verbose_name="Jaeger credentials (encrypted)"),
        ),
        migrations.AddField(
            model_name="cluster",
            name="logs_auth_encrypted",
            field=models.TextField(blank=True, editable=False, verbose_name="log store credentials (encrypted)"),
        ),
        migrations.RunPython(loki_stays_loki, migrations.RunPython.noop),
    ]
