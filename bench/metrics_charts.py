#!/usr/bin/env python3
"""A workload's metrics card over 7 days, timed, beside the same PromQL asked of Prometheus directly.

    bench/metrics_charts.py                     # Deployments of 10 and 50 pods, 20 requests each
    bench/metrics_charts.py --pods 5,20,100 --repeat 30

It writes 7 days of cAdvisor- and kube-state-metrics-like samples (one every 5 minutes, the shapes of a busy
Deployment: CPU seconds growing, memory waving, restarts now and then, replicas) for each Deployment as an
OpenMetrics file, turns it into TSDB blocks with Debian's ``promtool tsdb create-blocks-from openmetrics``,
starts Debian's Prometheus on them, and creates a throw-away test database (``test_kubemate_bench_metrics``,
dropped at the end) with the cluster, each Deployment and its pods in the inventory and an administrator.
Then, for each Deployment, it times (median and p95 of ``--repeat`` requests after 2 warm-ups):

- **card**: ``GET /observability/metrics/<cluster>/deployments/<ns>/<name>/?range=7d`` as htmx asks for it,
  through Django's test client in this process: authorization, the tenancy rewrite of each query, the range
  queries (asked 4 at a time), naming and cutting the series, the template, the chart data;
- **peer**: the same PromQL texts (taken from the card) asked of ``/api/v1/query_range`` with ``requests``, one
  after the other and 4 at a time, the answers parsed as JSON: what any client pays for the data alone;

and prints the points per series (never above 250), the series drawn and answered per chart, and the size of the
card's HTML and of Prometheus's answers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
if Path(sys.prefix).resolve() != VENV.resolve():  # run with the project venv whatever started us
    os.execv(str(VENV / "bin" / "python"), [str(VENV / "bin" / "python"), __file__, *sys.argv[1:]])  # noqa: S606
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubemate.settings.test")
os.environ.setdefault("KUBEMATE_TEST_DB", "test_kubemate_bench_metrics")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from html import unescape  # noqa: E402

import django  # noqa: E402
import requests  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

DAYS = 7
EVERY = 300  # seconds between backfilled samples
SAFE = "bcdfghjklmnpqrstvwxz2456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def name(length: int) -> str:
    return "".join(random.choice(SAFE) for _ in range(length))


def write_history(path: Path, workloads: dict[str, list[str]], end: int) -> int:
    """Seven days of samples for each workload's pods, grouped by metric family as OpenMetrics wants them."""
    start = end - DAYS * 86400
    times = range(start, end, EVERY)
    lines = 0
    with path.open("w") as out:
        families = (
            "container_cpu_usage_seconds_total",
            "container_memory_working_set_bytes",
            "kube_pod_container_status_restarts_total",
        )
        for family in families:
            out.write(f"# TYPE {family} gauge\n")  # promtool stores any type; gauge keeps the names as they are
            for pods in workloads.values():
                for index, pod in enumerate(pods):
                    labels = f'namespace="bench",pod="{pod}",container="app"'
                    phase = index / max(len(pods), 1)
                    cpu_seconds, restarts = 0.0, 0
                    for t in times:
                        wave = math.sin(2 * math.pi * (t / 86400 + phase))
                        if family.startswith("container_cpu"):
                            cpu_seconds += (0.2 + 0.1 * wave) * EVERY
                            value = cpu_seconds
                        elif family.startswith("container_memory"):
                            value = round((300 + 80 * wave) * 2**20)
                        else:
                            restarts += random.random() < 0.002
                            value = restarts
                        out.write(f"{family}{{{labels}}} {value} {t}\n")
                        lines += 1
        for family in ("kube_deployment_spec_replicas", "kube_deployment_status_replicas_available"):
            out.write(f"# TYPE {family} gauge\n")
            for workload, pods in workloads.items():
                for t in times:
                    out.write(f'{family}{{namespace="bench",deployment="{workload}"}} {len(pods)} {t}\n')
                    lines += 1
        out.write("# EOF\n")
    return lines


