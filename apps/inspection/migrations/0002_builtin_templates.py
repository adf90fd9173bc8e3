"""The built-in inspection templates, named in deferred sentences so each reader reads them in their language. Their checks are catalogue prefixes (``cluster.`` is every cluster check), so a
check added to the catalogue later joins its template without a migration. Reversing removes the unused ones."""

from django.db import migrations

from apps.core.deferred import N_
from apps.core.deferred import text as D

BUILTIN = {
    "daily-cluster-health": (
        N_("Daily cluster health"),
        N_("Control plane, nodes, pods, workloads, storage and apps: what an operator looks at every morning."),
        ["cluster.", "apps."],
    ),
    "weekly-security": (
        N_("Weekly security"),
        N_("Privileged and root containers, host mounts, unpinned images and certificates near expiry."),
        ["security."],
    ),
    "host-baseline": (
        N_("Host baseline"),
        N_("CPU, memory, disks, network, clock, kernel parameters, cron and certificates of every host with an agent."),
        ["hosts."],
    ),
    "database": (
        N_("Database"),
        N_(
            "Slow statements, largest tables and their growth, connections and replication of the registered databases."
        ),
        ["db."],
    ),
}


def create(apps, schema_editor):
    Template = apps.get_model("inspection", "Template")
    for slug, (name, description, checks) in BUILTIN.items():
        Template.objects.update_or_create(
            slug=slug, defaults={"name": D(name), "description": D(description), "checks": checks, "builtin": True}
        )


def remove(apps, schema_editor):
    Template = apps.get_model("inspection", "Template")
    Template.objects.filter(slug__in=list(BUILTIN), builtin=True, runs__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("inspection", "0001_initial")]

    operations = [migrations.RunPython(create, remove)]
