"""View guards: a capability check that answers 404 like a missing page."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required

from apps.accounts.access import require


def capability_required(code: str):
    """Run the view only for users holding platform capability ``code``; others get 404."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            require(request.user, code)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
