from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CicdConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.cicd"
    verbose_name = _("CI/CD")
