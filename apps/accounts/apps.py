from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from apps.accounts import changes, preferences, signals  # noqa: F401 (preferences: sign-in receiver)

        signals.connect()
        changes.connect()

        from apps.accounts import approvals, grants
        from apps.core import gates

        # A grant may wait for a second person's approval (apps/compliance/approvals).
        gates.register_applier(grants.ACTION, apply=approvals.apply, stale=approvals.stale)
