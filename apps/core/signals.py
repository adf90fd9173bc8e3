"""Signal handlers: stamp the login time that the absolute session limit counts from; give a request's freed heap
back to the system (apps/core/memory.py, at most every 30 s per process)."""

import time

from django.contrib.auth.signals import user_logged_in
from django.core.signals import request_finished
from django.dispatch import receiver

from apps.core import memory
from apps.core.middleware import LAST_ACTIVITY_KEY, LOGIN_AT_KEY


@receiver(user_logged_in)
def stamp_login(sender, request, user, **kwargs) -> None:
    now = time.time()
    request.session[LOGIN_AT_KEY] = now
    request.session[LAST_ACTIVITY_KEY] = now


@receiver(request_finished)
def trim_heap(sender, **kwargs) -> None:
    memory.trim(30)
