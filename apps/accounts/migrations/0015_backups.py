"""Backups join the built-in roles: everyone who sees workloads sees the backups of their namespaces; cluster
administrators and project owners schedule, run and restore them (restoring is dangerous: the password is asked
again). Storage targets, etcd access and Kubemate's own database backups are a platform capability. Platform
administrators hold every one (a database made before these capabilities existed lists them now). Reversing takes
them away again."""

from django.db import migrations

from apps.accounts.migrations import _capabilities

GRANTS = {
    "backups.view": ("platform-admin", "cluster-admin", "project-owner", "developer", "viewer", "auditor"),
    "backups.schedule": ("platform-admin", "cluster-admin", "project-owner"),
    "backups.run": ("platform-admin", "cluster-admin", "project-owner", "developer"),
    # 0005 took backups.restore out of every role, platform-admin's too, until the feature came: it has come.
    "backups.restore": ("platform-admin", "cluster-admin", "project-owner"),
    "backups.admin": ("platform-admin",),
}


def grant(apps, schema_editor):
    for code, roles in GRANTS.items():
        _capabilities.grant(apps, code, roles)


def revoke(apps, schema_editor):
    for code in GRANTS:
        _capabilities.revoke(apps, code)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0014_cicd")]

    operations = [migrations.RunPython(grant, revoke)]
