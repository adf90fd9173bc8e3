"""Jobs record their worker and its heartbeat; beat ends, every 30 s, the jobs whose worker stopped."""

from django.db import migrations, models


def schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=30, period="seconds")
    PeriodicTask.objects.get_or_create(
        name="End jobs whose worker stopped", defaults={"task": "core.reap_orphaned_jobs", "interval": every}
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task="core.reap_orphaned_jobs").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_audit_log_from_accounts"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="last heartbeat"),
        ),
        migrations.AddField(
            model_name="job",
            name="worker",
            field=models.CharField(blank=True, max_length=200, verbose_name="worker"),
        ),
        migrations.RunPython(schedule, unschedule),
    ]
