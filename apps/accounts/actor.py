"""Who is changing users, groups, roles, projects and bindings right now, for the events the model signals write.

Every path that changes those rows ends in a model signal (changes.py), which must name who did it:

- a web request, the console's pages and Django admin alike: the signed-in user, set by ``ActorMiddleware``;
- the console's services: the actor they are given (``service`` below), and they write their own event;
- the directory sign-in: ``DIRECTORY_SYNC`` (apps/accounts/directory.py);
- single sign-on: ``SSO_SYNC`` (apps/accounts/oidc/backend.py);
- code that knows better: ``with acting_as(user)`` or ``acting_as(name="...")``;
- anything else is named after its process: ``manage.py <command> (<OS user>)`` for a management command
  (createsuperuser, changepassword, shell, the demo's commands), ``system`` for the worker and the rest.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps

from django.db import transaction

SYSTEM = "system"
DIRECTORY_SYNC = "ldap-sync"
SSO_SYNC = "oidc-sync"
MANAGE_PROGRAMS = ("manage.py", "django-admin", "django-admin.py")


@dataclass(frozen=True)
class Actor:
    """The person (``user``, or None) or process (``name``) behind a change, and the request if any."""

    user: object | None = None
    name: str = SYSTEM
    request: object | None = None


_explicit: ContextVar[Actor | None] = ContextVar("kubemate_actor", default=None)
_request: ContextVar[object | None] = ContextVar("kubemate_actor_request", default=None)
_audited_by_service: ContextVar[bool] = ContextVar("kubemate_audited_by_service", default=False)


def process_name() -> str:
    """``manage.py <command> (<OS user>)`` inside a management command, else ``system``."""
    argv = sys.argv or [""]
    if os.path.basename(argv[0]) in MANAGE_PROGRAMS and len(argv) > 1:
        try:
            who = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry for the uid, as in some containers
            who = str(os.getuid())
        return f"manage.py {argv[1]} ({who})"[:150]
    return SYSTEM


def current() -> Actor:
    explicit = _explicit.get()
    if explicit is not None:
        return explicit
    request = _request.get()
    user = getattr(request, "user", None) if request is not None else None
    if user is not None and user.is_authenticated:
        return Actor(user=user, name=user.get_username(), request=request)
    return Actor(name=process_name(), request=request)


@contextmanager
def acting_as(user=None, *, name: str = "", request=None) -> Iterator[Actor]:
    """Name the actor of the changes made inside the block (a user, or a process by ``name``)."""
    actor = Actor(
        user=user if getattr(user, "pk", None) is not None else None,
        name=name or (user.get_username() if user is not None else SYSTEM),
        request=request if request is not None else _request.get(),
    )
    token = _explicit.set(actor)
    try:
        yield actor
    finally:
        _explicit.reset(token)


def audited_by_service() -> bool:
    """Whether the change under way belongs to a console service that writes its own audit event."""
    return _audited_by_service.get()


def service(func):
    """A console service: one transaction, and the service writes the one audit event itself.

    The model signals still queue the projection and end sessions; they only skip their own event, so that
    each change is written once, with the service's richer detail.
    """

    @wraps(func)
    def wrapper(*args, **kwargs):
        actor = kwargs.get("actor")
        token = _audited_by_service.set(True)
        # No person given: the process already named around the call (acting_as(name=...)) stays the actor.
        naming = nullcontext() if actor is None and _explicit.get() is not None else None
        try:
            with transaction.atomic(), naming or acting_as(actor, request=kwargs.get("request")):
                return func(*args, **kwargs)
        finally:
            _audited_by_service.reset(token)

    return wrapper


class ActorMiddleware:
    """Makes the request's signed-in user the actor of every change the request makes (console and admin).

    The user is read when a change is recorded, not when the request starts, so that a sign-in during the
    request (Django admin's own login page) names the person who signed in.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)
