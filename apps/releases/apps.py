from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReleasesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.releases"
    verbose_name = _("Releases")

    def ready(self) -> None:
        # Deploys and rollbacks approved under four-eyes approval are applied by these (apps/core/gates.py).
        from apps.core import gates
        from apps.releases import approvals

        for action in ("releases.deploy", "releases.rollback"):
            gates.register_applier(action, apply=approvals.apply, stale=approvals.stale, rendered=approvals.rendered)
        gates.register_applier(
            "releases.promote",
            apply=approvals.apply_promote,
            stale=approvals.stale_promote,
            rendered=approvals.rendered_promote,
        )
        gates.register_applier(
            "releases.delete",
            apply=approvals.apply_delete,
            stale=approvals.stale_delete,
            rendered=approvals.rendered_delete,
        )
