"""A user's open sessions: listing and ending them (on deactivation, deletion and on request)."""

from __future__ import annotations

from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.utils import timezone

# The cache key prefix of django.contrib.sessions.backends.cached_db.
CACHED_DB_PREFIX = "django.contrib.sessions.cached_db"


def user_sessions(user_id) -> list[Session]:
    live = Session.objects.filter(expire_date__gt=timezone.now())
    return [s for s in live if str(s.get_decoded().get("_auth_user_id")) == str(user_id)]


def end_sessions(user_id) -> int:
    """End every open session of the user with this id; returns how many were open."""
    sessions = user_sessions(user_id)
    Session.objects.filter(session_key__in=[s.session_key for s in sessions]).delete()
    # cached_db sessions: drop the cached copies too.
    cache.delete_many([f"{CACHED_DB_PREFIX}{s.session_key}" for s in sessions])
    return len(sessions)
