"""Third-party apps in the reader's language.

django-axes (sign-in lock-out) ships no Chinese: its admin section gets a name here (``AxesConfig``, listed in
INSTALLED_APPS in place of "axes"), and its message ids are listed so that makemessages keeps them in our
catalogue, where they are translated.
"""

from axes.apps import AppConfig as AxesAppConfig
from django.utils.translation import gettext_lazy as _

from apps.core.deferred import N_


class AxesConfig(AxesAppConfig):
    verbose_name = _("Sign-in protection (django-axes)")


AXES_MESSAGE_IDS = (
    N_("User Agent"),
    N_("IP Address"),
    N_("Username"),
    N_("HTTP Accept"),
    N_("Path"),
    N_("Attempt Time"),
    N_("Access lock out"),
    N_("access failure"),
    N_("access failures"),
    N_("GET Data"),
    N_("POST Data"),
    N_("Failed Logins"),
    N_("access attempt"),
    N_("access attempts"),
    N_("Access Attempt"),
    N_("Expires At"),
    N_("The time when access attempt expires and is no longer valid."),
    N_("access attempt expiration"),
    N_("access attempt expirations"),
    N_("Logout Time"),
    N_("Session key hash (sha256)"),
    N_("access log"),
    N_("access logs"),
    N_("Locked Out"),
    N_("Yes"),
    N_("No"),
    N_("Form Data"),
    N_("Meta Data"),
    N_("Clean up expired attempts"),
    N_("Not set"),
    N_("Attempt Remaining"),
    N_("Account locked: too many login attempts. Please try again later."),
    N_("Account locked: too many login attempts. Contact an admin to unlock your account."),
)
