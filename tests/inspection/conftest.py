import pytest

from apps.inspection.checks.context import Context


class ClusteraScoped(Context):
    """A run's context that sees only the inventory rows a test made: rows of ``namespace``, and cluster-scoped rows
    named in ``names``. The sandbox is shared with tests running at the same time, whose objects would otherwise
    decide whether a cluster-wide check passes. The checks and the rows are untouched; only the view narrows."""

    def __init__(self, *, namespace: str = "", names=(), **kwargs) -> None:
        super().__init__(**kwargs)
        self.namespace, self.names = namespace, set(names)

    def rows(self, cluster, kind, namespace=None):
        for row in super().rows(cluster, kind, namespace):
            if (row.namespace == self.namespace) if row.namespace else (row.name in self.names):
                yield row


@pytest.fixture
def clustera_context():
    """Build with ``clustera_context(namespace=..., names=..., thresholds=...)``."""
    return ClusteraScoped
