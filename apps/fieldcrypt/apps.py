from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FieldcryptConfig(AppConfig):
    name = "apps.fieldcrypt"
    verbose_name = _("Field encryption")
    default_auto_field = "django.db.models.BigAutoField"
