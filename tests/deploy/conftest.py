"""Fixtures of the deployment tests that start Kubemate's processes (tests/deploy/services.py has the helpers)."""

from __future__ import annotations

import pytest

from tests.deploy.services import own_database_name, redis_test_url, scratch_database


@pytest.fixture(scope="module")
def database(request):
    """A database of the test module's own on the project-local PostgreSQL (test_image.py: <test db>_image),
    dropped at the end."""
    suffix = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with scratch_database(own_database_name(suffix)) as url:
        yield url


@pytest.fixture(scope="module")
def redis_url() -> str:
    return redis_test_url()
