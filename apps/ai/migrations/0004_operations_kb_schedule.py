"""Build the operations knowledge base (the inspection checks' advice, in English and Chinese) every night, and
shortly after the first start: each run re-indexes only the runbooks whose advice changed (a hash per runbook)."""

from django.db import migrations


def schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="41", hour="3", day_of_month="*", month_of_year="*", day_of_week="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name="AI: refresh the operations knowledge base",
        defaults={"task": "ai.refresh_operations_kb", "crontab": nightly},
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task="ai.refresh_operations_kb").delete()


class Migration(migrations.Migration):
    dependencies = [("ai", "0003_knowledge_positions"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [migrations.RunPython(schedule, unschedule)]
