#!/usr/bin/env python3
"""A log search's first page over a million pushed lines, timed, beside the same LogsQL asked of VictoriaLogs directly.

    bench/logs_search.py                        # 1,000,000 lines over 24 h, 20 requests a case
    bench/logs_search.py --lines 100000 --repeat 10

It starts VictoriaLogs v1.52.2 (``deploy/sandbox/build --print-paths``; the helpers of tests/plugins/victorialogs.py:
a free loopback port, a temporary ``-storageDataPath``, retention 100 years), pushes ``--lines`` lines spread over
the last 24 h with deploy/local/push_logs.py's ``generate`` and ``push`` (Loki push API, 5 namespaces x 4 pods, 20,000
lines a request, 2 at a time; timed) and waits until ``* | stats count()`` counts them all. It creates a throw-away
test database (``test_kubemate_bench_logs``, dropped at the end) with a cluster whose ``logs_url`` is that
VictoriaLogs (``logs_backend="victorialogs"``), its namespaces and pods in the inventory, an administrator and a
project member (role developer on a project holding the namespace ``bank`` alone). Then, for each case, it times
(median and p95 of ``--repeat`` requests after 2 warm-ups):

- **Kubemate, the lines**: ``GET /observability/logs/results/`` with the parameters the search form sends
  (``window=24h``, ``limit=200``) as htmx asks for it, through Django's test client in this process: what the person
  waits for before the first page's lines show. That is authorization, the tenancy narrowing, the LogsQL rendered,
  one request to VictoriaLogs (the 201 newest lines from ``/select/logsql/query``), the lines parsed, shaped, marked
  and written as rows, the template. The results partial holds a placeholder that asks for the volume histogram
  once it is in the page;
- **Kubemate, the histogram**: that placeholder's request (``GET /observability/logs/histogram/``, the same
  parameters with the lines' window pinned): ``/select/logsql/hits``, the bars, the chart card;
- **peer**: the very requests Kubemate sent (captured from ``logstore.asking.Store``: query text,
  ``extra_stream_filters``, ``step``/``field``), the window moved to the moment of each request, asked with
  ``requests`` (one keep-alive session, as the door has one a thread): ``/query`` alone and ``/hits`` alone; the
  JSON lines and the JSON parsed: what any client pays for the data alone;
- **Django floor**: an empty view (``login_required``, answering an empty 200) through the same test client, the
  same middleware and signed-in session: what any page of this console costs before it does anything.

Ratio = Kubemate's lines request / the peer's ``/query``, and Kubemate's histogram request / the peer's ``/hits``.
It prints the lines returned, the matching lines (the histogram's total), the HTML bytes and VictoriaLogs' answer
bytes. ``--profile`` adds, per case, where Kubemate's time goes: the door's search and histogram, shaping, the rows,
``services.results`` and the template timed apart, and cProfile of one whole request and of one door search.
Nothing is asserted beyond each page answering 200; it prints numbers.
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
os.environ.setdefault("KUBEMATE_TEST_DB", "test_kubemate_bench_logs")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import importlib.util  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import pstats  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from html import unescape  # noqa: E402

import django  # noqa: E402
import requests  # noqa: E402

django.setup()

from django.contrib.auth.decorators import login_required  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402
from django.urls import path  # noqa: E402

NAMESPACES = ("shop", "bank", "ledger", "web", "billing")
PODS = 4  # a namespace
SPAN = "24h"
WINDOW = timedelta(hours=24)
QUERY, HITS = "/select/logsql/query", "/select/logsql/hits"


@login_required
def empty(request):
    """The Django floor: a signed-in request through every middleware that does nothing."""
    return HttpResponse(b"")


urlpatterns = [path("empty/", empty)]  # ROOT_URLCONF while the floor is timed (this module)


def load_push_logs():
    spec = importlib.util.spec_from_file_location("push_logs", ROOT / "deploy" / "local" / "push_logs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_victorialogs():
    from tests.plugins.victorialogs import _start_server

    return _start_server()


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


def figures(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} / {p95(values):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="log lines to push over the last 24 h")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="also show where Kubemate's time goes, per case")
    args = parser.parse_args()
    push_logs = load_push_logs()
    server = start_victorialogs()
    print(f"VictoriaLogs at {server.url}, data in {server.folder}")
    try:
        started = time.perf_counter()
        lines = push_logs.generate(args.lines, list(NAMESPACES), PODS, push_logs._seconds(SPAN))
        sent = push_logs.push(server.url, lines)
        took = time.perf_counter() - started
        print(f"pushed {sent:,} lines in {took:.1f} s ({sent / took:,.0f} lines/s, generating them included)")
        started = time.perf_counter()
        found = server.count("*")
        while found < sent and time.perf_counter() - started < 120:
            time.sleep(0.2)
            found = server.count("*")
        print(f"searchable: {found:,} lines {time.perf_counter() - started:.1f} s after the push returned")
        places = push_logs.pods_of(list(NAMESPACES), PODS)
        setup_test_environment()
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            run(server.url, places, args.repeat, args.profile)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


def capture(call) -> list[tuple[str, dict, dict]]:
    """The (path, params, headers) of each request the door sends to the store while ``call`` runs."""
    from apps.observability.logstore import asking

    sent = []
    original = asking.Store._open

    def recording(self, path, params, *, timeout):
        sent.append((path, dict(params), dict(self.headers)))
        return original(self, path, params, timeout=timeout)

    asking.Store._open = recording
    try:
        call()
    finally:
        asking.Store._open = original
    return sent


def rfc3339(moment: datetime) -> str:
    from apps.observability.logstore.lines import rfc3339 as ns_text
    from apps.observability.logstore.lines import to_ns

    return ns_text(to_ns(moment))


def run(url: str, places: list[tuple[str, str, str]], repeat: int, profile: bool) -> None:
    from django.urls import reverse

    from apps.accounts.models import Project
    from tests.clusters.inventory_rows import namespace, pod
    from tests.factories import AdminFactory, ClusterFactory, UserFactory
    from tests.helpers import grant

    # The migrations made the built-in roles; 0002's create_builtin would put back its older capabilities (no logs.*).
    cluster = ClusterFactory(name="bench", logs_url=url, logs_backend="victorialogs")
    for ns in NAMESPACES:
        namespace(cluster, ns)
    for ns, app, pod_name in places:
        pod(cluster, pod_name, ns, labels={"app": app})
    admin = Client()
    admin.force_login(AdminFactory())
    project = Project.objects.create(cluster=cluster, slug="bench-bank", name="Bank", namespaces=["bank"])
    member_user = UserFactory()
    grant(member_user, "developer", project=project)
    member = Client()
    member.force_login(member_user)
    shop_pod = next(p for ns, _, p in places if ns == "shop")

    form = {"cluster": cluster.pk, "namespace": "", "workload": "", "pod": "", "container": "", "q": "", "raw": ""}
    form |= {"window": "24h", "limit": "200"}
    cases = [
        ("admin, keyword over 24 h", admin, form | {"q": "card declined"}),
        ("admin, one pod, level error", admin, form | {"namespace": "shop", "pod": shop_pod, "level": "error"}),
        ("member, own namespace (narrowed)", member, form),
        ("admin, raw LogsQL", admin, form | {"raw": '"timeout calling bank gateway" level:="error"'}),
    ]
    results_url = reverse("observability:logs_results")
    session = requests.Session()
    with override_settings(ROOT_URLCONF=__name__):

        def nothing():
            response = admin.get("/empty/")
            assert response.status_code == 200, response.status_code

        floor = timed(nothing, repeat * 5)
    print(f"\nDjango floor (an empty signed-in view, test client): {figures(floor)} ms p50 / p95")
    rows = []
    for title, browser, params in cases:

        def page(b=browser, p=params):
            response = b.get(results_url, p, HTTP_HX_REQUEST="true")
            assert response.status_code == 200, response.status_code
            return response.content.decode()

        html = page()  # a warm-up
        sent = capture(page)
        html = page()
        shown = len(re.findall(r'data-testid="log-text"', html))
        problem = re.search(r'class="alert[^"]*"[^>]*>(.*?)</div>', html, re.S)
        later = re.search(r'id="logs-histogram-box"[^>]*hx-get="([^"]+)"', html)
        histogram_url = unescape(later[1]) if later else ""

        def chart(b=browser, u=histogram_url):
            response = b.get(u, HTTP_HX_REQUEST="true")
            assert response.status_code == 200, response.status_code
            return response.content.decode()

        sent_hits = capture(chart) if histogram_url else []
        asked = {path_: (params_, headers) for path_, params_, headers in sent + sent_hits}

        def ask(path_, store=asked, s=session):
            params_, headers = store[path_]
            now = datetime.now(UTC)
            fresh = {**params_, "start": rfc3339(now - WINDOW), "end": rfc3339(now - timedelta(microseconds=1))}
            answer = s.get(f"{url}{path_}", params=fresh, headers=headers, timeout=60)
            answer.raise_for_status()
            if path_.endswith("/query"):
                parsed = [json.loads(row) for row in answer.content.splitlines() if row.strip()]
            else:
                parsed = answer.json()
            return len(answer.content), parsed

        kubemate = timed(page, repeat)
        peer_query = timed(lambda: ask(QUERY), repeat)
        query_bytes, peer_rows = ask(QUERY)
        row = {
            "case": title,
            "LogsQL": asked[QUERY][0]["query"].replace("\n", " "),
            "extra_stream_filters": asked[QUERY][0].get("extra_stream_filters", ""),
            "extra_filters": asked[QUERY][0].get("extra_filters", ""),
            "Kubemate lines p50/p95 ms": figures(kubemate),
            "peer /query p50/p95 ms": figures(peer_query),
            "ratio lines (p50, p95)": f"{statistics.median(kubemate) / statistics.median(peer_query):.2f}x, "
            f"{p95(kubemate) / p95(peer_query):.2f}x",
            "Kubemate's own, lines (p50)": f"{statistics.median(kubemate) - statistics.median(peer_query):.1f} ms "
            f"(Django floor {statistics.median(floor):.1f} ms)",
            "lines shown (peer rows)": f"{shown} ({len(peer_rows)})",
            "HTML / answer KiB": f"{len(html) / 1024:.0f} / {query_bytes / 1024:.0f}",
            "requests, lines": ", ".join(path_ for path_, _, _ in sent),
        }
        if histogram_url:
            kubemate_hits = timed(chart, repeat)
            peer_hits = timed(lambda: ask(HITS), repeat)
            hits_bytes, hits = ask(HITS)
            matching = sum(sum(group.get("values") or []) for group in hits.get("hits") or [])
            row |= {
                "Kubemate histogram p50/p95 ms": figures(kubemate_hits),
                "peer /hits p50/p95 ms": figures(peer_hits),
                "ratio histogram (p50, p95)": f"{statistics.median(kubemate_hits) / statistics.median(peer_hits):.2f}x"
                f", {p95(kubemate_hits) / p95(peer_hits):.2f}x",
                "matching lines (hits)": f"{matching:,}",
                "histogram HTML / answer KiB": f"{len(chart()) / 1024:.1f} / {hits_bytes / 1024:.0f}",
                "requests, histogram": ", ".join(path_ for path_, _, _ in sent_hits),
            }
        else:
            row["histogram"] = "no placeholder in the results (no line?)"
        rows.append(row)
        if problem:
            rows[-1]["sentence on the page"] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", problem[1])).strip()[:200]
        if profile:
            rows[-1]["where the time goes"] = breakdown(browser, results_url, params, repeat)
    for row in rows:
        print()
        for key, value in row.items():
            if key == "where the time goes":
                print(f"  {key}:\n{value}")
            else:
                print(f"  {key:31} {value}")


def breakdown(browser, url: str, params: dict, repeat: int) -> str:
    """Kubemate's parts of the lines request timed apart in this thread (median / p95 of ``repeat``): the door's
    search, shaping the lines, writing them as rows, ``services.results`` (the search, then shaping), the context
    and the partial's template (rows included); the door's histogram beside; then cProfile of one whole lines
    request and of one door search alone, top functions by own time."""
    from django.contrib.auth import get_user_model
    from django.http import QueryDict
    from django.template.loader import render_to_string
    from django.test import RequestFactory
    from django_htmx.middleware import HtmxDetails

    from apps.observability import logstore
    from apps.observability.logs import services
    from apps.observability.logs.shaping import rows_html
    from apps.observability.logs.views import TEMPLATE, _context

    user = get_user_model().objects.get(pk=browser.session["_auth_user_id"])
    data = QueryDict(mutable=True)
    for key, value in params.items():
        data[key] = str(value)
    search = services.search_from(user, data, services.clusters_for(user))
    query = services.query_of(user, search)
    cluster = search.cluster
    found = logstore.search(cluster, query)

    def shape():
        shaper = services.shaper_for(user, search)
        return [shaper.shape(line) for line in found.lines]

    request = RequestFactory().get("/", params, HTTP_HX_REQUEST="true")
    request.user, request.htmx = user, HtmxDetails(request)
    later = services.HISTOGRAM_LATER
    answer = services.results(user, search, histogram=later)
    parts = {
        "door search (query + parse)": timed(lambda: logstore.search(cluster, query), repeat),
        "shaping the lines": timed(shape, repeat),
        "the rows (shaping.Rows)": timed(lambda: rows_html(answer.lines), repeat),
        "services.results (search + shaping)": timed(lambda: services.results(user, search, histogram=later), repeat),
        "context + the partial's template (rows too)": timed(
            lambda: render_to_string(f"{TEMPLATE}#results", _context(request, search, answer, form=False)), repeat
        ),
        "door histogram (its own request)": timed(
            lambda: logstore.histogram(cluster, query, buckets=services.HISTOGRAM_BUCKETS), repeat
        ),
    }
    text = "\n".join(f"    {name:44} {figures(values)} ms" for name, values in parts.items())
    for title, call, order, only in (
        ("one whole lines request", lambda: browser.get(url, params, HTTP_HX_REQUEST="true"), "tottime", ""),
        (
            "one whole lines request",
            lambda: browser.get(url, params, HTTP_HX_REQUEST="true"),
            "cumulative",
            "/apps/observability/",
        ),
        ("one door search", lambda: logstore.search(cluster, query), "tottime", ""),
    ):
        profiler = cProfile.Profile()
        profiler.enable()
        call()
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats(order)
        stats.print_stats(*([only] if only else []), 12)
        report = [row for row in out.getvalue().splitlines() if row.strip()]
        rows = [r for r in report if "function calls" in r] + report[
            report.index(next(r for r in report if "ncalls" in r)) :
        ]
        how = "by own time" if order == "tottime" else "by cumulative time, Kubemate's functions"
        text += f"\n    cProfile of {title}, {how}:\n" + "\n".join(f"      {r.strip()[:160]}" for r in rows)
    return text


if __name__ == "__main__":
    main()
