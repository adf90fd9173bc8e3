"""The hostile-input suite: every case here is one input a hostile user or a broken system could send.

A parametrized test counts one input per case. A test that loops over many inputs in one case (the CSRF
sweep posts to every state-changing URL) says how many with ``hostile_inputs(n)``. The total is printed at
the end of the run, beside how many failed, so the suite's size is visible in every `make test`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from apps.clusters.models import Cluster

SUITE = Path(__file__).parent
KEY = "hostile_inputs"


@pytest.fixture
def hostile_inputs(request):
    """Call with the number of inputs this one test case checked (default: one per case)."""

    def record(count: int) -> None:
        assert count > 0, "a hostile-input test must check at least one input"
        request.node.user_properties.append((KEY, count))

    return record


def _inputs(report) -> int:
    counted = [value for key, value in report.user_properties if key == KEY]
    return sum(counted) if counted else 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    passed = failed = 0
    for status in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(status, []):
            if getattr(report, "when", "call") != "call" and status != "error":
                continue
            path = Path(str(report.fspath)).resolve() if getattr(report, "fspath", None) else None
            if path is None or SUITE not in path.parents:
                continue
            if status == "passed":
                passed += _inputs(report)
            else:
                failed += _inputs(report)
    if passed or failed:
        terminalreporter.write_sep(
            "-", f"hostile-input suite: {passed + failed} inputs, {passed} held, {failed} failed"
        )


@pytest.fixture
def nowhere(db):
    """A registered cluster whose address answers nothing: a request that left would fail as unreachable,
    so a test that sees its own refusal instead knows nothing was sent."""
    cluster = Cluster(name="nowhere", api_server="https://127.0.0.1:9")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    cluster.set_kubeconfig(yaml.safe_dump(config))
    cluster.save()
    return cluster
