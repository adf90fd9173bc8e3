"""CI/CD joins the built-in roles: everyone who sees workloads sees pipelines (in their own namespaces); those who
change what runs also run pipelines, edit them and let runs deploy; owners and cluster administrators grant
vulnerability exceptions. Registries and the vulnerability database are a platform capability (platform
administrators hold every one). Reversing takes them away again."""

from django.db import migrations

from apps.accounts.migrations import _capabilities

GRANTS = {
    "cicd.view": ("cluster-admin", "project-owner", "developer", "viewer", "auditor"),
    "cicd.run": ("cluster-admin", "project-owner", "developer"),
    "cicd.edit": ("cluster-admin", "project-owner", "developer"),
    "cicd.deploy": ("cluster-admin", "project-owner", "developer"),
    "cicd.exceptions": ("cluster-admin", "project-owner"),
}


def grant(apps, schema_editor):
    for code, roles in GRANTS.items():
        _capabilities.grant(apps, code, roles)


def revoke(apps, schema_editor):
    for code in GRANTS:
        _capabilities.revoke(apps, code)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0013_preference_language")]

    operations = [migrations.RunPython(grant, revoke)]