def start_prometheus(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    (folder / "prometheus.yml").write_text("global:\n  scrape_interval: 30s\nscrape_configs: []\n")
    process = subprocess.Popen(
        [
            "/usr/bin/prometheus",
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=30d",
        ],
        stdout=(folder / "prometheus.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return process, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"Prometheus did not start: {(folder / 'prometheus.log').read_text()[-2000:]}")


def timed(call, repeat: int) -> list[float]:
    for _ in range(2):
        call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, math.ceil(0.95 * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", default="10,50", help="pods of each Deployment, comma-separated")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    sizes = [int(n) for n in args.pods.split(",")]
    for program in ("/usr/bin/prometheus", "/usr/bin/promtool"):
        if not Path(program).exists():
            raise SystemExit(f"{program} is missing: install Debian's prometheus package (make system-packages)")
    folder = Path(tempfile.mkdtemp(prefix="kubemate-bench-metrics-"))
    workloads = {f"web{size}-{name(5)}": [] for size in sizes}
    for (workload, pods), size in zip(workloads.items(), sizes, strict=True):
        template = name(9)
        pods.extend(f"{workload}-{template}-{name(5)}" for _ in range(size))
    end = int(time.time()) - 60
    started = time.perf_counter()
    lines = write_history(folder / "history.om", workloads, end)
    subprocess.run(
        [
            "/usr/bin/promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "-q",
            str(folder / "history.om"),
            str(folder / "data"),
        ],
        check=True,
    )
    print(f"history: {lines:,} samples over {DAYS} days in {time.perf_counter() - started:.1f} s")
    process, url = start_prometheus(folder)
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        run(url, workloads, args.repeat)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def run(url: str, workloads: dict[str, list[str]], repeat: int) -> None:
    from importlib import import_module

    from django.apps import apps as django_apps
    from django.urls import reverse

    from apps.observability import prometheus
    from tests.clusters.inventory_rows import deployment, namespace, pod
    from tests.factories import AdminFactory, ClusterFactory

    import_module("apps.accounts.migrations.0002_builtin_roles_audit_guard").create_builtin(django_apps, None)
    cluster = ClusterFactory(name="bench", prometheus_url=url)
    namespace(cluster, "bench")
    for workload, pods in workloads.items():
        deployment(cluster, workload, "bench", replicas=len(pods), ready=len(pods))
        for pod_name in pods:
            pod(cluster, pod_name, "bench", labels={"app": workload})
    browser = Client()
    browser.force_login(AdminFactory())
    session = requests.Session()
    rows = []
    for workload, pods in workloads.items():
        card_url = reverse("observability:resource_metrics", args=[cluster.pk, "deployments", "bench", workload])
        response = browser.get(card_url, {"range": "7d"}, HTTP_HX_REQUEST="true")
        html = response.content.decode()
        assert response.status_code == 200, response.status_code
        data = json.loads(re.search(r'id="metrics-data" type="application/json">(.*?)</script>', html, re.S)[1])
        step = int(re.search(r'data-step="(\d+)"', html)[1])
        texts = [
            unescape(t) for t in re.findall(r'<code class="d-block flex-fill[^"]*" translate="no">(.*?)</code>', html)
        ]
        now = time.time()
        params = [{"query": t, "start": now - DAYS * 86400, "end": now, "step": step} for t in texts]

        def ask(p):
            answer = session.get(f"{url}/api/v1/query_range", params=p, timeout=30)
            answer.json()
            return len(answer.content)

        card = timed(lambda u=card_url: browser.get(u, {"range": "7d"}, HTTP_HX_REQUEST="true"), repeat)
        peer_serial = timed(lambda ps=params: [ask(p) for p in ps], repeat)
        with ThreadPoolExecutor(4) as pool:
            peer_parallel = timed(lambda ps=params: list(pool.map(ask, ps)), repeat)
            answer_bytes = sum(pool.map(ask, params))
        charts = {key: value for key, value in data.items() if key != "labels"}
        points = max(len(s["data"]) for c in charts.values() for s in c["series"])
        shown = {key: len(c["series"]) for key, c in charts.items()}
        answered = {key: int(m) for key, m in re.findall(r'data-chart-key="(\w+)".*?of (\d+) series', html, re.S)}
        rows.append(
            {
                "pods": len(pods),
                "queries": len(texts),
                "card p50/p95 ms": f"{statistics.median(card):.0f} / {p95(card):.0f}",
                "peer serial p50/p95 ms": f"{statistics.median(peer_serial):.0f} / {p95(peer_serial):.0f}",
                "peer 4 at a time p50/p95 ms": f"{statistics.median(peer_parallel):.0f} / {p95(peer_parallel):.0f}",
                "step": f"{step} s",
                "max points a series": f"{points} (bound {prometheus.MAX_POINTS})",
                "series drawn (answered)": ", ".join(
                    f"{k} {n}" + (f" ({answered[k]})" if k in answered else "") for k, n in shown.items()
                ),
                "card HTML / answers": f"{len(html) / 1024:.0f} KiB / {answer_bytes / 1024:.0f} KiB",
            }
        )
    for row in rows:
        print()
        for key, value in row.items():
            print(f"  {key:28} {value}")


if __name__ == "__main__":
    main()
