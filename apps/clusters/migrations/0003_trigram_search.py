"""Trigram indexes so that name search (ILIKE '%text%') stays fast on tens of thousands of rows."""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("clusters", "0002_cluster_alertmanager_url_cluster_allow_link_local_and_more")]

    operations = [
        TrigramExtension(),
        migrations.AddIndex(
            model_name="resource",
            index=GinIndex(fields=["name"], name="clusters_res_name_trgm", opclasses=["gin_trgm_ops"]),
        ),
        migrations.AddIndex(
            model_name="resource",
            index=GinIndex(fields=["labels"], name="clusters_res_labels", opclasses=["jsonb_path_ops"]),
        ),
    ]
