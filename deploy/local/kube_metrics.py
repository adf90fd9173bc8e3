"""Demo cluster metrics: what cAdvisor, kube-state-metrics, node-exporter and the API server would export.

The demo cluster is a kwok sandbox: its pods run no containers and its nodes no exporters, so nothing measures
them. ``deploy/local/traffic.py`` serves these series beside its HTTP ones so that the console's charts have
data; every 5 seconds it gives ``KubeMetrics`` the sandbox's pods, workloads and nodes (admin kubeconfig).

- kube-state-metrics: read from the objects as they are (phases, restarts, requests and limits, replicas,
  allocatable), so scaling a Deployment in the console shows in its Replicas chart;
- cAdvisor (``container_*``): CPU and memory of each container of each running pod, around the usage kwok
  reports for it (the ``kwok.x-k8s.io/usage-cpu``/``-memory`` annotations) or a share of its requests, with a
  slow wave and some noise; counters (CPU seconds, network bytes) grow by what the rates say;
- node-exporter (``node_*``, ``node_uname_info{nodename}``): each node's CPU is the sum of its pods' plus a
  little for the system, its memory likewise, its root disk slowly filling;
- ``apiserver_request_total``: the sandbox API server's own counter, read from its /metrics every 15 seconds.

Demo only: nothing in the console imports it.
"""

from __future__ import annotations

import math
import random
import threading
import time
import zlib

from kubernetes import client

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
NODE_SYSTEM_CORES = 0.15
NODE_SYSTEM_BYTES = 700 * 2**20
APISERVER_EVERY = 15.0


def quantity(text: str | None, *, cpu: bool) -> float:
    """A Kubernetes quantity as cores or bytes ("250m" -> 0.25, "256Mi" -> 268435456)."""
    if not text:
        return 0.0
    text = str(text)
    suffixes = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    for suffix, factor in suffixes.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    try:
        return float(text)
    except ValueError:
        return 0.0


def seed(*parts: str) -> float:
    """A stable number in [0, 1) for a name: each pod keeps its own shape from one run to the next."""
    return (zlib.crc32("/".join(parts).encode()) % 10_000) / 10_000


def wave(phase: float, period: float, now: float) -> float:
    return math.sin(2 * math.pi * (now / period + phase))


def labels(**values: str) -> str:
    return ",".join(f'{k}="{v}"' for k, v in values.items())


