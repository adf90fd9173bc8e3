"""Optional sign-in against LDAP or Active Directory, configured from KUBEMATE_LDAP_* variables.

``ldap_settings(os.environ, AUTHENTICATION_BACKENDS)`` returns the settings to
add: nothing when KUBEMATE_LDAP_URI is unset, otherwise django-auth-ldap's
backend (after django-axes, so lock-out still applies, and before the local
accounts) and its AUTH_LDAP_* settings. Kubemate binds with a service account,
searches for the person under KUBEMATE_LDAP_USER_BASE and binds as them to
check the password; name and email are copied on every sign-in. When
KUBEMATE_LDAP_GROUP_BASE is set, the person's directory groups become their
Django groups (AUTH_LDAP_MIRROR_GROUPS), which Kubemate bindings can target.

python-ldap is imported only when LDAP is configured, so a console without a
directory never loads it.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubemate.settings.sign_in import backends_with, flag
from kubemate.startup import StartupError

# django-auth-ldap's backend, audited as the directory sync and refusing deactivated people.
LDAP_BACKEND = "apps.accounts.directory.DirectoryBackend"
DEFAULT_USER_FILTER = "(uid=%(user)s)"
# Group type name -> (django-auth-ldap class, default search filter).
GROUP_TYPES = {
    "groupOfNames": ("GroupOfNamesType", "(objectClass=groupOfNames)"),
    "groupOfUniqueNames": ("GroupOfUniqueNamesType", "(objectClass=groupOfUniqueNames)"),
    "posixGroup": ("PosixGroupType", "(objectClass=posixGroup)"),
    # Active Directory: nested groups count, as they do for Windows permissions.
    "activeDirectory": ("NestedActiveDirectoryGroupType", "(objectClass=group)"),
}


def ldap_settings(env: Mapping[str, str], backends: list[str] | None = None) -> dict:
    """The settings that turn on directory sign-in, or an empty dict when KUBEMATE_LDAP_URI is unset."""
    uri = (env.get("KUBEMATE_LDAP_URI") or "").strip()
    if not uri:
        return {}
    user_base = (env.get("KUBEMATE_LDAP_USER_BASE") or "").strip()
    if not user_base:
        raise StartupError(
            "KUBEMATE_LDAP_URI is set but KUBEMATE_LDAP_USER_BASE is not; "
            "set it to the DN under which people are found, such as ou=people,dc=bank,dc=example."
        )
    group_type_name = (env.get("KUBEMATE_LDAP_GROUP_TYPE") or "groupOfNames").strip()
    if group_type_name not in GROUP_TYPES:
        raise StartupError(
            f"KUBEMATE_LDAP_GROUP_TYPE must be one of {', '.join(GROUP_TYPES)}, not {group_type_name!r}."
        )

    import ldap
    from django_auth_ldap import config

    user_filter = (env.get("KUBEMATE_LDAP_USER_FILTER") or DEFAULT_USER_FILTER).strip()
    connection_options = {
        # Active Directory answers with referrals that python-ldap would chase without credentials.
        ldap.OPT_REFERRALS: 0,
        ldap.OPT_NETWORK_TIMEOUT: 5,
        ldap.OPT_TIMEOUT: 10,
    }
    ca_file = (env.get("KUBEMATE_LDAP_CA_FILE") or "").strip()
    if ca_file:
        connection_options[ldap.OPT_X_TLS_CACERTFILE] = ca_file
        # Must come last: it builds the TLS context from the options set before it.
        connection_options[ldap.OPT_X_TLS_NEWCTX] = 0

    result = {
        "AUTHENTICATION_BACKENDS": backends_with(LDAP_BACKEND, list(backends or [])),
        "AUTH_LDAP_SERVER_URI": uri,
        "AUTH_LDAP_BIND_DN": env.get("KUBEMATE_LDAP_BIND_DN", ""),
        "AUTH_LDAP_BIND_PASSWORD": env.get("KUBEMATE_LDAP_BIND_PASSWORD", ""),
        "AUTH_LDAP_START_TLS": flag(env.get("KUBEMATE_LDAP_START_TLS")),
        "AUTH_LDAP_USER_SEARCH": config.LDAPSearch(user_base, ldap.SCOPE_SUBTREE, user_filter),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_CONNECTION_OPTIONS": connection_options,
    }
    group_base = (env.get("KUBEMATE_LDAP_GROUP_BASE") or "").strip()
    if group_base:
        class_name, default_filter = GROUP_TYPES[group_type_name]
        group_filter = (env.get("KUBEMATE_LDAP_GROUP_FILTER") or default_filter).strip()
        result |= {
            "AUTH_LDAP_GROUP_SEARCH": config.LDAPSearch(group_base, ldap.SCOPE_SUBTREE, group_filter),
            "AUTH_LDAP_GROUP_TYPE": getattr(config, class_name)(),
            "AUTH_LDAP_MIRROR_GROUPS": True,
        }
        require_group = (env.get("KUBEMATE_LDAP_REQUIRE_GROUP") or "").strip()
        if require_group:
            result["AUTH_LDAP_REQUIRE_GROUP"] = require_group
    return result
