import pytest

from tests.factories import AdminFactory, UserFactory

pytest_plugins = ["tests.plugins.sandbox"]


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
def _clean_test_redis(settings):
    """Each test starts with an empty test Redis database (never the demo's)."""
    from apps.core.redis import get_redis

    get_redis.cache_clear()
    get_redis().flushdb()
    yield
    get_redis.cache_clear()
