from pathlib import Path

import pytest

from tests.factories import AdminFactory, UserFactory
from tests.helpers import create_namespace, delete_namespace, unique

pytest_plugins = [
    "tests.plugins.sandbox",
    "tests.plugins.prometheus",
    "tests.plugins.alertmanager",
    "tests.plugins.victorialogs",
    "tests.plugins.jaeger",
    "tests.plugins.hostagent",
    "tests.plugins.databases",
    "tests.plugins.registry",
    "tests.plugins.tekton",
    "tests.plugins.s3",
    "tests.plugins.velero",
    "tests.plugins.ai",
    "tests.plugins.hydra",
]


@pytest.fixture
def operator(db):
    return UserFactory()


@pytest.fixture
def admin_user(db):
    return AdminFactory()


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def admin_client_(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture(autouse=True)
def _builtin_rows(request):
    """Transactional tests start from flushed tables: put back the rows the data migrations create
    (built-in roles, the audit chain head, the schedules), as a fresh installation has them."""
    marker = request.node.get_closest_marker("django_db")
    transactional = (
        marker is not None and marker.kwargs.get("transaction")
    ) or "transactional_db" in request.fixturenames
    if not transactional:
        return
    request.getfixturevalue("transactional_db")
    from importlib import import_module

    from django.apps import apps

    import_module("apps.accounts.migrations.0002_builtin_roles_audit_guard").create_builtin(apps, None)
    import_module("apps.accounts.migrations.0005_capabilities_without_a_feature").drop_capabilities(apps, None)
    import_module("apps.accounts.migrations.0007_pods_exec").grant(apps, None)
    import_module("apps.accounts.migrations.0008_secrets_read").grant(apps, None)
    import_module("apps.accounts.migrations.0009_observability").grant(apps, None)
    import_module("apps.accounts.migrations.0010_alerts_notify").grant(apps, None)
    import_module("apps.accounts.migrations.0011_logs_traces").grant(apps, None)
    import_module("apps.accounts.migrations.0012_inspection").grant(apps, None)
    import_module("apps.accounts.migrations.0014_cicd").grant(apps, None)
    import_module("apps.accounts.migrations.0015_backups").grant(apps, None)
    import_module("apps.accounts.migrations.0016_ai").grant(apps, None)
    import_module("apps.core.migrations.0002_audit_log_from_accounts").create_head(apps, None)
    import_module("apps.clusters.migrations.0004_full_resync_schedule").schedule(apps, None)
    import_module("apps.releases.migrations.0004_canary_analysis_schedule").schedule(apps, None)
    import_module("apps.core.migrations.0003_job_worker_heartbeat").schedule(apps, None)
    import_module("apps.inspection.migrations.0002_builtin_templates").create(apps, None)
    import_module("apps.cicd.migrations.0002_beat_entries").schedule(apps, None)
    import_module("apps.backups.migrations.0002_beat_entries").schedule(apps, None)
    import_module("apps.ai.migrations.0004_operations_kb_schedule").schedule(apps, None)
    import_module("apps.accounts.migrations.0017_audit_forward").grant(apps, None)
    import_module("apps.accounts.migrations.0019_changes").grant(apps, None)
    import_module("apps.accounts.migrations.0020_access_review").grant(apps, None)
    import_module("apps.compliance.migrations.0002_forward_audit_schedule").schedule(apps, None)
    import_module("apps.compliance.migrations.0004_expire_changes_schedule").schedule(apps, None)
    import_module("apps.compliance.migrations.0007_access_reviews_schedule").schedule(apps, None)


@pytest.fixture(autouse=True)
def _english_by_default():
    """Each test starts in English: a request in Chinese earlier in the run must not change the next test's words."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _clean_test_redis(settings):
    """Each test starts with an empty test Redis database (never the demo's)."""
    from apps.core.redis import get_redis

    get_redis.cache_clear()
    get_redis().flushdb()
    yield
    get_redis.cache_clear()


@pytest.fixture(scope="module")
def module_db(django_db_setup, django_db_blocker):
    """Rows made once for all the tests of a module, rolled back after its last test.

    For the large parametrised sweeps (tests/security), which otherwise build the same bank of objects for each of
    hundreds of cases. A module fixture that writes rows asks for this one; each test still runs in its own
    savepoint (``django_db``), so what a test writes is undone after it, and what the module's fixtures wrote stays
    until the module ends. Not for modules with transactional tests (their TRUNCATE would empty these rows).
    """
    from django.db import transaction

    with django_db_blocker.unblock(), transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture
def registered_cluster(sandbox, db):
    """The sandbox registered the way an operator registers a cluster: Kubemate's own identity, not admin."""
    from apps.clusters.registry.services import register_from_kubeconfig

    return register_from_kubeconfig(actor=None, name="sandbox", kubeconfig_text=sandbox.kubeconfig.read_text())


@pytest.fixture
def namespace(sandbox):
    """A fresh namespace in the sandbox, deleted at teardown."""
    name = unique("t")
    create_namespace(sandbox, name)
    yield name
    delete_namespace(sandbox, name)


@pytest.fixture
def sandbox_ca_pem(sandbox):
    """The sandbox API server's CA certificate (PEM)."""
    return Path(sandbox.ca_file).read_text()


@pytest.fixture(scope="session")
def team_namespaces(sandbox):
    """Namespaces the accounts tests use as project and non-project namespaces."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(sandbox.api_client)
    names = ["team-a", "team-a-batch", "team-b"]
    for name in names:
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        except ApiException as exc:
            if exc.status != 409:
                raise
    return names


@pytest.fixture
def inventory_sync(registered_cluster):
    """Start the real inventory sync in this process for some kinds; waits for their first list, stops at teardown.

    Tests using it need ``django_db(transaction=True)``: the sync's threads write through their own connections.
    """
    import threading

    from apps.clusters.inventory.sync import SyncProcess, wait_until_listed
    from apps.clusters.kinds import BY_KIND

    running = []

    def start(kind_names: list[str]):
        kinds = [BY_KIND[name] for name in kind_names]
        process = SyncProcess(kinds=kinds, metrics=False)
        stop = threading.Event()
        thread = threading.Thread(target=process.run_forever, args=(stop, 1), daemon=True)
        thread.start()
        running.append((stop, thread))
        assert wait_until_listed(registered_cluster, kinds, timeout=60)
        return process

    yield start
    for stop, thread in running:
        stop.set()
        thread.join(15)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Within the transactional tests (pytest-django runs them after the others), run those with
    ``serialized_rollback`` first.

    A transactional test without it ends by flushing the tables and sending post_migrate, which creates the content
    types again under new ids. A serialized-rollback test after it reloads the rows saved when the test database
    was made, whose content types carry the first ids: the insert meets the same (app, model) and fails. Run first,
    each serialized test starts from the rows it saved (or the empty tables its predecessor's flush left)."""

    def serialized_first(item) -> int:
        marker = item.get_closest_marker("django_db")
        transactional = marker is not None and marker.kwargs.get("transaction")
        transactional = transactional or {"transactional_db", "live_server"} & set(getattr(item, "fixturenames", ()))
        if not transactional:
            return 0
        return 0 if marker is not None and marker.kwargs.get("serialized_rollback") else 1

    groups = {id(item): index for index, item in enumerate(items)}
    items.sort(key=lambda item: (_django_group(item), serialized_first(item), groups[id(item)]))


def _django_group(item) -> int:
    """pytest-django's order: database tests in a transaction (0), transactional ones (1), the rest (2)."""
    marker = item.get_closest_marker("django_db")
    fixtures = set(getattr(item, "fixturenames", ()))
    if (marker is not None and (marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences"))) or (
        {"transactional_db", "live_server"} & fixtures
    ):
        return 1
    if marker is not None or "db" in fixtures:
        return 0
    return 2


@pytest.fixture
def mailbox(settings):
    """The SMTP server the tests use (aiosmtpd), the security contact security@bank.example, and Celery running
    the mail tasks in this process."""
    from kubemate.celery import app as celery_app
    from tests.plugins.alertmanager import Mailbox

    box = Mailbox()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", box.port, False
    settings.EMAIL_TIMEOUT = 5
    settings.KUBEMATE_SECURITY_CONTACTS = ["security@bank.example"]
    celery_app.conf.task_always_eager = True
    yield box
    celery_app.conf.task_always_eager = False
    box.stop()
