"""Security events in the audit log: sign-in, sign-out, failed sign-in and lock-out.

Connected in ``AccountsConfig.ready``. Django replaces the password in a failed
sign-in's credentials, but only the username is ever read here: nothing a
person typed as a secret reaches the audit log.
"""

from __future__ import annotations

from apps.core import audit
from apps.core.models import AuditEvent
from apps.core.reauth import mark_recent_auth

# AuditEvent.actor_name holds at most this many characters; an attacker may type more.
ACTOR_NAME_MAX = 150
UNKNOWN_NAME = "(empty username)"


def _attempted_name(username) -> str:
    name = str(username or "").strip()
    return name[:ACTOR_NAME_MAX] or UNKNOWN_NAME


def record_login(sender, request, user, **kwargs) -> None:
    # Signing in proves the password as well as confirming it again does.
    if request is not None and hasattr(request, "session"):
        mark_recent_auth(request)
    audit.record(actor=user, action="accounts.login", kind="user", name=user.get_username(), request=request)


def record_logout(sender, request, user, **kwargs) -> None:
    if user is None:  # logging out without a session
        return
    audit.record(actor=user, action="accounts.logout", kind="user", name=user.get_username(), request=request)


def record_login_failed(sender, credentials, request=None, **kwargs) -> None:
    if "nonce" in credentials and "username" not in credentials:
        return  # single sign-on: its callback (apps/accounts/oidc/views.py) writes the event with the reason
    name = _attempted_name(credentials.get("username"))
    audit.record(
        actor=None,
        actor_name=name,
        action="accounts.login_failed",
        result=AuditEvent.Result.FAILURE,
        kind="user",
        name=name,
        request=request,
    )


def record_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    name = _attempted_name(username)
    audit.record(
        actor=None,
        actor_name=name,
        action="accounts.locked_out",
        result=AuditEvent.Result.DENIED,
        kind="user",
        name=name,
        request=request,
    )


def connect() -> None:
    from axes.signals import user_locked_out
    from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

    user_logged_in.connect(record_login, dispatch_uid="kubemate.audit.login")
    user_logged_out.connect(record_logout, dispatch_uid="kubemate.audit.logout")
    user_login_failed.connect(record_login_failed, dispatch_uid="kubemate.audit.login_failed")
    user_locked_out.connect(record_locked_out, dispatch_uid="kubemate.audit.locked_out")
