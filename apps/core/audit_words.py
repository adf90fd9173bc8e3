"""What each audit action means, in the reader's language, for the audit log page (the code stays beside it)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

ACTIONS = {
    "accounts.login": _("Signed in"),
    "accounts.login_failed": _("Sign-in failed"),
    "accounts.locked_out": _("Locked out after wrong passwords"),
    "accounts.logout": _("Signed out"),
    "accounts.reauth": _("Confirmed the password"),
    "accounts.preference.time_zone": _("Changed their time zone"),
    "accounts.user.create": _("Created a user"),
    "accounts.user.update": _("Changed a user"),
    "accounts.user.delete": _("Deleted a user"),
    "accounts.user.enable": _("Enabled a user"),
    "accounts.user.disable": _("Disabled a user"),
    "accounts.user.end_sessions": _("Ended a user's sessions"),
    "accounts.user.reset_password": _("Reset a user's password"),
    "accounts.group.create": _("Created a group"),
    "accounts.group.update": _("Changed a group"),
    "accounts.group.delete": _("Deleted a group"),
    "accounts.role.create": _("Created a role"),
    "accounts.role.update": _("Changed a role"),
    "accounts.role.delete": _("Deleted a role"),
    "accounts.project.create": _("Created a project"),
    "accounts.project.update": _("Changed a project"),
    "accounts.project.delete": _("Deleted a project"),
    "accounts.binding.create": _("Granted a role"),
    "accounts.binding.update": _("Changed a grant"),
    "accounts.binding.delete": _("Took back a role"),
    "accounts.rbac.reconcile": _("Projected RBAC into a cluster"),
    "accounts.rbac.drift_repaired": _("Repaired RBAC changed in a cluster"),
    "accounts.rbac.stale_removed": _("Removed stale RBAC from a cluster"),
    "clusters.cluster.create": _("Registered a cluster"),
    "clusters.cluster.update": _("Changed a cluster's settings"),
    "clusters.cluster.delete": _("Removed a cluster"),
    "clusters.cluster.test": _("Tested a cluster's connection"),
    "clusters.cluster.credentials_replace": _("Replaced a cluster's credentials"),
    "clusters.workload.scale": _("Scaled a workload"),
    "clusters.workload.restart": _("Restarted a workload"),
    "clusters.pod.delete": _("Deleted a pod"),
    "clusters.pod.terminal.open": _("Opened a terminal"),
    "clusters.pod.terminal.end": _("Closed a terminal"),
    "clusters.node.cordon": _("Cordoned a node"),
    "clusters.node.uncordon": _("Uncordoned a node"),
    "clusters.node.drain_started": _("Started a drain"),
    "clusters.node.drain_resumed": _("Resumed a drain"),
    "clusters.node.drained": _("Drained a node"),
    "clusters.yaml.edit": _("Edited an object's YAML"),
    "clusters.secret.reveal": _("Revealed a secret value"),
    "core.job.cancel": _("Cancelled a job"),
    "core.encryption.rotate": _("Rotated the encryption key"),
    "fieldcrypt.field.seal": _("Encrypted a field"),
    "fieldcrypt.key.rotate": _("Rotated a project's field key"),
    "fieldcrypt.reader.grant": _("Let an app decrypt fields"),
    "releases.release.create": _("Created a release"),
    "releases.release.deploy": _("Deployed a release"),
    "releases.release.rollback": _("Rolled back a release"),
    "releases.release.delete": _("Removed a release"),
    "releases.canary.start": _("Started a canary"),
    "releases.canary.step": _("Changed a canary's share"),
    "releases.canary.promote": _("Promoted a canary"),
    "releases.canary.abort": _("Aborted a canary"),
    "releases.canary.analysis": _("Automatic canary steps changed"),
    "releases.canary.pause": _("Paused automatic canary steps"),
    "releases.canary.resume": _("Resumed automatic canary steps"),
    "observability.rule.create": _("Wrote an alert rule"),
    "observability.rule.update": _("Changed an alert rule"),
    "observability.rule.delete": _("Removed an alert rule"),
    "observability.rules.builtin_install": _("Installed the built-in alert rules"),
    "observability.rules.builtin_remove": _("Removed the built-in alert rules"),
    "observability.receiver.create": _("Created a notification receiver"),
    "observability.receiver.update": _("Changed a notification receiver"),
    "observability.receiver.delete": _("Removed a notification receiver"),
    "observability.receiver.test": _("Sent a test notification"),
    "observability.silence.create": _("Created a silence"),
    "observability.silence.expire": _("Expired a silence"),
}


def action_label(code: str) -> str:
    """The action in words; an action without words (Django admin's, a new one) shows its code."""
    if code in ACTIONS:
        return str(ACTIONS[code])
    if code.startswith("admin."):
        return str(_("Changed through Django admin"))
    return code