class KubeMetrics:
    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.api = api
        self.lock = threading.Lock()
        self.pods: list = []
        self.deployments: list = []
        self.statefulsets: list = []
        self.daemonsets: list = []
        self.nodes: list = []
        self.cpu_seconds: dict[tuple, float] = {}
        self.network: dict[tuple, float] = {}
        self.node_cpu: dict[tuple, float] = {}
        self.node_network: dict[tuple, float] = {}
        self.apiserver_lines: list[str] = []
        self.apiserver_at = 0.0
        self.last = time.time()
        self.random = random.Random(7)

    def observe(self) -> None:
        pods = self.core.list_pod_for_all_namespaces(timeout_seconds=10).items
        deployments = self.apps.list_deployment_for_all_namespaces(timeout_seconds=10).items
        statefulsets = self.apps.list_stateful_set_for_all_namespaces(timeout_seconds=10).items
        daemonsets = self.apps.list_daemon_set_for_all_namespaces(timeout_seconds=10).items
        nodes = self.core.list_node(timeout_seconds=10).items
        if time.time() - self.apiserver_at > APISERVER_EVERY:
            self.apiserver_at = time.time()
            self.apiserver_lines = self.read_apiserver()
        with self.lock:
            self.advance()
            self.pods, self.deployments, self.statefulsets = pods, deployments, statefulsets
            self.daemonsets, self.nodes = daemonsets, nodes

    def read_apiserver(self) -> list[str]:
        try:  # the admin kubeconfig signs in with a client certificate, which the connection pool carries
            response = self.api.call_api(
                "GET",
                f"{self.api.configuration.host}/metrics",
                header_params={"Accept": "text/plain"},
                _request_timeout=10,
            )
            response.read()
            text = response.data.decode()
        except Exception:  # noqa: BLE001 (the demo keeps serving what it has)
            return self.apiserver_lines
        return [line for line in text.splitlines() if line.startswith("apiserver_request_total{")]

    # What the running containers use now ---------------------------------------------------------------------

    def running(self):
        for pod in self.pods:
            if (pod.status.phase if pod.status else "") != "Running" or not pod.spec.node_name:
                continue
            yield pod

    def usage(self, pod, container, now: float) -> tuple[float, float]:
        """CPU (cores) and working set (bytes) of one container now."""
        meta = pod.metadata
        notes = meta.annotations or {}
        requests = (container.resources.requests or {}) if container.resources else {}
        limits = (container.resources.limits or {}) if container.resources else {}
        phase = seed(meta.namespace, meta.name, container.name)
        cpu_base = quantity(notes.get("kwok.x-k8s.io/usage-cpu"), cpu=True) or 0.4 * (
            quantity(requests.get("cpu"), cpu=True) or 0.1
        )
        memory_base = quantity(notes.get("kwok.x-k8s.io/usage-memory"), cpu=False) or 0.6 * (
            quantity(requests.get("memory"), cpu=False) or 128 * 2**20
        )
        cpu = cpu_base * (1 + 0.35 * wave(phase, 900 + 600 * phase, now) + 0.12 * self.random.uniform(-1, 1))
        memory = memory_base * (1 + 0.08 * wave(phase, 3600, now) + 0.01 * self.random.uniform(-1, 1))
        cpu_limit = quantity(limits.get("cpu"), cpu=True)
        memory_limit = quantity(limits.get("memory"), cpu=False)
        if cpu_limit:
            cpu = min(cpu, cpu_limit)
        if memory_limit:
            memory = min(memory, 0.97 * memory_limit)
        return max(cpu, 0.001), max(memory, 1.0)

    def advance(self) -> None:
        """Grow the counters by what the rates were since the last time."""
        now = time.time()
        elapsed, self.last = now - self.last, now
        per_node: dict[str, float] = {}
        for pod in self.running():
            meta = pod.metadata
            for container in pod.spec.containers or []:
                cpu, _memory = self.usage(pod, container, now)
                key = (meta.namespace, meta.name, container.name)
                self.cpu_seconds[key] = self.cpu_seconds.get(key, 0.0) + cpu * elapsed
                per_node[pod.spec.node_name] = per_node.get(pod.spec.node_name, 0.0) + cpu
            traffic = 40_000 * (1 + seed(meta.namespace, meta.name)) * (1 + 0.3 * wave(0.2, 1200, now))
            for direction, factor in (("receive", 1.0), ("transmit", 2.6)):
                key = (meta.namespace, meta.name, direction)
                self.network[key] = self.network.get(key, 0.0) + traffic * factor * elapsed
        for node in self.nodes:
            name = node.metadata.name
            cores = max(int(quantity((node.status.capacity or {}).get("cpu"), cpu=True)), 1)
            busy = min(per_node.get(name, 0.0) + NODE_SYSTEM_CORES, cores * 0.98)
            for cpu in range(min(cores, 8)):
                share = busy / cores
                for mode, part in (("idle", 1 - share), ("user", share * 0.8), ("system", share * 0.2)):
                    key = (name, str(cpu), mode)
                    self.node_cpu[key] = self.node_cpu.get(key, 0.0) + part * elapsed
            for direction, speed in (("receive", 350_000.0), ("transmit", 280_000.0)):
                key = (name, direction)
                self.node_network[key] = self.node_network.get(key, 0.0) + speed * (1 + seed(name)) * elapsed

    # The text -------------------------------------------------------------------------------------------------

    def text(self) -> str:
        with self.lock:
            self.advance()
            now = time.time()
            lines: dict[str, list[str]] = {}

            def add(name: str, label_text: str, value: float) -> None:
                lines.setdefault(name, []).append(f"{name}{{{label_text}}} {value!r}")

            memory_on_node: dict[str, float] = {}
            for pod in self.pods:
                self.pod_state(pod, add)
            for pod in self.running():
                meta = pod.metadata
                for container in pod.spec.containers or []:
                    _cpu, memory = self.usage(pod, container, now)
                    where = labels(namespace=meta.namespace, pod=meta.name, container=container.name)
                    seconds = self.cpu_seconds.get((meta.namespace, meta.name, container.name), 0.0)
                    add("container_cpu_usage_seconds_total", where, seconds)
                    add("container_memory_working_set_bytes", where, round(memory))
                    memory_on_node[pod.spec.node_name] = memory_on_node.get(pod.spec.node_name, 0.0) + memory
                for direction in ("receive", "transmit"):
                    value = self.network.get((meta.namespace, meta.name, direction), 0.0)
                    add(
                        f"container_network_{direction}_bytes_total",
                        labels(namespace=meta.namespace, pod=meta.name, interface="eth0"),
                        round(value),
                    )
            self.workloads(add)
            self.node_state(add, memory_on_node, now)
            body = [line for name in sorted(lines) for line in lines[name]]
            body += self.apiserver_lines
        return "\n".join(body) + "\n"

    def pod_state(self, pod, add) -> None:
        meta, status = pod.metadata, pod.status
        phase = (status.phase if status else "") or "Unknown"
        add("kube_pod_info", labels(namespace=meta.namespace, pod=meta.name, node=pod.spec.node_name or ""), 1)
        for each in PHASES:
            add(
                "kube_pod_status_phase", labels(namespace=meta.namespace, pod=meta.name, phase=each), int(each == phase)
            )
        restarts = {s.name: s.restart_count or 0 for s in (status.container_statuses or [])} if status else {}
        for container in pod.spec.containers or []:
            where = labels(namespace=meta.namespace, pod=meta.name, container=container.name)
            add("kube_pod_container_status_restarts_total", where, restarts.get(container.name, 0))
            resources = container.resources
            for kind, values in (
                ("requests", resources.requests if resources else None),
                ("limits", resources.limits if resources else None),
            ):
                for resource, unit in (("cpu", "core"), ("memory", "byte")):
                    if values and values.get(resource):
                        amount = quantity(values[resource], cpu=resource == "cpu")
                        add(
                            f"kube_pod_container_resource_{kind}",
                            f'{where},resource="{resource}",unit="{unit}"',
                            amount,
                        )

    def workloads(self, add) -> None:
        for d in self.deployments:
            where = labels(namespace=d.metadata.namespace, deployment=d.metadata.name)
            status = d.status
            add("kube_deployment_spec_replicas", where, d.spec.replicas or 0)
            add("kube_deployment_status_replicas", where, (status.replicas or 0) if status else 0)
            add("kube_deployment_status_replicas_available", where, (status.available_replicas or 0) if status else 0)
            add("kube_deployment_status_replicas_updated", where, (status.updated_replicas or 0) if status else 0)
        for s in self.statefulsets:
            where = labels(namespace=s.metadata.namespace, statefulset=s.metadata.name)
            add("kube_statefulset_replicas", where, s.spec.replicas or 0)
            add("kube_statefulset_status_replicas_ready", where, (s.status.ready_replicas or 0) if s.status else 0)
        for ds in self.daemonsets:
            where = labels(namespace=ds.metadata.namespace, daemonset=ds.metadata.name)
            status = ds.status
            add(
                "kube_daemonset_status_desired_number_scheduled",
                where,
                status.desired_number_scheduled if status else 0,
            )
            add("kube_daemonset_status_number_ready", where, status.number_ready if status else 0)

    def node_state(self, add, memory_on_node: dict[str, float], now: float) -> None:
        for node in self.nodes:
            name = node.metadata.name
            instance = f"{name}:9100"
            allocatable = node.status.allocatable or {}
            capacity = node.status.capacity or {}
            for resource, unit in (("cpu", "core"), ("memory", "byte"), ("pods", "integer")):
                if allocatable.get(resource):
                    amount = quantity(allocatable[resource], cpu=resource == "cpu")
                    add("kube_node_status_allocatable", labels(node=name, resource=resource, unit=unit), amount)
            add("node_uname_info", labels(instance=instance, nodename=name, sysname="Linux", machine="x86_64"), 1)
            for (node_name, cpu, mode), seconds in sorted(self.node_cpu.items()):
                if node_name == name:
                    add("node_cpu_seconds_total", labels(instance=instance, cpu=cpu, mode=mode), seconds)
            total = quantity(capacity.get("memory"), cpu=False) or 16 * 2**30
            used = min(memory_on_node.get(name, 0.0) + NODE_SYSTEM_BYTES, total * 0.95)
            add("node_memory_MemTotal_bytes", labels(instance=instance), round(total))
            add("node_memory_MemAvailable_bytes", labels(instance=instance), round(total - used))
            size = 200 * 2**30
            filled = 0.35 + 0.1 * seed(name) + 0.02 * wave(seed(name), 86400, now)
            disk = labels(instance=instance, device="/dev/vda1", fstype="ext4", mountpoint="/")
            add("node_filesystem_size_bytes", disk, size)
            add("node_filesystem_avail_bytes", disk, round(size * (1 - filled)))
            for direction in ("receive", "transmit"):
                value = self.node_network.get((name, direction), 0.0)
                add(f"node_network_{direction}_bytes_total", labels(instance=instance, device="eth0"), round(value))
