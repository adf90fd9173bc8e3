#!/usr/bin/env python3
"""The demo's logs and traces, about the pods that really run in the demo sandbox.

    deploy/local/demo_telemetry.py --run .run/sandbox/demo --logs-url http://127.0.0.1:9428 \\
        --otlp http://127.0.0.1:4318

Reads the pods of the demo's namespaces (payments, erp) with the sandbox's kubectl, then:

- sends two traces to Jaeger over OTLP (send_traces.py): a checkout through payments-api and payments-worker
  where the Redis call takes 150 of the request's 200 ms, and a payment whose charge fails (error spans, an
  exception event); each span carries the real pod's name and namespace;
- pushes a day of log lines for every pod through the Loki push API (push_logs.py), and, at the moment of each
  trace, the lines those pods wrote about it, carrying its ``trace_id``: the error log leads to its trace, the
  trace's spans lead back to the pods' logs.

Each run sends new traces and a new day of lines (the demo's stores keep what earlier runs sent).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import push_logs  # noqa: E402
import send_traces  # noqa: E402
from send_traces import Spec  # noqa: E402

NAMESPACES = ("payments", "erp")


def demo_pods(run: Path) -> list[dict]:
    """The running pods of the demo namespaces: namespace, name, app, first container."""
    env = dict(line.split("=", 1) for line in (run / "env").read_text().splitlines() if "=" in line and line[0] != "#")
    listed = subprocess.run(
        [env["KUBEMATE_SANDBOX_KUBECTL"], "--kubeconfig", str(run / "kubeconfig"), "get", "pods", "-A", "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    pods = []
    for item in json.loads(listed.stdout)["items"]:
        meta = item["metadata"]
        if meta["namespace"] not in NAMESPACES:
            continue
        containers = item["spec"].get("containers") or [{"name": "app"}]
        app = (meta.get("labels") or {}).get("app", meta["name"].rsplit("-", 2)[0])
        pods.append(
            {"namespace": meta["namespace"], "pod": meta["name"], "app": app, "container": containers[0]["name"]}
        )
    return sorted(pods, key=lambda p: (p["namespace"], p["pod"]))


def _first(pods: list[dict], prefix: str, fallback: str) -> dict:
    found = [p for p in pods if p["namespace"] == "payments" and p["pod"].startswith(prefix)]
    return found[0] if found else {"namespace": "payments", "pod": fallback, "app": prefix, "container": prefix}


def traces(api: dict, worker: dict) -> dict[str, list[Spec]]:
    a = {"namespace": api["namespace"], "pod": api["pod"], "container": api["container"]}
    w = {"namespace": worker["namespace"], "pod": worker["pod"], "container": worker["container"]}
    return {
        "checkout": [
            Spec("api", "payments-api", "GET /api/v1/checkout", 0, 200, attributes={"http.method": "GET"}, **a),
            Spec("orders", "payments-worker", "POST /orders", 20, 175, parent="api", **w),
            Spec(
                "cart",
                "payments-worker",
                "redis GET cart",
                30,
                150,
                parent="orders",
                kind="client",
                attributes={"db.system": "redis", "db.statement": "GET cart:42", "peer.service": "redis"},
                **w,
            ),
            Spec("save", "payments-worker", "INSERT orders", 182, 10, parent="orders", kind="client", **w),
        ],
        "failed-payment": [
            Spec(
                "api",
                "payments-api",
                "POST /api/v1/payments",
                0,
                80,
                error=True,
                attributes={"http.method": "POST", "http.status_code": 502},
                **a,
            ),
            Spec(
                "charge",
                "payments-worker",
                "charge card",
                10,
                60,
                parent="api",
                error=True,
                events=[(65, "exception", {"exception.type": "CardDeclined", "exception.message": "card declined"})],
                **w,
            ),
        ],
    }


def day_of_lines(pods: list[dict], per_pod: int, hours: float, rng: random.Random):
    """``per_pod`` lines per pod spread over the last ``hours``, as push_logs.push takes them, oldest first."""
    levels = [level for level, weight in push_logs.LEVELS for _ in range(weight)]
    end = time.time_ns() - 60 * 10**9
    step = int(hours * 3600 * 1e9) // max(per_pod, 1)
    for i in range(per_pod):
        for p in pods:
            level = rng.choice(levels)
            when = end - (per_pod - i) * step + rng.randint(0, max(step - 1, 0))
            yield (
                (p["namespace"], p["app"], p["pod"], p["container"], level),
                when,
                push_logs._line(rng, i, level, p["app"], ""),
            )


def trace_lines(api: dict, worker: dict, ids: dict[str, str], sent_at: dict[str, int]):
    """What the pods wrote while serving the two traces, each line with its trace id."""
    checkout, failed = ids["checkout"], ids["failed-payment"]
    c0, f0 = sent_at["checkout"], sent_at["failed-payment"]
    ms = 1_000_000
    a = (api["namespace"], api["app"], api["pod"], api["container"])
    w = (worker["namespace"], worker["app"], worker["pod"], worker["container"])
    return sorted(
        [
            ((*w, "info"), c0 + 31 * ms, f'level=info msg="redis GET cart" took_ms=150 trace_id={checkout}'),
            (
                (*a, "warn"),
                c0 + 200 * ms,
                f'level=warn msg="slow request GET /api/v1/checkout" took_ms=200 trace_id={checkout}',
            ),
            (
                (*w, "error"),
                f0 + 70 * ms,
                json.dumps({"level": "error", "msg": "charge failed: card declined", "trace_id": failed}),
            ),
            ((*a, "error"), f0 + 80 * ms, f'level=error msg="payment failed" status=502 trace_id={failed}'),
        ],
        key=lambda item: item[1],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="the sandbox's run folder (.run/sandbox/demo)")
    parser.add_argument("--logs-url", required=True, help="VictoriaLogs, e.g. http://127.0.0.1:9428")
    parser.add_argument("--otlp", required=True, help="Jaeger's OTLP/HTTP receiver, e.g. http://127.0.0.1:4318")
    parser.add_argument("--lines-per-pod", type=int, default=1500)
    parser.add_argument("--hours", type=float, default=24)
    args = parser.parse_args()

    pods = demo_pods(Path(args.run))
    api, worker = _first(pods, "payments-api", "payments-api-0"), _first(pods, "payments-worker", "payments-worker-0")
    ids, sent_at = {}, {}
    for name, spans in traces(api, worker).items():
        start = time.time_ns() - (5 if name == "checkout" else 3) * 60 * 10**9
        ids[name] = send_traces.send(args.otlp, spans, start_ns=start)
        sent_at[name] = start
    pushed = push_logs.push(args.logs_url, day_of_lines(pods, args.lines_per_pod, args.hours, random.Random(11)))
    pushed += push_logs.push(args.logs_url, trace_lines(api, worker, ids, sent_at))
    print(f"Sent traces {', '.join(f'{k} {v}' for k, v in ids.items())}; pushed {pushed} log lines of {len(pods)} pods")
    return 0


if __name__ == "__main__":
    sys.exit(main())
