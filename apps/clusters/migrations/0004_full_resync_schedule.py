"""Schedule the inventory's periodic full resync (editable in Django admin)."""

from django.db import migrations


def schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=30, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="Full inventory resync of every cluster", defaults={"task": "clusters.full_resync", "interval": every}
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task="clusters.full_resync").delete()


class Migration(migrations.Migration):
    dependencies = [("clusters", "0003_trigram_search"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [migrations.RunPython(schedule, unschedule)]
