import pytest

from tests.clusters.inventory_rows import build_bank


@pytest.fixture
def bank(db):
    """The bank's production cluster in the inventory: a payments project and a lending project."""
    return build_bank()
