"""Kubemate settings, read from environment variables.

Every variable has a documented default that suits a developer machine; the
production module (kubemate.settings.production) refuses the insecure ones.

| variable                  | default                                   |
|---------------------------|-------------------------------------------|
| DATABASE_URL              | postgres://kubemate@127.0.0.1:5432/kubemate |
| REDIS_URL                 | redis://127.0.0.1:6379/0                  |
| SECRET_KEY                | an insecure development key               |
| ALLOWED_HOSTS             | localhost,127.0.0.1                       |
| KUBEMATE_ENCRYPTION_KEYS  | an insecure development Fernet key; comma-separated, newest first |
| EMAIL_HOST / EMAIL_PORT   | unset (mail is printed to the log) / 25   |
| EMAIL_HOST_USER, EMAIL_HOST_PASSWORD      | empty                                     |
| EMAIL_USE_TLS / DEFAULT_FROM_EMAIL        | false / kubemate@localhost                |
| TIME_ZONE                 | UTC                                       |
| LANGUAGE_CODE             | en (or zh-hans)                           |
| KUBEMATE_DEBUG            | false                                     |
| KUBEMATE_SESSION_IDLE_SECONDS / KUBEMATE_SESSION_ABSOLUTE_SECONDS | 1800 / 43200 |
| KUBEMATE_LOG_LEVEL        | INFO                                      |
| KUBEMATE_WORKER_BEAT      | false; true: the worker runs the beat schedule in a thread (any number: one beats) |
| KUBEMATE_WORKER_SYNC      | false; true: the worker runs the inventory sync in threads (any number: one per cluster) |
| KUBEMATE_LEASE_SECONDS    | 10: a dead holder's sync or beat is taken over within this and two thirds of it |
| KUBEMATE_RELEASE_ROLLOUT_TIMEOUT_SECONDS | 900: a rollout not finished by then is reported as failed |
| KUBEMATE_DRAIN_TIMEOUT_SECONDS | 300: a drain stops then and names the pods still on the node |
| KUBEMATE_SECURITY_CONTACTS | empty; addresses told of every break-glass change (comma-separated) |
| KUBEMATE_PUBLIC_URL       | empty: the console's address as the saving request saw it (notification relay, links) |
| KUBEMATE_TERMINAL_URL     | empty: /ws/terminal/ on the console's address (a proxy sends it to terminal_server) |
| KUBEMATE_TERMINAL_IDLE_SECONDS / _MAX_SECONDS | 600 / 3600: a terminal closes idle, or in all |
| KUBEMATE_INSECURE_REGISTRIES | empty: registries the inspection asks over plain HTTP (host:port, comma-separated) |
| KUBEMATE_CICD_STORAGE     | .run/cicd: uploads, image archives, scan reports, SBOMs and vulnerability databases |
| KUBEMATE_CICD_MAX_UPLOAD_MB | 512: the largest jar or war, and vulnerability database bundle, accepted |
| KUBEMATE_CICD_GIT_IMAGE   | {registry}/kubemate/git:2.39: the clone step of in-cluster builds |
| KUBEMATE_CICD_BUILDER_IMAGE | {registry}/kubemate/kaniko-executor:v1.23.2: their build-and-push step |
| KUBEMATE_CICD_BUILD_TIMEOUT_SECONDS | 1800: an in-cluster build not finished by then is stopped |
| KUBEMATE_CICD_LOCAL_GIT   | false; true: pipelines may read git repositories on this server (file://, paths) |
| KUBEMATE_BACKUP_WORKDIR   | .run/backups-work: dumps and snapshots on their way to or from a storage target |
| KUBEMATE_BACKUP_PART_MB   | 16: the part size of multipart uploads (at least 5) |
| KUBEMATE_BACKUP_MAX_MB    | 20480: the largest backup downloaded and opened again |
| KUBEMATE_BACKUP_ETCD_CHECK_SECONDS | 10: how long saving etcd access waits for etcd to answer its status |
| KUBEMATE_ETCDCTL / KUBEMATE_ETCDUTL | etcd's tools; default: the build cache's, else on PATH |
| KUBEMATE_PG_BIN           | the folder of pg_dump and pg_restore; default: the newest /usr/lib/postgresql/*/bin |
| KUBEMATE_CRANE / KUBEMATE_OSV_SCANNER | the built binaries (deploy/sandbox/build), else on PATH |
| KUBEMATE_LDAP_URI         | unset: no directory sign-in; ldap://host or ldaps://host turns it on |
| KUBEMATE_LDAP_BIND_DN / KUBEMATE_LDAP_BIND_PASSWORD | empty (anonymous search)    |
| KUBEMATE_LDAP_USER_BASE   | required with KUBEMATE_LDAP_URI, e.g. ou=people,dc=bank,dc=example |
| KUBEMATE_LDAP_USER_FILTER | (uid=%(user)s); Active Directory: (sAMAccountName=%(user)s) |
| KUBEMATE_LDAP_GROUP_BASE  | unset: groups are not mirrored; set: directory groups become Django groups |
| KUBEMATE_LDAP_GROUP_TYPE  | groupOfNames; or groupOfUniqueNames, posixGroup, activeDirectory |
| KUBEMATE_LDAP_GROUP_FILTER | chosen by the group type, e.g. (objectClass=groupOfNames) |
| KUBEMATE_LDAP_REQUIRE_GROUP | unset; a group DN whose members alone may sign in |
| KUBEMATE_LDAP_START_TLS / KUBEMATE_LDAP_CA_FILE | false / the system's CA certificates |
| KUBEMATE_OIDC_ISSUER      | unset: no single sign-on; the provider's https:// issuer turns it on (docs/sso.md) |
| KUBEMATE_OIDC_CLIENT_ID / KUBEMATE_OIDC_CLIENT_SECRET | required with the issuer (or ..._SECRET_FILE) |
| KUBEMATE_OIDC_NAME        | empty; the sign-in button's name for it, e.g. Bank SSO |
| KUBEMATE_OIDC_SCOPES      | openid profile email groups |
| KUBEMATE_OIDC_GROUPS_CLAIM / KUBEMATE_OIDC_USERNAME_CLAIM | groups / preferred_username |
| KUBEMATE_OIDC_MIRROR_GROUPS | true: the groups claim becomes the person's groups at each sign-in |
| KUBEMATE_OIDC_REQUIRE_GROUP | unset; a group in the claim whose members alone may sign in |
| KUBEMATE_OIDC_SIGN_ALGO   | RS256; or ES256 (never HS256 or none) |
| KUBEMATE_OIDC_CA_FILE     | the system's CA certificates; a private CA of the provider |
| KUBEMATE_OIDC_CLIENT_SECRET_BASIC | true: client_secret_basic at the token endpoint; false: client_secret_post |
| KUBEMATE_OIDC_ALLOW_HTTP  | false; true lets a provider on this host use plain http:// (tests, the demo) |
| KUBEMATE_PROMETHEUS_SCRAPE_SECONDS | 30: the clusters' Prometheus scrape interval (chart steps and rate windows) |
| KUBEMATE_MILVUS_URI       | empty: knowledge bases off; http://host:19530 (Milvus, or Milvus Lite's server mode) |
| KUBEMATE_MILVUS_TOKEN / KUBEMATE_MILVUS_COLLECTION | empty / kubemate_chunks |
| KUBEMATE_MILVUS_TIMEOUT   | 10: seconds a Milvus call may take |
| KUBEMATE_AI_EMBED_THREADS | 1: threads of the embedding model in each worker |
| KUBEMATE_AI_LLM_TIMEOUT   | 10: seconds to connect to a model server and for its first token |
| KUBEMATE_AI_ANSWER_SECONDS | 120: the longest an answer may stream |
| KUBEMATE_AI_ANSWER_TOKENS | 400: the longest answer asked of the model, in tokens |
| KUBEMATE_AI_PROMPT_TOKENS | 1500: the assistant's prompt (rules, turns, question, passages), estimated tokens |
| KUBEMATE_AI_QUESTION_MAX_CHARS | 1000: the longest question taken (at most 2000) |
| KUBEMATE_AI_QUESTIONS_PER_MINUTE / _PER_DAY | 6 / 200: the questions one person may ask |
| KUBEMATE_AI_CACHE_SECONDS | 604800: how long an answer stays cached (a changed knowledge base misses anyway) |
| KUBEMATE_AI_DOCUMENTS_DIR | .run/ai-documents: uploaded documents when their knowledge base has no S3 target |
| KUBEMATE_AI_DOCUMENT_MAX_MB / _MAX_PAGES / _MAX_CHARACTERS | 20 / 2000 / 2000000: the largest document accepted |
| KUBEMATE_AI_DOCX_MAX_UNCOMPRESSED_MB | 100: a .docx whose parts unpack to more is refused unread |

Values in .run/services.env (written by `make services`) are used when the
variable is not set in the environment.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from kubemate import __version__
from kubemate.startup import StartupError, load_env_file

BASE_DIR = Path(__file__).resolve().parent.parent.parent
load_env_file(BASE_DIR / ".run" / "services.env")

DEV_SECRET_KEY = "django-insecure-kubemate-development-only-key-do-not-use-in-production"
# A fixed Fernet key for development and tests only; production refuses it.
DEV_ENCRYPTION_KEY = "a3ViZW1hdGUtZGV2ZWxvcG1lbnQta2V5LTMyYnl0ZXM="


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        raise StartupError(f"{name} must be a whole number, not {value!r}.") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("KUBEMATE_DEBUG", False)
SECRET_KEY = env("SECRET_KEY", DEV_SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
ENCRYPTION_KEYS = env_list("KUBEMATE_ENCRYPTION_KEYS", DEV_ENCRYPTION_KEY)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "apps.core.third_party.AxesConfig",  # django-axes, with a translated admin section
    "apps.core",
    "apps.accounts",
    "apps.clusters",
    "apps.releases",
    "apps.fieldcrypt",
    "apps.terminal",
    "apps.observability",
    "apps.inspection",
    "apps.cicd",
    "apps.backups",
    "apps.ai",
    "apps.compliance",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "apps.core.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "apps.core.request_checks.RefuseControlCharactersMiddleware",
    "apps.core.request_checks.UrlencodedBodyLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The signed-in user is the actor of the changes a request makes to accounts, in the console and admin alike.
    "apps.accounts.actor.ActorMiddleware",
    # Times show in the person's own time zone (a setting per user).
    "apps.accounts.preferences.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "apps.core.middleware.SessionExpiryMiddleware",
    "apps.core.middleware.ServiceUnavailableMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lock-out into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

# A request body is at most 2 MiB (the object editor's 1.5 MiB of YAML as multipart); a URL-encoded body at
# most 256 KiB, since decoding escapes costs about a hundred times the size (apps.core.request_checks).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
KUBEMATE_MAX_URLENCODED_BODY = 256 * 1024

# Sent on every answer by apps.core.csp: scripts only from our own static files (no inline script, no eval).
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

ROOT_URLCONF = "kubemate.urls"
WSGI_APPLICATION = "kubemate.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "kubemate.navigation.console",
            ],
        },
    }
]

DATABASE_URL = env("DATABASE_URL", "postgres://kubemate@127.0.0.1:5432/kubemate")
if not DATABASE_URL.startswith(("postgres://", "postgresql://")):
    raise StartupError("DATABASE_URL must point at PostgreSQL (postgres://user:password@host:port/name).")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "apps.core.cache.ResilientRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "kubemate",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 2},
    }
}

SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_IDLE_SECONDS = env_int("KUBEMATE_SESSION_IDLE_SECONDS", 30 * 60)
SESSION_ABSOLUTE_SECONDS = env_int("KUBEMATE_SESSION_ABSOLUTE_SECONDS", 12 * 60 * 60)
# The cookie lives as long as the absolute limit; SessionExpiryMiddleware enforces the idle one.
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_SECONDS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_NAME = "kubemate_session"
CSRF_COOKIE_NAME = "kubemate_csrftoken"
LANGUAGE_COOKIE_NAME = "kubemate_language"
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_HTTPONLY = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# django-axes: 5 failed sign-ins per account and address lock that pair out for 15 minutes.
AXES_FAILURE_LIMIT = env_int("KUBEMATE_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("KUBEMATE_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Dangerous actions (drain, delete, restore, user management) ask for the password again
# when the last sign-in or confirmation is older than this.
REAUTH_MAX_AGE_SECONDS = env_int("KUBEMATE_REAUTH_SECONDS", 5 * 60)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = env("LANGUAGE_CODE", "en")
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
if LANGUAGE_CODE not in {code for code, _name in LANGUAGES}:
    raise StartupError(f"LANGUAGE_CODE must be one of en, zh-hans, not {LANGUAGE_CODE!r}.")
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / ".run" / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Fall back to unhashed names when a file was added after the last collectstatic.
WHITENOISE_MANIFEST_STRICT = False

# Registries asked over plain HTTP by the inspection's reachability check (host or host:port as images name them).
KUBEMATE_INSECURE_REGISTRIES = env_list("KUBEMATE_INSECURE_REGISTRIES")

# CI/CD: where runs keep their files, the largest upload, and the image tools (crane, osv-scanner). Empty tool
# paths: the ones deploy/sandbox/build put in the cache, else the command on PATH (apps/cicd/tools.py).
KUBEMATE_CICD_STORAGE = Path(env("KUBEMATE_CICD_STORAGE") or BASE_DIR / ".run" / "cicd")
KUBEMATE_CICD_MAX_UPLOAD = env_int("KUBEMATE_CICD_MAX_UPLOAD_MB", 512) * 1024 * 1024
# No request body may be larger than the largest upload (and its form's few fields): refused before it is read.
KUBEMATE_MAX_REQUEST_BODY = KUBEMATE_CICD_MAX_UPLOAD + 1024 * 1024
KUBEMATE_CRANE = env("KUBEMATE_CRANE")
# In-cluster builds of repository pipelines (a Tekton PipelineRun, else a Job): the images they run, taken from the
# pipeline's own registry ({registry} is its host), and how long a build may take.
KUBEMATE_CICD_GIT_IMAGE = env("KUBEMATE_CICD_GIT_IMAGE", "{registry}/kubemate/git:2.39")
KUBEMATE_CICD_BUILDER_IMAGE = env("KUBEMATE_CICD_BUILDER_IMAGE", "{registry}/kubemate/kaniko-executor:v1.23.2")
KUBEMATE_CICD_BUILD_TIMEOUT_SECONDS = env_int("KUBEMATE_CICD_BUILD_TIMEOUT_SECONDS", 1800)
# Repositories on this server's own disk (file:// or a path): off, since they would let a person read its files;
# the tests and the demo turn it on for their local bare repository.
KUBEMATE_CICD_LOCAL_GIT = env_bool("KUBEMATE_CICD_LOCAL_GIT", False)

# Backups: a private working folder for dumps and snapshots on their way to or from a storage target, the part size
# of multipart uploads, the largest backup Kubemate downloads and opens again, and the tools' paths (the ones
# deploy/sandbox/build put in the cache, else the command on PATH: apps/backups/tools.py).
KUBEMATE_BACKUP_WORKDIR = Path(env("KUBEMATE_BACKUP_WORKDIR") or BASE_DIR / ".run" / "backups-work")
KUBEMATE_BACKUP_PART_MB = env_int("KUBEMATE_BACKUP_PART_MB", 16)
KUBEMATE_BACKUP_MAX_MB = env_int("KUBEMATE_BACKUP_MAX_MB", 20480)
KUBEMATE_BACKUP_ETCD_CHECK_SECONDS = env_int("KUBEMATE_BACKUP_ETCD_CHECK_SECONDS", 10)
KUBEMATE_ETCDCTL = env("KUBEMATE_ETCDCTL", "")
KUBEMATE_ETCDUTL = env("KUBEMATE_ETCDUTL", "")
KUBEMATE_PG_BIN = env("KUBEMATE_PG_BIN", "")

# AI (apps/ai): Milvus for the knowledge bases' chunks, the model servers' timeouts, the assistant's limits.
KUBEMATE_MILVUS_URI = env("KUBEMATE_MILVUS_URI", "")
KUBEMATE_MILVUS_TOKEN = env("KUBEMATE_MILVUS_TOKEN", "")
KUBEMATE_MILVUS_COLLECTION = env("KUBEMATE_MILVUS_COLLECTION", "kubemate_chunks")
KUBEMATE_MILVUS_TIMEOUT = env_int("KUBEMATE_MILVUS_TIMEOUT", 10)
KUBEMATE_AI_EMBED_THREADS = env_int("KUBEMATE_AI_EMBED_THREADS", 1)
KUBEMATE_AI_LLM_TIMEOUT = env_int("KUBEMATE_AI_LLM_TIMEOUT", 10)
KUBEMATE_AI_ANSWER_SECONDS = env_int("KUBEMATE_AI_ANSWER_SECONDS", 120)
# The assistant (apps/ai/assistant): the local model reads 2,048 tokens, prompt and answer together.
KUBEMATE_AI_ANSWER_TOKENS = env_int("KUBEMATE_AI_ANSWER_TOKENS", 400)
KUBEMATE_AI_PROMPT_TOKENS = env_int("KUBEMATE_AI_PROMPT_TOKENS", 1500)
KUBEMATE_AI_QUESTION_MAX_CHARS = env_int("KUBEMATE_AI_QUESTION_MAX_CHARS", 1000)
KUBEMATE_AI_QUESTIONS_PER_MINUTE = env_int("KUBEMATE_AI_QUESTIONS_PER_MINUTE", 6)
KUBEMATE_AI_QUESTIONS_PER_DAY = env_int("KUBEMATE_AI_QUESTIONS_PER_DAY", 200)
KUBEMATE_AI_CACHE_SECONDS = env_int("KUBEMATE_AI_CACHE_SECONDS", 7 * 24 * 3600)
KUBEMATE_AI_DOCUMENTS_DIR = Path(env("KUBEMATE_AI_DOCUMENTS_DIR") or BASE_DIR / ".run" / "ai-documents")
KUBEMATE_AI_DOCUMENT_MAX_MB = env_int("KUBEMATE_AI_DOCUMENT_MAX_MB", 20)
KUBEMATE_AI_DOCUMENT_MAX_PAGES = env_int("KUBEMATE_AI_DOCUMENT_MAX_PAGES", 2000)
KUBEMATE_AI_DOCUMENT_MAX_CHARACTERS = env_int("KUBEMATE_AI_DOCUMENT_MAX_CHARACTERS", 2_000_000)
KUBEMATE_AI_DOCX_MAX_UNCOMPRESSED_MB = env_int("KUBEMATE_AI_DOCX_MAX_UNCOMPRESSED_MB", 100)
KUBEMATE_OSV_SCANNER = env("KUBEMATE_OSV_SCANNER")

EMAIL_HOST = env("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "kubemate@localhost")
# Who is told of every break-glass change (four-eyes approval, apps/compliance/approvals): comma-separated addresses.
KUBEMATE_SECURITY_CONTACTS = [a.strip() for a in env("KUBEMATE_SECURITY_CONTACTS", "").split(",") if a.strip()]
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)

CELERY_BROKER_URL = REDIS_URL
# A Running job whose worker has not beaten for this long is ended by core.reap_orphaned_jobs (beat, every
# 30 s, and each job poll); the worker beats every KUBEMATE_WORKER_HEARTBEAT_SECONDS.
KUBEMATE_JOB_HEARTBEAT_TIMEOUT = env_int("KUBEMATE_JOB_HEARTBEAT_TIMEOUT", 90)
KUBEMATE_WORKER_HEARTBEAT_SECONDS = env_int("KUBEMATE_WORKER_HEARTBEAT_SECONDS", 10)
# A lock's key expires this long after its holder stops renewing it (apps/core/locks.py).
KUBEMATE_LOCK_KEEP_SECONDS = env_int("KUBEMATE_LOCK_KEEP_SECONDS", 30)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# One process instead of three on a small installation (apps/core/worker_steps.py,
# apps/clusters/inventory/worker_step.py): each Python process costs ~90 MB, so the worker can host the beat
# schedule and the inventory sync as threads. Run exactly one such worker.
KUBEMATE_WORKER_BEAT = env_bool("KUBEMATE_WORKER_BEAT", False)
KUBEMATE_WORKER_SYNC = env_bool("KUBEMATE_WORKER_SYNC", False)
# A lease (a cluster's sync, the beat) lives this long from its last renewal; holders renew every third of it.
KUBEMATE_LEASE_SECONDS = env_int("KUBEMATE_LEASE_SECONDS", 10)
# Long jobs give up after these many seconds and say what still waits: a release rollout, a node drain.
KUBEMATE_RELEASE_ROLLOUT_TIMEOUT_SECONDS = env_int("KUBEMATE_RELEASE_ROLLOUT_TIMEOUT_SECONDS", 15 * 60)
KUBEMATE_DRAIN_TIMEOUT_SECONDS = env_int("KUBEMATE_DRAIN_TIMEOUT_SECONDS", 5 * 60)
# Where Alertmanager and robot messages reach the console (the notification relay, links to the alerts page);
# empty: the address of the request that saved the receiver.
KUBEMATE_PUBLIC_URL = env("KUBEMATE_PUBLIC_URL", "").rstrip("/")
# The web terminal service (apps/terminal/server.py): where browsers reach it, and its limits.
KUBEMATE_TERMINAL_URL = env("KUBEMATE_TERMINAL_URL", "").rstrip("/")
KUBEMATE_TERMINAL_IDLE_SECONDS = env_int("KUBEMATE_TERMINAL_IDLE_SECONDS", 600)
KUBEMATE_TERMINAL_MAX_SECONDS = env_int("KUBEMATE_TERMINAL_MAX_SECONDS", 3600)
KUBEMATE_TERMINAL_MAX_INPUT_BYTES = 16 * 1024
KUBEMATE_TERMINAL_MAX_PER_USER = 3
# How often a rollout job looks at the Deployment again (not configuration; tests shorten it).
KUBEMATE_RELEASE_POLL_SECONDS = 2
# How often a job following a Velero backup or restore, or an in-cluster build, looks at it again (the same).
KUBEMATE_FOLLOW_POLL_SECONDS = 2
# The image of the in-pod decryption step (deploy/decrypt, pushed to the bank's registry) for releases that encrypt
# their sensitive variables in the cluster (apps/fieldcrypt).
KUBEMATE_DECRYPT_IMAGE = env("KUBEMATE_DECRYPT_IMAGE", "registry.local/kubemate/decrypt:0.1.0")
# How often the clusters' Prometheus scrapes its targets: charts never step finer than half of it, and rate()
# looks back at least four scrapes (Grafana's $__rate_interval).
KUBEMATE_PROMETHEUS_SCRAPE_SECONDS = env_int("KUBEMATE_PROMETHEUS_SCRAPE_SECONDS", 30)

LOG_LEVEL = env("KUBEMATE_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "apps.core.logging.JsonFormatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "kubernetes": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # WeasyPrint narrates every step of every PDF at INFO; fontTools subsets fonts at INFO too.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

KUBEMATE_VERSION = __version__  # kubemate/__init__.py, also pyproject.toml

# Optional LDAP / Active Directory sign-in (kubemate/settings/ldap.py); nothing changes without KUBEMATE_LDAP_URI.
from kubemate.settings.ldap import ldap_settings  # noqa: E402

globals().update(ldap_settings(os.environ, AUTHENTICATION_BACKENDS))
# Optional OpenID Connect single sign-on (kubemate/settings/oidc.py); nothing changes without KUBEMATE_OIDC_ISSUER.
from kubemate.settings.oidc import oidc_settings  # noqa: E402

globals().update(oidc_settings(os.environ, AUTHENTICATION_BACKENDS))
