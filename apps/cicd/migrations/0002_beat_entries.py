"""Schedule the CI/CD dispatcher every 30 seconds (queued runs whose project has a free slot start) and the
retention pass every night (editable in Django admin)."""

from django.db import migrations


def schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=30, period="seconds")
    PeriodicTask.objects.get_or_create(
        name="CI/CD: start queued pipeline runs", defaults={"task": "cicd.dispatch", "interval": every}
    )
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="2", day_of_month="*", month_of_year="*", day_of_week="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name="CI/CD: remove run files past their retention", defaults={"task": "cicd.prune", "crontab": nightly}
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        task__in=["cicd.dispatch", "cicd.prune"]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("cicd", "0001_initial"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [migrations.RunPython(schedule, unschedule)]
