from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CicdConfig(AppConfig):
    name = "apps.cicd"
    verbose_name = _("CI/CD")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Workers learn the tasks that go through services (beat.py: schedules, the dispatcher, retention).
        from apps.cicd import beat  # noqa: F401
