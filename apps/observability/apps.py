from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ObservabilityConfig(AppConfig):
    name = "apps.observability"
    verbose_name = _("Observability")
    default_auto_field = "django.db.models.BigAutoField"
