"""Auth signal handlers: stamp the login time that the absolute session limit counts from."""

import time

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from apps.core.middleware import LAST_ACTIVITY_KEY, LOGIN_AT_KEY


@receiver(user_logged_in)
def stamp_login(sender, request, user, **kwargs) -> None:
    now = time.time()
    request.session[LOGIN_AT_KEY] = now
    request.session[LAST_ACTIVITY_KEY] = now
