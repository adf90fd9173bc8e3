"""Print the SQL queries of the benchmark's pages with their times, slowest first.

Run against a database the benchmark kept (bench/inventory --keep-db):

    DATABASE_URL=postgres://kubemate@127.0.0.1:PORT/kubemate_bench \
        .venv/bin/python bench/page_queries.py [--user bench-admin] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubemate.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from apps.clusters.models import Cluster  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user", default="bench-admin")
    parser.add_argument("--repeat", type=int, default=5, help="requests per page; the fastest run is shown")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest query of each page")
    args = parser.parse_args()
    cluster = Cluster.objects.get(name="bench")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=args.user))
    base = f"/clusters/{cluster.pk}"
    for url in (f"{base}/pods/", f"{base}/pods/?namespace=bench-00&status=Running&q=app-3", f"{base}/"):
        best = None
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - started
            if best is None or elapsed < best[0]:
                best = (elapsed, list(queries.captured_queries), response.status_code)
        elapsed, captured, status = best
        sql_total = sum(float(q["time"]) for q in captured)
        print(
            f"\n{url}  HTTP {status}  {elapsed * 1000:.0f} ms, {len(captured)} queries, SQL {sql_total * 1000:.0f} ms"
        )
        slowest = sorted(captured, key=lambda q: float(q["time"]), reverse=True)
        for query in slowest[:6]:
            print(f"  {float(query['time']) * 1000:7.1f} ms  {query['sql'][:400]}")
        if args.explain and slowest:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest[0]["sql"])
                print("\n".join("      " + row[0] for row in cursor.fetchall()))


if __name__ == "__main__":
    main()
