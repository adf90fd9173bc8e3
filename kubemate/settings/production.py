"""Production settings: the base settings plus refusals and transport security.

Use with DJANGO_SETTINGS_MODULE=kubemate.settings.production. Kubemate will not
start without a real SECRET_KEY, encryption keys and ALLOWED_HOSTS.
"""

from cryptography.fernet import Fernet

from kubemate.settings.base import *  # noqa: F403
from kubemate.settings.base import DEV_ENCRYPTION_KEY, DEV_SECRET_KEY, env, env_bool, env_int, env_list
from kubemate.startup import StartupError

DEBUG = False

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY:
    raise StartupError("SECRET_KEY is not set; set it to a random string of at least 50 characters.")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise StartupError("SECRET_KEY is too short; use a random string of at least 50 characters.")

ENCRYPTION_KEYS = env_list("KUBEMATE_ENCRYPTION_KEYS")
if not ENCRYPTION_KEYS or DEV_ENCRYPTION_KEY in ENCRYPTION_KEYS:
    raise StartupError(
        "KUBEMATE_ENCRYPTION_KEYS is not set; set it to one or more Fernet keys, newest first, separated by commas."
    )
for _key in ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        raise StartupError(
            "KUBEMATE_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 bytes, base64)."
        ) from None

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    raise StartupError("ALLOWED_HOSTS is not set; list the host names the console is served under.")

SECURE_SSL_REDIRECT = env_bool("KUBEMATE_SSL_REDIRECT", True)
if env_bool("KUBEMATE_BEHIND_TLS_PROXY", True):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("KUBEMATE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
LANGUAGE_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
