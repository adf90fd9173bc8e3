from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InspectionConfig(AppConfig):
    name = "apps.inspection"
    verbose_name = _("Inspection")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Workers learn the schedule task (beat.py) and every check registers (catalogue.py).
        from apps.inspection import beat, catalogue  # noqa: F401
