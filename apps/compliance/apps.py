from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ComplianceConfig(AppConfig):
    name = "apps.compliance"
    verbose_name = _("Compliance")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Workers learn the tasks beat starts (the audit forwarding pass).
        # Four-eyes approval holds gated changes back (apps/core/gates.py).
        from apps.compliance.approvals import services as approvals
        from apps.compliance.approvals import tasks as approval_tasks  # noqa: F401
        from apps.compliance.forwarding import tasks  # noqa: F401
        from apps.compliance.reviews import tasks as review_tasks  # noqa: F401
        from apps.core import gates

        gates.register(approvals)
