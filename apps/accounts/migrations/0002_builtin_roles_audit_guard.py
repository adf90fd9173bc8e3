"""Built-in roles, the audit log's database guard, and the RBAC reconcile schedule.

The audit chain head's row is created by core 0002 since the audit log moved to core.
"""

from django.db import migrations

BUILTIN = {
    "platform-admin": (
        "Platform administrator",
        "平台管理员",
        "Everything, everywhere: users, roles, clusters and all operations.",
        "拥有全部权限：用户、角色、集群以及所有运维操作。",
        "*",
    ),
    "cluster-admin": (
        "Cluster administrator",
        "集群管理员",
        "All operations inside the clusters or projects it is bound to, including nodes.",
        "在所绑定的集群或项目内执行全部运维操作，包括节点。",
        [
            "workloads.view",
            "workloads.scale",
            "workloads.restart",
            "pods.delete",
            "pods.logs",
            "yaml.edit",
            "secrets.view_metadata",
            "nodes.view",
            "nodes.cordon",
            "nodes.drain",
            "releases.deploy",
            "releases.rollback",
            "releases.canary",
            "pipelines.run",
            "inspections.run",
            "backups.restore",
        ],
    ),
    "project-owner": (
        "Project owner",
        "项目负责人",
        "Runs the project's apps: deploy, scale, restart, releases, logs and YAML.",
        "负责项目内的应用：部署、扩缩容、重启、发布、日志和 YAML。",
        [
            "workloads.view",
            "workloads.scale",
            "workloads.restart",
            "pods.delete",
            "pods.logs",
            "yaml.edit",
            "secrets.view_metadata",
            "releases.deploy",
            "releases.rollback",
            "releases.canary",
            "pipelines.run",
            "inspections.run",
        ],
    ),
    "developer": (
        "Developer",
        "开发人员",
        "Deploys and rolls back apps, scales and restarts them, reads logs and runs pipelines.",
        "部署和回滚应用、扩缩容和重启、查看日志并运行流水线。",
        [
            "workloads.view",
            "workloads.scale",
            "workloads.restart",
            "pods.logs",
            "releases.deploy",
            "releases.rollback",
            "pipelines.run",
        ],
    ),
    "viewer": (
        "Viewer",
        "只读用户",
        "Sees workloads and nodes; changes nothing.",
        "查看工作负载和节点，不做任何更改。",
        ["workloads.view", "nodes.view"],
    ),
    "auditor": (
        "Auditor",
        "审计员",
        "Reads the audit log and sees workloads and nodes; changes nothing.",
        "查看审计日志、工作负载和节点，不做任何更改。",
        ["workloads.view", "nodes.view", "audit.view"],
    ),
}

GUARD = """
CREATE OR REPLACE FUNCTION kubemate_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'The audit log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER accounts_auditevent_no_update BEFORE UPDATE OR DELETE ON accounts_auditevent
  FOR EACH ROW EXECUTE FUNCTION kubemate_audit_append_only();
CREATE TRIGGER accounts_auditevent_no_truncate BEFORE TRUNCATE ON accounts_auditevent
  FOR EACH STATEMENT EXECUTE FUNCTION kubemate_audit_append_only();
"""
UNGUARD = """
DROP TRIGGER IF EXISTS accounts_auditevent_no_update ON accounts_auditevent;
DROP TRIGGER IF EXISTS accounts_auditevent_no_truncate ON accounts_auditevent;
DROP FUNCTION IF EXISTS kubemate_audit_append_only();
"""


def create_builtin(apps, schema_editor):
    from apps.accounts.capabilities import BY_CODE

    Role = apps.get_model("accounts", "Role")
    for slug, (name_en, name_zh, desc_en, desc_zh, caps) in BUILTIN.items():
        Role.objects.update_or_create(
            slug=slug,
            defaults={
                "name_en": name_en,
                "name_zh": name_zh,
                "description_en": desc_en,
                "description_zh": desc_zh,
                "capabilities": sorted(BY_CODE) if caps == "*" else caps,
                "builtin": True,
            },
        )
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="Reconcile RBAC in every cluster", defaults={"task": "accounts.reconcile_all", "interval": every}
    )


def remove_builtin(apps, schema_editor):
    apps.get_model("accounts", "Role").objects.filter(builtin=True).delete()
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task="accounts.reconcile_all").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(create_builtin, remove_builtin),
        migrations.RunSQL(GUARD, UNGUARD),
    ]
