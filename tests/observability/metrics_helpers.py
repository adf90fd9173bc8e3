"""What the metrics tests share: names as Kubernetes makes them, counters that grow, and reading a board's series.

The exporter of tests/plugins/prometheus.py plays cAdvisor and kube-state-metrics: the tests write the series a
pod or a workload would have and read them back through the console's charts.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time

SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the letters Kubernetes draws pod name suffixes from


def suffix(length: int = 5) -> str:
    return "".join(random.choice(SAFE) for _ in range(length))


def workload_name(prefix: str = "web") -> str:
    return f"{prefix}-{suffix(6)}"


class Counters:
    """Counters (CPU seconds) that grow at a set rate per second while the test runs, as cAdvisor's do."""

    def __init__(self, exporter) -> None:
        self.exporter = exporter
        self.rates: dict[tuple[str, tuple], float] = {}
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def grow(self, name: str, labels: dict, per_second: float) -> None:
        self.rates[(name, tuple(sorted(labels.items())))] = per_second

    def _run(self) -> None:
        while not self.stop.is_set():
            elapsed = time.monotonic() - self.started
            for (name, labels), rate in list(self.rates.items()):
                self.exporter.set(name, dict(labels), 100.0 + rate * elapsed)
            time.sleep(0.2)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)


def series_of(board, key: str) -> dict[str, list[float]]:
    """The values (no gaps) of each series of one chart of a board, by series name."""
    drawn = next(d for d in board.charts if d.key == key)
    return {s["name"]: [v for _t, v in s["data"] if v is not None] for s in drawn.series}


def chart_data_of(html: str) -> dict:
    """The chart data a page hands ECharts (its json_script "metrics-data")."""
    match = re.search(r'<script id="metrics-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "no chart data on the page"
    return json.loads(match.group(1))


def values_by_series(data: dict, key: str) -> dict[str, list[float]]:
    return {s["name"]: [v for _t, v in s["data"] if v is not None] for s in data[key]["series"]}
