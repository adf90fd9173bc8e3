#!/usr/bin/env python3
"""An inspection of the 500-node / 15,000-pod sandbox: time and extra memory of Kubemate's run, beside a cluster walk.

    bench/inventory --keep --keep-db      # first: the sandbox "bench" and its synced inventory (kubemate_bench)
    bench/inspection.py                   # then: both sides, three runs each, a table on stdout

Each side runs in a fresh process (``--side kubemate`` / ``--side walk``), against the database ``kubemate_bench``
that ``bench/inventory --keep-db`` leaves (the cluster ``bench`` registered, its inventory synced by the real sync),
the sandbox ``bench`` still running. Memory is the process's resident set, sampled every 20 ms from /proc/self/status:
"extra" is the peak during the run minus the resident set just before it (Django set up, the catalogue imported, one
query made), which is what a worker that runs the inspection grows by.

- **Kubemate**: ``runner.execute`` of a template holding every cluster, security and app check (the built-in daily
  cluster health and weekly security together) over the cluster ``bench``, as the worker's job body runs it: each
  inventory kind streamed once in chunks of 500 rows, whole-target checks (component health from the apiserver's
  readyz/livez, certificates, the registry probe), every outcome and finding stored, new/unchanged/fixed computed
  against the previous run. Apps checks find no Prometheus and end "not checked" at once.
- **Walk** (the peer): the same checks over objects listed from the API server instead of the inventory, which is
  how Popeye, Polaris and KubeEye inspect: every kind the checks read is listed (pages of 500, as kubectl does) and
  kept in memory for the run, then the same rules run over it. Nothing is stored. Popeye and Polaris themselves are
  not run: their Go modules are not served by the module proxy this project builds from, so the walk is written
  here with the same rules, which keeps the comparison to where the data comes from.

Run ``--runs N`` times each, alternating; it prints median seconds and median extra MiB, findings and checks.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
if Path(sys.prefix).resolve() != VENV.resolve():
    os.execv(str(VENV / "bin" / "python"), [str(VENV / "bin" / "python"), __file__, *sys.argv[1:]])  # noqa: S606
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

BENCH_DB = "kubemate_bench"


def services_env() -> dict[str, str]:
    found = {}
    for line in (ROOT / ".run" / "services.env").read_text().splitlines():
        key, _, value = line.partition("=")
        found[key.strip().removeprefix("export ").strip()] = value.strip().strip('"')
    return found


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Peak:
    """The highest resident set seen while the block runs."""

    def __enter__(self):
        self.base = rss_kib()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_kib())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib())

    @property
    def extra_mib(self) -> float:
        return (self.peak - self.base) / 1024


def side(name: str, cluster_name: str) -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from apps.clusters import kube
    from apps.clusters.inventory.summaries import row_fields
    from apps.clusters.kinds import BY_KIND
    from apps.clusters.models import Cluster
    from apps.inspection import runner
    from apps.inspection.checks.context import Context, Row
    from apps.inspection.models import Finding, Outcome, Run, Template

    cluster = Cluster.objects.get(name=cluster_name)
    admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    template, _ = Template.objects.get_or_create(
        slug="bench-all", defaults={"name": "Bench", "checks": ["cluster.", "security.", "apps."]}
    )
    checks = runner.expand(template.checks)
    pods = cluster.resources.filter(kind="Pod").count()

    if name == "kubemate":
        run = Run.objects.create(template=template, actor=admin)
        run.clusters.set([cluster])
        with Peak() as peak:
            started = time.monotonic()
            run = runner.execute(run, lambda percent, message: None)
            seconds = time.monotonic() - started
        return {
            "side": name,
            "seconds": seconds,
            "extra_mib": peak.extra_mib,
            "base_mib": peak.base / 1024,
            "pods": pods,
            "checks": len(checks),
            "findings": Finding.objects.filter(run=run).count(),
            "found": sum(Outcome.objects.filter(run=run).values_list("found", flat=True)),
            "not_checked": Outcome.objects.filter(run=run, status=Outcome.Status.NOT_CHECKED).count(),
        }

    class WalkContext(Context):
        """The same checks, over what the API server lists now, every kind kept in memory for the run."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.listed: dict[str, list[Row]] = {}

        def rows(self, target, kind, namespace=None):
            if kind not in self.listed:
                with kube.client(target) as k:
                    items = k.list(BY_KIND[kind]) if kind in BY_KIND else []
                fields = ("kind", "namespace", "name", "status", "labels", "summary", "object", "created")
                self.listed[kind] = [Row(*(row_fields(kind, item)[f] for f in fields)) for item in items]
            return (r for r in self.listed[kind] if namespace is None or r.namespace == namespace)

        def synced(self, cluster):
            return True

    with Peak() as peak:
        started = time.monotonic()
        ctx = WalkContext(thresholds=template.thresholds, actor=admin)
        targets = runner.Targets([cluster], [], [])
        results = runner.inspect(ctx, checks, targets, lambda percent, message: None)
        seconds = time.monotonic() - started
    return {
        "side": name,
        "seconds": seconds,
        "extra_mib": peak.extra_mib,
        "base_mib": peak.base / 1024,
        "pods": pods,
        "checks": len(checks),
        "findings": sum(len(r.findings) for r in results),
        "found": sum(r.found for r in results),
        "not_checked": sum(1 for r in results if r.status == "not_checked"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cluster", default="bench")
    parser.add_argument("--database", default=BENCH_DB)
    parser.add_argument("--side", choices=["kubemate", "walk"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(side(args.side, args.cluster)))
        return
    env = services_env()
    base = env["DATABASE_URL"].rsplit("/", 1)[0]
    child_env = {
        **os.environ,
        "DATABASE_URL": f"{base}/{args.database}",
        "REDIS_URL": env["REDIS_URL"].rsplit("/", 1)[0] + "/9",
        "DJANGO_SETTINGS_MODULE": "kubemate.settings",
        "KUBEMATE_LOG_LEVEL": "WARNING",
    }
    answers: dict[str, list[dict]] = {"kubemate": [], "walk": []}
    for i in range(args.runs):
        for name in ("kubemate", "walk"):
            out = subprocess.run(
                [sys.executable, __file__, "--side", name, "--cluster", args.cluster],
                env=child_env,
                capture_output=True,
                text=True,
                check=True,
            )
            answer = json.loads(out.stdout.strip().splitlines()[-1])
            answers[name].append(answer)
            print(f"run {i + 1} {name:8}: {answer['seconds']:.1f} s, +{answer['extra_mib']:.0f} MiB", flush=True)
    print()
    print(
        f"{'':10} {'pods':>7} {'checks':>7} {'found':>7} {'kept':>6} {'not checked':>12} {'seconds':>8} "
        f"{'extra MiB':>10} {'base MiB':>9}"
    )
    for name, rows in answers.items():
        last = rows[-1]
        print(
            f"{name:10} {last['pods']:>7} {last['checks']:>7} {last['found']:>7} {last['findings']:>6} "
            f"{last['not_checked']:>12} {statistics.median(r['seconds'] for r in rows):>8.1f} "
            f"{statistics.median(r['extra_mib'] for r in rows):>10.0f} "
            f"{statistics.median(r['base_mib'] for r in rows):>9.0f}"
        )


if __name__ == "__main__":
    main()
