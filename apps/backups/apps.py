from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BackupsConfig(AppConfig):
    name = "apps.backups"
    verbose_name = _("Backups")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Workers learn the tasks beat starts (beat.py: each plan's schedule, retention, usage counts).
        from apps.backups import beat  # noqa: F401
        from apps.backups.velero import approvals
        from apps.core import gates

        # A Velero restore may wait for a second person's approval (apps/compliance/approvals).
        gates.register_applier(
            "backups.restore", apply=approvals.apply, stale=approvals.stale, rendered=approvals.rendered
        )
