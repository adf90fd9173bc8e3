"""Count what each storage target holds every hour (bytes and objects, shown on the targets page; editable in
Django admin). Each plan's own schedule is an entry its service writes."""

from django.db import migrations


def schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    hourly, _ = CrontabSchedule.objects.get_or_create(
        minute="17", hour="*", day_of_month="*", month_of_year="*", day_of_week="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name="Backups: count what each storage target holds",
        defaults={"task": "backups.refresh_usage", "crontab": hourly},
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task="backups.refresh_usage").delete()


class Migration(migrations.Migration):
    dependencies = [("backups", "0001_initial"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [migrations.RunPython(schedule, unschedule)]
