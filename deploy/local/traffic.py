"""Demo traffic: the HTTP metrics the demo's apps would export if kwok pods served requests.

kwok nodes run no containers, so nothing in the demo answers HTTP. This process
stands in for the apps' own /metrics endpoints so that the demo's Prometheus has
the usual series to chart and to gate automatic canary steps on:

    http_requests_total{namespace, service, code}            counter
    http_request_duration_seconds_bucket{namespace, service, le}  histogram

Every 5 seconds it reads the sandbox's Deployments (admin kubeconfig) and serves,
for each one with ready pods, 10 requests per second per ready pod under
``service=<Deployment name>`` (Kubemate names a release's Service after its
Deployment, the canary's ``<name>-canary``). The answers are healthy (0.2 %
errors, 99th percentile about 0.1 s) unless the first container's image tag says
otherwise: a tag containing ``broken`` fails 8 % of requests, one containing
``slow`` answers in about 1.2 s. So in the demo a canary of ``app:2.0.0`` steps
up to 100 %, and one of ``app:2.0.0-broken`` is aborted by its error-rate check.

    .venv/bin/python deploy/local/traffic.py --kubeconfig .run/sandbox/demo/kubeconfig --port 9464

It also serves the cluster's own metrics (cAdvisor, kube-state-metrics, node-exporter, the API server's
request counter) as ``kube_metrics.py`` plays them, for the console's charts.

Demo only: `make demo` starts it; nothing in the console imports it.
"""

from __future__ import annotations

import argparse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kube_metrics import KubeMetrics  # beside this script
from kubernetes import client, config

PER_POD = 10.0  # requests per second per ready pod
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
HEALTHY = {"errors": 0.002, "latency": (0.55, 0.90, 0.99, 0.999, 1.0, 1.0, 1.0)}
BROKEN = {"errors": 0.08, "latency": HEALTHY["latency"]}
SLOW = {"errors": 0.002, "latency": (0.0, 0.01, 0.05, 0.2, 0.5, 0.995, 1.0)}


def behaviour(image: str) -> dict:
    tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
    if "broken" in tag:
        return BROKEN
    if "slow" in tag:
        return SLOW
    return HEALTHY


class Traffic:
    """Counters that grow with the time each Deployment has had ready pods."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.apps: dict[tuple[str, str], tuple[int, dict]] = {}  # (namespace, service) -> (ready pods, behaviour)
        self.requests: dict[tuple[str, str, str], float] = {}
        self.buckets: dict[tuple[str, str, str], float] = {}
        self.sums: dict[tuple[str, str], float] = {}
        self.last = time.monotonic()

    def observe(self, deployments) -> None:
        apps = {}
        for d in deployments:
            ready = (d.status.ready_replicas or 0) if d.status else 0
            containers = d.spec.template.spec.containers or []
            if ready and containers:
                apps[(d.metadata.namespace, d.metadata.name)] = (ready, behaviour(containers[0].image or ""))
        with self.lock:
            self.advance()
            self.apps = apps

    def advance(self) -> None:
        now = time.monotonic()
        elapsed, self.last = now - self.last, now
        for (namespace, service), (ready, kind) in self.apps.items():
            total = ready * PER_POD * elapsed
            errors = total * kind["errors"]
            for code, count in (("200", total - errors), ("500", errors)):
                key = (namespace, service, code)
                self.requests[key] = self.requests.get(key, 0.0) + count
            for le, share in zip((*BUCKETS, "+Inf"), (*kind["latency"], 1.0), strict=True):
                key = (namespace, service, str(le))
                self.buckets[key] = self.buckets.get(key, 0.0) + total * share
            self.sums[(namespace, service)] = self.sums.get((namespace, service), 0.0) + total * 0.08

    def text(self) -> str:
        with self.lock:
            self.advance()
            lines = ["# TYPE http_requests_total counter"]
            for (namespace, service, code), value in sorted(self.requests.items()):
                labels = f'namespace="{namespace}",service="{service}",code="{code}"'
                lines.append(f"http_requests_total{{{labels}}} {value}")
            lines.append("# TYPE http_request_duration_seconds histogram")
            for (namespace, service, le), value in sorted(self.buckets.items()):
                labels = f'namespace="{namespace}",service="{service}"'
                lines.append(f'http_request_duration_seconds_bucket{{{labels},le="{le}"}} {value}')
            for (namespace, service), value in sorted(self.sums.items()):
                labels = f'namespace="{namespace}",service="{service}"'
                lines.append(f"http_request_duration_seconds_sum{{{labels}}} {value}")
                count = self.buckets.get((namespace, service, "+Inf"), 0.0)
                lines.append(f"http_request_duration_seconds_count{{{labels}}} {count}")
        return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--port", type=int, default=9464)
    args = parser.parse_args()
    config.load_kube_config(args.kubeconfig)
    apps = client.AppsV1Api()
    traffic = Traffic()
    cluster = KubeMetrics(client.ApiClient())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = (traffic.text() + cluster.text()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"demo traffic metrics at http://127.0.0.1:{args.port}/metrics", flush=True)
    while True:
        try:
            traffic.observe(apps.list_deployment_for_all_namespaces(timeout_seconds=10).items)
            cluster.observe()
        except Exception as exc:  # noqa: BLE001 (the sandbox may be restarting; keep serving what we have)
            print(f"could not read Deployments: {exc}", flush=True)
        time.sleep(5)


if __name__ == "__main__":
    main()
