"""The directory (LDAP / Active Directory) sign-in backend, named in kubemate/settings/ldap.py.

django-auth-ldap's backend, with two differences: the accounts, names and group memberships it copies from the
directory at each sign-in are audited and projected as the directory sync (``actor.DIRECTORY_SYNC``), and a
person deactivated in the console can neither sign in nor keep a session, as with local accounts (Django's
own backend refuses inactive users; django-auth-ldap's does not).

Imported only when the directory is configured, since it loads python-ldap.
"""

from __future__ import annotations

from django_auth_ldap.backend import LDAPBackend

from apps.accounts.actor import DIRECTORY_SYNC, acting_as


class DirectoryBackend(LDAPBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        with acting_as(name=DIRECTORY_SYNC, request=request):
            user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and not user.is_active:
            return None
        return user

    def get_user(self, user_id):
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None
