from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ComplianceConfig(AppConfig):
    name = "apps.compliance"
    verbose_name = _("Compliance")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Workers learn the tasks beat starts (the audit forwarding pass).
        from apps.compliance.forwarding import tasks  # noqa: F401
