from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TerminalConfig(AppConfig):
    name = "apps.terminal"
    verbose_name = _("Web terminal")
    default_auto_field = "django.db.models.BigAutoField"
