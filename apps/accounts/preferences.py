"""A person's display settings: the time zone every time is shown in (templates use ``core``'s ``when`` filters,
which format in the active zone). ``TimeZoneMiddleware`` activates the zone for each request from the session,
where ``set_time_zone`` and sign-in put it, so a page costs no extra query."""

from __future__ import annotations

import zoneinfo
from functools import cache

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db import DatabaseError, transaction
from django.dispatch import receiver
from django.utils import timezone
from django.views.i18n import set_language as django_set_language

from apps.core import audit

SESSION_KEY = "kubemate_tz"
# Offered first: the zones a bank's operators in China and its partners work in.
COMMON = (
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Singapore",
    "Asia/Tokyo",
    "UTC",
    "Europe/London",
    "Europe/Frankfurt",
    "America/New_York",
)


@cache
def all_zones() -> tuple[str, ...]:
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


def is_zone(name: str) -> bool:
    return name in all_zones()


def time_zone_of(user) -> str:
    """The user's zone name, or the installation's."""
    return time_zone_of_id(getattr(user, "pk", None))


def time_zone_of_id(user_id) -> str:
    from apps.accounts.models import Preference

    pref = Preference.objects.filter(user_id=user_id).first()
    return (pref.time_zone if pref and pref.time_zone else "") or settings.TIME_ZONE


def set_time_zone(*, actor, user, name: str, request=None) -> None:
    """Store ``user``'s zone (``""``: the installation's), audited; the session of the request follows at once."""
    from apps.accounts.models import Preference

    if name and not is_zone(name):
        raise ValueError(name)
    with transaction.atomic():
        Preference.objects.update_or_create(user=user, defaults={"time_zone": name})
        audit.record(
            actor=actor,
            action="accounts.preference.time_zone",
            kind="user",
            name=user.get_username(),
            detail={"time_zone": name or settings.TIME_ZONE},
            request=request,
        )
    if request is not None and request.user.pk == user.pk:
        request.session[SESSION_KEY] = name or settings.TIME_ZONE
        timezone.activate(zoneinfo.ZoneInfo(name or settings.TIME_ZONE))


@receiver(user_logged_in)
def _remember_zone(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = time_zone_of(user)


class TimeZoneMiddleware:
    """Activate the signed-in person's time zone for this request (after AuthenticationMiddleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # From the session alone (cached, no database query): /healthz must answer while the database is down.
        session = getattr(request, "session", None)
        name = session.get(SESSION_KEY) if session is not None else None
        if not name and session is not None and session.get("_auth_user_id"):
            try:
                name = session[SESSION_KEY] = time_zone_of_id(session.get("_auth_user_id"))
            except DatabaseError:
                name = None
        if name and is_zone(name):
            timezone.activate(zoneinfo.ZoneInfo(name))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def set_language(request):
    """Django's ``set_language`` (the cookie the console reads), and for a signed-in person the choice kept, so
    what is sent to them later (a scheduled report's email) is written in it."""
    response = django_set_language(request)
    code = request.POST.get("language", "")
    user = getattr(request, "user", None)
    if request.method == "POST" and user is not None and user.is_authenticated and code in dict(settings.LANGUAGES):
        from apps.accounts.models import Preference

        Preference.objects.update_or_create(user=user, defaults={"language": code})
    return response
