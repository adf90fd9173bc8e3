"""Settings for the test suite: the base settings on the same real PostgreSQL and Redis.

Tests use their own Redis database so that a demo worker running beside them
never takes a test's tasks, and plain static storage so that the live server
serves assets straight from the source folders.
"""

from kubemate.settings.base import *  # noqa: F403
from kubemate.settings.base import REDIS_URL, STATIC_ROOT, env

TEST_REDIS_URL = env("KUBEMATE_TEST_REDIS_URL", REDIS_URL.rsplit("/", 1)[0] + "/15")
CELERY_BROKER_URL = TEST_REDIS_URL
REDIS_URL = TEST_REDIS_URL
CACHES = {
    "default": {
        "BACKEND": "apps.core.cache.ResilientRedisCache",
        "LOCATION": TEST_REDIS_URL,
        "KEY_PREFIX": "kubemate-test",
    }
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# A rollout job looks at the Deployment again every half second, not 2 s: kwok's pods are ready within a second, and
# tests wait for hundreds of rollouts.
KUBEMATE_RELEASE_POLL_SECONDS = 0.5
# So do the jobs following a Velero backup or restore, or an in-cluster build.
KUBEMATE_FOLLOW_POLL_SECONDS = 0.5
# Hashing passwords slowly protects real accounts; tests create hundreds.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# WhiteNoise warns about a missing root; the live server serves from the source folders instead.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Two test runs on one machine (say, two checkouts) keep apart by naming their own test database.
DATABASES["default"]["TEST"] = {"NAME": env("KUBEMATE_TEST_DB", "test_kubemate")}  # noqa: F405
# TransactionTestCase and the live server flush tables with TRUNCATE; the audit guard allows it only here.
DATABASES["default"]["OPTIONS"]["options"] = "-c kubemate.test_flush=on"  # noqa: F405

# CI/CD: the tests' own storage folder (apart per test database) and their local bare git repositories.
KUBEMATE_CICD_STORAGE = BASE_DIR / ".run" / f"cicd-{env('KUBEMATE_TEST_DB', 'test_kubemate')}"  # noqa: F405
KUBEMATE_CICD_LOCAL_GIT = True
KUBEMATE_BACKUP_WORKDIR = BASE_DIR / ".run" / f"backups-{env('KUBEMATE_TEST_DB', 'test_kubemate')}"  # noqa: F405
KUBEMATE_AI_DOCUMENTS_DIR = BASE_DIR / ".run" / f"ai-documents-{env('KUBEMATE_TEST_DB', 'test_kubemate')}"  # noqa: F405
KUBEMATE_BACKUP_PART_MB = 5
