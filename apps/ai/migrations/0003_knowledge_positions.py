from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ai", "0002_servers_release_cascade"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="positions",
            field=models.JSONField(blank=True, default=list, editable=False, verbose_name="chunk positions"),
        ),
    ]
