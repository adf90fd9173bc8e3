#!/usr/bin/env python3
"""Push generated pod log lines to a log store through the Loki push API, as promtail or Grafana Alloy do.

Used by ``make demo`` (a day of lines in the demo's namespaces) and by the log benches (a million lines):

    deploy/local/push_logs.py --url http://127.0.0.1:9428 --count 1000000 --namespaces shop,bank --span 24h
    deploy/local/push_logs.py --url ... --count 2000 --trace-id 4bf92f3577b34da6a3ce929d0e0e4736

Lines go to ``<url>/insert/loki/api/v1/push`` (VictoriaLogs; give ``--path /loki/api/v1/push`` for a Loki) in the
JSON form, a stream per namespace, pod, container and level (labels namespace, pod, container, level, app), in
batches (``--batch`` lines a request, ``--workers`` requests at once). A third of the lines are JSON, a third
logfmt, a third plain text; one in ten carries ``trace_id=<32 hex>``, and ``--trace-id`` plants the given id in a
few lines of the first namespace's first pod. Pod names are the ones a Deployment gives (``web-7d9f8b6c5d-x2b4k``).
Times spread evenly over ``--span`` up to now, each stream's lines in order. VictoriaLogs is asked to keep each line
as written (``disable_message_parsing=1``; ``--parse-json`` lets it split JSON lines into fields instead).

Python's standard library only, so it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import random
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

LEVELS = (("info", 70), ("debug", 15), ("warn", 10), ("error", 5))
APPS = ("web", "api", "worker", "ledger")
SAFE = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' alphabet for generated name suffixes
MESSAGES = {
    "info": ("request served", "cart saved", "payment accepted", "user signed in", "cache refreshed"),
    "debug": ("cache lookup", "sql query planned", "retry budget", "feature flag read"),
    "warn": ("slow request", "retrying call to ledger", "disk nearly full", "certificate expires soon"),
    "error": ("payment failed: card declined", "connection refused by ledger", "timeout calling bank gateway"),
}


def _suffix(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(SAFE) for _ in range(n))


def pods_of(namespaces: list[str], pods: int, seed: int = 7) -> list[tuple[str, str, str]]:
    """(namespace, app, pod) for ``pods`` pods per namespace, named as a Deployment names them."""
    rng = random.Random(seed)
    found = []
    for namespace in namespaces:
        for i in range(pods):
            app = APPS[i % len(APPS)]
            found.append((namespace, app, f"{app}-{_suffix(rng, 10)}-{_suffix(rng, 5)}"))
    return found


def _trace(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _line(rng: random.Random, i: int, level: str, app: str, trace: str) -> str:
    message = rng.choice(MESSAGES[level])
    shape = i % 3
    took = rng.randint(1, 900)
    if shape == 0:
        body = {"level": level, "msg": message, "app": app, "took_ms": took, "request": i}
        if trace:
            body["trace_id"] = trace
        return json.dumps(body, separators=(",", ":"))
    if shape == 1:
        extra = f" trace_id={trace}" if trace else ""
        return f'level={level} msg="{message}" app={app} took_ms={took} request={i}{extra}'
    extra = f" trace_id={trace}" if trace else ""
    return f"{level.upper()} {message} (request {i}, {took} ms){extra}"


def generate(
    count: int, namespaces: list[str], pods: int, span_seconds: float, *, trace_id: str = "", seed: int = 7
) -> Iterator[tuple[tuple[str, str, str, str, str], int, str]]:
    """``count`` lines as ((namespace, app, pod, container, level), nanoseconds, text), oldest first."""
    rng = random.Random(seed)
    places = pods_of(namespaces, pods, seed)
    levels = [level for level, weight in LEVELS for _ in range(weight)]
    end = time.time_ns()
    start = end - int(span_seconds * 1e9)
    step = max((end - start) // max(count, 1), 1)
    planted = {count // 4, count // 2, (3 * count) // 4, count - 1} if trace_id else set()
    for i in range(count):
        if i in planted:
            namespace, app, pod = places[0]
            level, trace = "error", trace_id
        else:
            namespace, app, pod = places[i % len(places)]
            level = levels[i % len(levels)] if i % 7 else rng.choice(levels)
            trace = _trace(rng) if i % 10 == 0 else ""
        yield (namespace, app, pod, app, level), start + i * step, _line(rng, i, level, app, trace)


def _body(batch: list) -> bytes:
    streams: dict[tuple, list] = {}
    for (namespace, app, pod, container, level), ns, text in batch:
        streams.setdefault((namespace, app, pod, container, level), []).append([str(ns), text])
    return json.dumps(
        {
            "streams": [
                {"stream": {"namespace": n, "app": a, "pod": p, "container": c, "level": lv}, "values": values}
                for (n, a, p, c, lv), values in streams.items()
            ]
        },
        separators=(",", ":"),
    ).encode()


def push_batch(url: str, body: bytes, *, headers: dict[str, str], timeout: float = 60) -> None:
    request = urllib.request.Request(url, data=gzip.compress(body, 1), method="POST")  # noqa: S310 (http(s) given)
    request.add_header("Content-Type", "application/json")
    request.add_header("Content-Encoding", "gzip")
    for key, value in headers.items():
        request.add_header(key, value)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        if response.status not in (200, 204):
            raise RuntimeError(f"the log store answered HTTP {response.status}")


def push(
    url: str,
    lines,
    *,
    path: str = "/insert/loki/api/v1/push",
    batch: int = 20000,
    workers: int = 2,
    parse_json: bool = False,
    headers: dict[str, str] | None = None,
) -> int:
    """Push ``lines`` (as ``generate`` yields them) in batches; how many were pushed."""
    target = url.rstrip("/") + path + ("" if parse_json else "?disable_message_parsing=1")
    sent = 0
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        pending = []
        chunk: list = []
        for item in lines:
            chunk.append(item)
            if len(chunk) >= batch:
                pending.append(pool.submit(push_batch, target, _body(chunk), headers=headers or {}))
                sent += len(chunk)
                chunk = []
                if len(pending) >= workers * 2:  # bounded: never more than a few batches in memory
                    pending.pop(0).result()
        if chunk:
            pending.append(pool.submit(push_batch, target, _body(chunk), headers=headers or {}))
            sent += len(chunk)
        for future in pending:
            future.result()
    return sent


def _seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the log store, e.g. http://127.0.0.1:9428")
    parser.add_argument("--path", default="/insert/loki/api/v1/push", help="the push path (Loki: /loki/api/v1/push)")
    parser.add_argument("--count", type=int, default=10000, help="lines to push")
    parser.add_argument("--namespaces", default="shop,bank", help="comma-separated namespaces")
    parser.add_argument("--pods", type=int, default=4, help="pods per namespace")
    parser.add_argument("--span", default="1h", help="time span up to now: 90s, 30m, 24h, 7d")
    parser.add_argument("--trace-id", default="", help="a 32-hex trace id to plant in a few lines")
    parser.add_argument("--batch", type=int, default=20000, help="lines per request")
    parser.add_argument("--workers", type=int, default=2, help="requests at once")
    parser.add_argument("--tenant", default="", help="Loki X-Scope-OrgID, or VictoriaLogs account[:project]")
    parser.add_argument("--user", default="", help="basic-auth user:password")
    parser.add_argument("--parse-json", action="store_true", help="let VictoriaLogs split JSON lines into fields")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.trace_id and (len(args.trace_id) != 32 or any(c not in "0123456789abcdef" for c in args.trace_id.lower())):
        parser.error("--trace-id must be 32 hexadecimal digits")
    headers = {}
    if args.tenant:
        if "loki" in args.path and "insert" not in args.path:
            headers["X-Scope-OrgID"] = args.tenant
        else:
            account, _, project = args.tenant.partition(":")
            headers.update(AccountID=account or "0", ProjectID=project or "0")
    if args.user:
        headers["Authorization"] = "Basic " + base64.b64encode(args.user.encode()).decode()
    namespaces = [n.strip() for n in args.namespaces.split(",") if n.strip()]
    started = time.monotonic()
    lines = generate(
        args.count, namespaces, args.pods, _seconds(args.span), trace_id=args.trace_id.lower(), seed=args.seed
    )
    try:
        sent = push(
            args.url,
            lines,
            path=args.path,
            batch=args.batch,
            workers=args.workers,
            parse_json=args.parse_json,
            headers=headers,
        )
    except (OSError, RuntimeError, urllib.error.URLError) as exc:
        print(f"push_logs: could not push to {args.url}: {exc}", file=sys.stderr)
        return 1
    took = time.monotonic() - started
    print(f"pushed {sent} lines in {took:.1f} s ({sent / max(took, 1e-9):.0f} lines/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
