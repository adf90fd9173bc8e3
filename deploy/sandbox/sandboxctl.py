#!/usr/bin/env python3
"""Run a real Kubernetes control plane on loopback (no containers).

    sandboxctl.py up     [--name NAME] [--nodes N] [--demo] [--timeout S]
    sandboxctl.py down   [--name NAME]
    sandboxctl.py status [--name NAME] [--json]

The thin wrappers deploy/sandbox/{up,down,status} call this file.
Standard library only. See deploy/sandbox/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RUN_ROOT = Path(os.environ.get("KUBEMATE_SANDBOX_RUN_ROOT", REPO / ".run" / "sandbox"))

SERVICE_CIDR = "10.96.0.0/16"
FIRST_SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"

# Start order; `down` stops in reverse order.
COMPONENTS = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "metrics-server",
    "traefik",
]
# Cache entries `up` needs (names as `build --print-paths` gives them, lower-case with dashes).
UP_NEEDS = [*COMPONENTS, "kubectl", "gateway-api", "prometheus-operator-crds"]
# Traefik, the sandbox's Gateway API controller: the GatewayClass it answers and the Gateway every sandbox has.
GATEWAY_CONTROLLER = "traefik.io/gateway-controller"
GATEWAY_NAMESPACE = "gateway-system"
GATEWAY_TLS_HOSTNAME = "*.demo.kubemate.dev"
# ${KUBEMATE_SANDBOX_...} in demo files: values of the env file (ports chosen at start).
PLACEHOLDER = re.compile(r"\$\{(KUBEMATE_SANDBOX_[A-Z0-9_]+)\}")


def log(msg: str) -> None:
    print(f"sandbox: {msg}", flush=True)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


# --------------------------------------------------------------------------- binaries


def binary_paths(build_if_missing: bool = True) -> dict[str, Path]:
    """Paths of the cached binaries; runs ./build when any is missing."""
    out = subprocess.run([str(HERE / "build"), "--print-paths"], check=True, capture_output=True, text=True).stdout
    paths = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        paths[key.lower().replace("_", "-")] = Path(value)
    # Only what `up` runs: the build also makes the outside systems the tests start (log store, tracing).
    missing = [k for k in UP_NEEDS if not (paths[k].is_file() and (paths[k].parent / ".complete").is_file())]
    if missing and build_if_missing:
        log(f"binaries missing from the cache ({', '.join(missing)}): running build")
        subprocess.run([str(HERE / "build"), "--only", ",".join(missing)], check=True)
    return paths


# --------------------------------------------------------------------------- PKI


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(pki: Path, name: str, cn: str) -> None:
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=pki)
    openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        f"{name}.key",
        "-sha256",
        "-days",
        "3650",
        "-subj",
        f"/CN={cn}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        "-out",
        f"{name}.crt",
        cwd=pki,
    )


def make_cert(
    pki: Path,
    name: str,
    cn: str,
    *,
    org: str | None = None,
    ca: str = "ca",
    server_sans: list[str] | None = None,
    client: bool = True,
) -> None:
    """Key + certificate signed by `ca`. server_sans makes it a serving cert too."""
    subj = (f"/O={org}" if org else "") + f"/CN={cn}"
    usages = (["serverAuth"] if server_sans else []) + (["clientAuth"] if client else [])
    ext = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=" + ",".join(usages),
    ]
    if server_sans:
        ext.append("subjectAltName=" + ",".join(server_sans))
    (pki / f"{name}.ext").write_text("\n".join(ext) + "\n")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=pki)
    openssl("req", "-new", "-key", f"{name}.key", "-subj", subj, "-out", f"{name}.csr", cwd=pki)
    openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-sha256",
        "-days",
        "3650",
        "-extfile",
        f"{name}.ext",
        "-out",
        f"{name}.crt",
        cwd=pki,
    )
    (pki / f"{name}.csr").unlink()
    (pki / f"{name}.ext").unlink()


def make_pki(pki: Path) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    make_ca(pki, "ca", "kubemate-sandbox-ca")
    make_ca(pki, "front-proxy-ca", "kubemate-sandbox-front-proxy-ca")
    loopback = ["IP:127.0.0.1", "DNS:localhost"]
    make_cert(
        pki,
        "apiserver",
        "kube-apiserver",
        client=False,
        server_sans=[
            *loopback,
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
            f"IP:{FIRST_SERVICE_IP}",
        ],
    )
    make_cert(pki, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", org="system:masters")
    make_cert(pki, "admin", "kubemate-admin", org="system:masters")
    make_cert(pki, "controller-manager", "system:kube-controller-manager")
    make_cert(pki, "scheduler", "system:kube-scheduler")
    # kwok emulates every kubelet: it needs to manage all nodes and pods.
    make_cert(pki, "kwok", "kwok-controller", org="system:masters")
    # kwok's serving cert = the "kubelet" endpoint the apiserver and metrics-server call.
    make_cert(pki, "kwok-serving", "kwok-kubelet", client=False, server_sans=loopback)
    make_cert(pki, "metrics-server", "system:metrics-server")
    make_cert(
        pki,
        "metrics-server-serving",
        "metrics-server",
        client=False,
        server_sans=[
            *loopback,
            "DNS:metrics-server",
            "DNS:metrics-server.kube-system",
            "DNS:metrics-server.kube-system.svc",
        ],
    )
    make_cert(pki, "front-proxy-client", "front-proxy-client", ca="front-proxy-ca")
    # the demo Gateway's HTTPS listener certificate (Secret gateway-system/demo-wildcard-tls), served by Traefik
    make_cert(
        pki,
        "gateway-tls",
        GATEWAY_TLS_HOSTNAME,
        client=False,
        server_sans=[f"DNS:{GATEWAY_TLS_HOSTNAME}", *loopback],
    )
    # service-account token signing key pair
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    for f in pki.glob("*.key"):
        f.chmod(0o600)


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    """A kubeconfig with file references (JSON is valid YAML)."""
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(pki / f"{user}.crt"),
                    "client-key": str(pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": user}}],
        "current-context": "sandbox",
    }
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    path.chmod(0o600)


def write_admin_kubeconfig(path: Path, server: str, pki: Path, name: str) -> None:
    """The admin kubeconfig with embedded data, so it can be copied anywhere."""
    import base64

    def b64(p: str) -> str:
        return base64.b64encode((pki / p).read_bytes()).decode()

    ctx = f"kubemate-sandbox-{name}"
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": ctx, "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")}}],
        "users": [
            {
                "name": f"{ctx}-admin",
                "user": {"client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")},
            }
        ],
        "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": f"{ctx}-admin"}}],
        "current-context": ctx,
    }
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    path.chmod(0o600)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    ports: list[int] = []
    socks = []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def pid_belongs(pid: int, run_dir: Path) -> bool:
    """True when the process is one this sandbox started (its command line names the run folder)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return str(run_dir) in cmdline


class Sandbox:
    def __init__(self, name: str):
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,62}", name):
            raise SystemExit(f"sandbox: invalid name {name!r}")
        self.name = name
        self.run_dir = RUN_ROOT / name
        self.pki = self.run_dir / "pki"
        self.logs = self.run_dir / "logs"
        self.conf = self.run_dir / "config"
        self.pids_dir = self.run_dir / "pids"
        self.env_file = self.run_dir / "env"
        self.kubeconfig = self.run_dir / "kubeconfig"
        self.values: dict[str, str] = {}

    # ---- env file
    def load_env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        if self.env_file.is_file():
            for line in self.env_file.read_text().splitlines():
                if "=" in line and not line.lstrip().startswith("#"):
                    k, _, v = line.partition("=")
                    values[k.strip()] = v.strip().strip("'\"")
        return values

    def write_env(self) -> None:
        lines = [f"# kubemate sandbox {self.name}; load with: set -a; . {self.env_file}; set +a"]
        lines += [f"{k}={v}" for k, v in self.values.items()]
        tmp = self.env_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.env_file)

    def pids(self) -> dict[str, int]:
        result = {}
        if self.pids_dir.is_dir():
            for comp in COMPONENTS:
                f = self.pids_dir / comp
                if f.is_file():
                    result[comp] = int(f.read_text().strip())
        return result

    def start(self, comp: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        with open(self.logs / f"{comp}.log", "ab") as logf:  # the child keeps its own copy
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=self.run_dir,
                start_new_session=True,
                env=env,
            )
        (self.pids_dir / comp).write_text(f"{proc.pid}\n")
        self.values[f"KUBEMATE_SANDBOX_PID_{comp.upper().replace('-', '_')}"] = str(proc.pid)
        self.write_env()
        log(f"started {comp} (pid {proc.pid}, log {self.logs / (comp + '.log')})")
        return proc.pid

    # ---- HTTP helpers
    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def get(self, url: str, ctx: ssl.SSLContext | None = None, timeout: float = 5) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=timeout) as r:  # noqa: S310 - own loopback URLs
                return r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def wait_for(self, what: str, check, timeout: float, comp: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                ok, last = check()
                if ok:
                    return
            except Exception as e:  # noqa: BLE001 - report the last error on timeout
                last = repr(e)
            if comp:
                pid = self.pids().get(comp)
                if pid and not pid_alive(pid):
                    tail = (self.logs / f"{comp}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{comp} exited while waiting for {what}; log tail:\n{tail}")
            time.sleep(0.3)
        raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}: {last[-2000:]}")

    def wait_for_crds(self, timeout: float) -> None:
        """Every CRD Established. kubectl wait fails at once ("conditions accessor error") on a CRD whose status
        the apiserver has not written yet, which happens right after an apply: ask again until the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.kubectl("wait", "--for=condition=Established", "crd", "--all", f"--timeout={int(timeout)}s")
                return
            except RuntimeError as exc:
                if "accessor error" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            [str(self.bins["kubectl"]), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    # ---------------------------------------------------------------- up
    def up(self, nodes: int, demo: bool, timeout: float) -> None:
        t0 = time.monotonic()
        if self.run_dir.exists():
            alive = {c: p for c, p in self.pids().items() if pid_alive(p) and pid_belongs(p, self.run_dir)}
            if alive:
                log(f"{self.name} is already running ({', '.join(alive)}); use down first to restart it")
                if demo:
                    self.bins = binary_paths()
                    self.apply_demo(timeout)
                print_status(self)
                return
            log(f"removing stale run folder {self.run_dir}")
            shutil.rmtree(self.run_dir)
        self.bins = binary_paths()
        attempts = 3
        for attempt in range(1, attempts + 1):
            for d in (self.pki, self.logs, self.conf, self.pids_dir, self.run_dir / "etcd"):
                d.mkdir(parents=True, exist_ok=True)
            try:
                self._up(nodes, demo, timeout)
                break
            except BaseException:
                self.stop_processes()
                # Ports are chosen free but only taken when each process binds: another
                # sandbox starting at the same moment can win the race. Retry with new ports.
                if attempt < attempts and self.port_clash():
                    log(f"a port was taken meanwhile; retrying with new ports (attempt {attempt + 1})")
                    shutil.rmtree(self.run_dir)
                    self.values = {}
                    continue
                log(f"up failed; stopped what was started; logs are in {self.logs} until down")
                raise
        log(f"{self.name} is up in {time.monotonic() - t0:.1f}s")
        print_status(self)
        print(f"\n  export KUBECONFIG={self.kubeconfig}")

    def port_clash(self) -> bool:
        return any("address already in use" in f.read_text(errors="replace") for f in self.logs.glob("*.log"))

    def _up(self, nodes: int, demo: bool, timeout: float) -> None:
        t = time.monotonic()
        make_pki(self.pki)
        log(f"PKI ready in {time.monotonic() - t:.1f}s")
        p_etcd, p_peer, p_api, p_kcm, p_sched, p_kwok, p_ms, p_web, p_websecure, p_traefik = free_ports(10)
        server = f"https://127.0.0.1:{p_api}"
        etcd_url = f"http://127.0.0.1:{p_etcd}"
        self.values.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "KUBEMATE_SANDBOX_NAME": self.name,
                "KUBEMATE_SANDBOX_RUN_DIR": str(self.run_dir),
                "KUBEMATE_SANDBOX_SERVER": server,
                "KUBEMATE_SANDBOX_ETCD": etcd_url,
                "KUBEMATE_SANDBOX_KWOK": f"https://127.0.0.1:{p_kwok}",
                "KUBEMATE_SANDBOX_METRICS_SERVER": f"https://127.0.0.1:{p_ms}",
                "KUBEMATE_SANDBOX_KCM": f"https://127.0.0.1:{p_kcm}",
                "KUBEMATE_SANDBOX_SCHEDULER": f"https://127.0.0.1:{p_sched}",
                "KUBEMATE_SANDBOX_KUBECTL": str(self.bins["kubectl"]),
                # Traefik: ping and API; the Gateway's HTTP and HTTPS listeners (listener port = entrypoint port)
                "KUBEMATE_SANDBOX_TRAEFIK": f"http://127.0.0.1:{p_traefik}",
                "KUBEMATE_SANDBOX_GATEWAY_HTTP": f"http://127.0.0.1:{p_web}",
                "KUBEMATE_SANDBOX_GATEWAY_HTTPS": f"https://127.0.0.1:{p_websecure}",
                "KUBEMATE_SANDBOX_GATEWAY_HTTP_PORT": str(p_web),
                "KUBEMATE_SANDBOX_GATEWAY_HTTPS_PORT": str(p_websecure),
            }
        )
        self.write_env()
        pki, conf = self.pki, self.conf
        write_admin_kubeconfig(self.kubeconfig, server, pki, self.name)
        for user in ("controller-manager", "scheduler", "kwok", "metrics-server"):
            write_kubeconfig(conf / f"{user}.kubeconfig", server, pki, user)

        # etcd
        self.start(
            "etcd",
            [
                str(self.bins["etcd"]),
                "--name",
                "sandbox",
                "--data-dir",
                str(self.run_dir / "etcd"),
                "--listen-client-urls",
                etcd_url,
                "--advertise-client-urls",
                etcd_url,
                "--listen-peer-urls",
                f"http://127.0.0.1:{p_peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{p_peer}",
                "--initial-cluster",
                f"sandbox=http://127.0.0.1:{p_peer}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes",
                str(8 * 1024**3),
                "--log-level",
                "warn",
            ],
        )
        self.wait_for(
            "etcd /health",
            lambda: (lambda r: (r[0] == 200 and '"true"' in r[1], r[1]))(self.get(etcd_url + "/health")),
            30,
            "etcd",
        )

        # kube-apiserver
        self.start(
            "kube-apiserver",
            [
                str(self.bins["kube-apiserver"]),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={p_api}",
                f"--cert-dir={self.run_dir / 'apiserver-certs'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--service-account-issuer={SA_ISSUER}",
                f"--api-audiences={SA_ISSUER}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                f"--kubelet-certificate-authority={pki / 'ca.crt'}",
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
                # the "kubernetes" Service endpoint would be 127.0.0.1, which Endpoints validation refuses
                "--endpoint-reconciler-type=none",
                f"--max-requests-inflight={env_int('SANDBOX_APISERVER_MAX_INFLIGHT', 800)}",
                f"--max-mutating-requests-inflight={env_int('SANDBOX_APISERVER_MAX_MUTATING_INFLIGHT', 400)}",
                "--profiling=false",
                f"--v={env_int('SANDBOX_APISERVER_V', 1)}",
            ],
        )
        ctx = self.ssl_context()
        self.wait_for(
            "kube-apiserver /readyz",
            lambda: (lambda r: (r[0] == 200, r[1]))(self.get(server + "/readyz", ctx)),
            60,
            "kube-apiserver",
        )
        log("kube-apiserver is ready")

        # kube-controller-manager
        kcm_qps = env_int("SANDBOX_KCM_QPS", 100)
        kcm_burst = env_int("SANDBOX_KCM_BURST", 200)
        kcm_kc = conf / "controller-manager.kubeconfig"
        self.start(
            "kube-controller-manager",
            [
                str(self.bins["kube-controller-manager"]),
                f"--kubeconfig={kcm_kc}",
                f"--authentication-kubeconfig={kcm_kc}",
                f"--authorization-kubeconfig={kcm_kc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p_kcm}",
                f"--cert-dir={self.run_dir / 'kcm-certs'}",
                "--use-service-account-credentials=true",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--leader-elect=false",
                f"--kube-api-qps={kcm_qps}",
                f"--kube-api-burst={kcm_burst}",
                # HPAs act on a new reading within seconds, not the 15 s default (a handful of HPAs here)
                f"--horizontal-pod-autoscaler-sync-period={os.environ.get('SANDBOX_HPA_SYNC_PERIOD', '3s')}",
                f"--v={env_int('SANDBOX_KCM_V', 1)}",
            ],
        )

        # kube-scheduler
        sched_kc = conf / "scheduler.kubeconfig"
        sched_cfg = conf / "scheduler.yaml"
        sched_cfg.write_text(
            json.dumps(
                {
                    "apiVersion": "kubescheduler.config.k8s.io/v1",
                    "kind": "KubeSchedulerConfiguration",
                    "clientConnection": {
                        "kubeconfig": str(sched_kc),
                        "qps": env_int("SANDBOX_SCHEDULER_QPS", 100),
                        "burst": env_int("SANDBOX_SCHEDULER_BURST", 200),
                    },
                    "leaderElection": {"leaderElect": False},
                },
                indent=2,
            )
            + "\n"
        )
        self.start(
            "kube-scheduler",
            [
                str(self.bins["kube-scheduler"]),
                f"--config={sched_cfg}",
                f"--authentication-kubeconfig={sched_kc}",
                f"--authorization-kubeconfig={sched_kc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p_sched}",
                f"--cert-dir={self.run_dir / 'scheduler-certs'}",
                f"--v={env_int('SANDBOX_SCHEDULER_V', 1)}",
            ],
        )

        # kwok: stages + metrics + usage + logs, all from one config file
        kwok_cfg = conf / "kwok.yaml"
        docs = [p.read_text() for p in sorted((HERE / "kwok").glob("*.yaml"))]
        docs.append(json.dumps(cluster_logs_config(), indent=2))
        docs.append(json.dumps(cluster_exec_config(self.run_dir / "exec"), indent=2))
        kwok_cfg.write_text("\n---\n".join(d.strip() for d in docs) + "\n")
        self.start(
            "kwok",
            [
                str(self.bins["kwok"]),
                f"--kubeconfig={conf / 'kwok.kubeconfig'}",
                f"--config={kwok_cfg}",
                "--manage-all-nodes=true",
                "--node-ip=127.0.0.1",
                f"--node-port={p_kwok}",
                f"--server-address=127.0.0.1:{p_kwok}",
                f"--tls-cert-file={pki / 'kwok-serving.crt'}",
                f"--tls-private-key-file={pki / 'kwok-serving.key'}",
                f"--cidr={POD_CIDR}",
                "--node-lease-duration-seconds=40",
            ],
        )

        # metrics-server (reached by the aggregator through an ExternalName Service);
        # its RBAC must exist before it starts, or it exits at once.
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
            input=json.dumps(metrics_server_objects(p_ms, (pki / "ca.crt").read_bytes())),
        )
        ms_kc = conf / "metrics-server.kubeconfig"
        self.start(
            "metrics-server",
            [
                str(self.bins["metrics-server"]),
                f"--kubeconfig={ms_kc}",
                f"--authentication-kubeconfig={ms_kc}",
                f"--authorization-kubeconfig={ms_kc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p_ms}",
                f"--cert-dir={self.run_dir / 'metrics-server-certs'}",
                f"--tls-cert-file={pki / 'metrics-server-serving.crt'}",
                f"--tls-private-key-file={pki / 'metrics-server-serving.key'}",
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                "--kubelet-use-node-status-port",
                f"--kubelet-certificate-authority={pki / 'ca.crt'}",
                # 10 s is metrics-server's least resolution; its kubelet timeout must stay under 90 % of it.
                f"--metric-resolution={os.environ.get('SANDBOX_METRIC_RESOLUTION', '10s')}",
                "--kubelet-request-timeout=5s",
            ],
        )

        # Gateway API CRDs
        t = time.monotonic()
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(self.bins["gateway-api"]))
        log(f"Gateway API CRDs applied in {time.monotonic() - t:.1f}s")
        # Prometheus Operator CRDs: PrometheusRule and AlertmanagerConfig (Kubemate's alert rules and notifications)
        t = time.monotonic()
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(self.bins["prometheus-operator-crds"]))
        log(f"Prometheus Operator CRDs applied in {time.monotonic() - t:.1f}s")

        # nodes
        t = time.monotonic()
        self.create_nodes(server, make_nodes(nodes))
        log(f"{nodes} nodes created in {time.monotonic() - t:.1f}s")
        # Traefik needs the Gateway API CRDs served; it starts while the nodes become Ready.
        self.wait_for_crds(timeout)
        self.start_traefik(server, p_web, p_websecure, p_traefik, timeout)
        self.wait_for(
            f"{nodes} nodes Ready",
            lambda: self.nodes_ready(server, nodes),
            timeout,
            "kwok",
        )
        log(f"{nodes} nodes Ready in {time.monotonic() - t:.1f}s")
        self.kubectl(
            "wait", "--for=condition=Available", "apiservice/v1beta1.metrics.k8s.io", f"--timeout={int(timeout)}s"
        )
        self.wait_for_gateway(timeout)
        # the default ServiceAccount appears shortly after the controller manager starts
        self.wait_for(
            "serviceaccount default/default",
            lambda: (self.kubectl("get", "sa", "default", "-n", "default", check=False) != "", ""),
            timeout,
        )
        if demo:
            self.apply_demo(timeout)

    def start_traefik(self, server: str, p_web: int, p_websecure: int, p_traefik: int, timeout: float) -> None:
        """Traefik out of cluster with the kubernetesGateway provider, as the ServiceAccount gateway-system/traefik
        (Traefik's documented Gateway API RBAC, a TokenRequest token); then the sandbox's GatewayClass and Gateway
        (demo/10-gateway.yaml, its listener ports rendered to the entrypoints' ports)."""
        t = time.monotonic()
        pki, conf = self.pki, self.conf
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
            input=json.dumps(
                traefik_objects((pki / "gateway-tls.crt").read_bytes(), (pki / "gateway-tls.key").read_bytes())
            ),
        )
        token = self.service_account_token(server, GATEWAY_NAMESPACE, "traefik")
        token_file = conf / "traefik.token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        static = conf / "traefik.yaml"  # JSON is YAML
        static.write_text(
            json.dumps(
                traefik_static_config(server, pki / "ca.crt", token_file, p_web, p_websecure, p_traefik), indent=2
            )
            + "\n"
        )
        # The provider prefers in-cluster settings and $KUBECONFIG over its own endpoint/token: hide both.
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
        }
        self.start("traefik", [str(self.bins["traefik"]), f"--configFile={static}"], env=env)
        ping = f"http://127.0.0.1:{p_traefik}/ping"
        self.wait_for("traefik /ping", lambda: (lambda r: (r[0] == 200, r[1]))(self.get(ping)), 30, "traefik")
        self.kubectl("apply", "-f", "-", input=self.render(HERE / "demo" / "10-gateway.yaml"))
        log(f"traefik is ready in {time.monotonic() - t:.1f}s")

    def service_account_token(self, server: str, namespace: str, name: str) -> str:
        """A TokenRequest token for the ServiceAccount, valid a year (Traefik reads it once, at start)."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 365 * 86400},
        }
        req = urllib.request.Request(  # noqa: S310 - own loopback URL
            f"{server}/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, context=self.ssl_context(), timeout=30) as r:  # noqa: S310 - own loopback URL
            return json.loads(r.read())["status"]["token"]

    def wait_for_gateway(self, timeout: float) -> None:
        """The sandbox's Gateway programmed by Traefik (every listener accepted, an address in its status)."""
        t = time.monotonic()
        self.kubectl(
            "wait",
            "--for=condition=Programmed",
            "gateway/public",
            "-n",
            GATEWAY_NAMESPACE,
            f"--timeout={int(timeout)}s",
        )
        log(f"gateway {GATEWAY_NAMESPACE}/public programmed by traefik (waited {time.monotonic() - t:.1f}s)")

    def render(self, path: Path) -> str:
        """A demo file with its ${KUBEMATE_SANDBOX_...} placeholders replaced by this sandbox's values."""
        values = self.values or self.load_env()

        def value(match: re.Match) -> str:
            if match.group(1) not in values:
                raise RuntimeError(f"{path.name}: {match.group(1)} is not in {self.env_file}")
            return values[match.group(1)]

        return PLACEHOLDER.sub(value, path.read_text())

    def create_nodes(self, server: str, items: list[dict]) -> None:
        """POST the Node objects with a few parallel connections (500 nodes in a few seconds)."""
        from concurrent.futures import ThreadPoolExecutor

        ctx = self.ssl_context()

        def post(node: dict) -> None:
            req = urllib.request.Request(  # noqa: S310 - own loopback URL
                server + "/api/v1/nodes",
                data=json.dumps(node).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(req, context=ctx, timeout=60) as r:  # noqa: S310 - own loopback URL
                r.read()

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(post, items))

    def nodes_ready(self, server: str, expected: int) -> tuple[bool, str]:
        code, body = self.get(server + "/api/v1/nodes", self.ssl_context(), timeout=30)
        if code != 200:
            return False, body
        ready = sum(
            1
            for n in json.loads(body)["items"]
            for c in n.get("status", {}).get("conditions") or []
            if c["type"] == "Ready" and c["status"] == "True"
        )
        return ready >= expected, f"{ready}/{expected} nodes Ready"

    def apply_demo(self, timeout: float) -> None:
        t = time.monotonic()
        demo_dir = HERE / "demo"
        for path in sorted(demo_dir.glob("*.yaml")):
            self.kubectl("apply", "-f", "-", input=recent_timestamps(self.render(path)))
        for ns, deploy in (
            ("payments", "payments-api"),
            ("payments", "payments-worker"),
            ("payments", "fraud-model"),
            ("erp", "erp-web"),
        ):
            self.kubectl("rollout", "status", f"deployment/{deploy}", "-n", ns, f"--timeout={int(timeout)}s")
        log(f"demo content applied in {time.monotonic() - t:.1f}s")

    # ---------------------------------------------------------------- down
    def stop_processes(self, how: signal.Signals = signal.SIGTERM) -> list[str]:
        stopped = []
        pids = self.pids()
        for comp in reversed(COMPONENTS):
            pid = pids.get(comp)
            if pid is None:
                continue
            if not pid_alive(pid) or not pid_belongs(pid, self.run_dir):
                continue
            os.kill(pid, how)
            stopped.append(f"{comp}({pid})")
        deadline = time.monotonic() + 15
        for comp in reversed(COMPONENTS):
            pid = pids.get(comp)
            if pid is None:
                continue
            while pid_alive(pid) and pid_belongs(pid, self.run_dir) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid) and pid_belongs(pid, self.run_dir):
                os.kill(pid, signal.SIGKILL)
        return stopped

    def down(self, kill: bool = False) -> None:
        if not self.run_dir.exists():
            log(f"{self.name}: nothing to stop ({self.run_dir} does not exist)")
            return
        stopped = self.stop_processes(signal.SIGKILL if kill else signal.SIGTERM)
        log(f"{self.name}: stopped {', '.join(stopped) or 'nothing (no live process)'}")
        shutil.rmtree(self.run_dir, ignore_errors=True)
        log(f"{self.name}: removed {self.run_dir}")


# --------------------------------------------------------------------------- cluster objects


def recent_timestamps(text: str, now: float | None = None) -> str:
    """Demo files date their events 2026-01-01T00:MM:SSZ; move them to the last ten minutes before ``now``,
    keeping their order and spacing, so the demo's warnings read "5 minutes ago", not "a year ago"."""
    base = (time.time() if now is None else now) - 600

    def shift(match: re.Match) -> str:
        offset = int(match.group(1)) * 60 + int(match.group(2))
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + offset))

    return re.sub(r"2026-01-01T00:(\d\d):(\d\d)Z", shift, text)


def make_nodes(count: int) -> list[dict]:
    """Fake nodes with realistic capacity/labels; the last one is a GPU node."""
    zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    shapes = [  # (instance type, cpu, memory Gi)
        ("m6i.4xlarge", 16, 64),
        ("m6i.8xlarge", 32, 128),
        ("r6i.4xlarge", 16, 128),
    ]
    nodes = []
    for i in range(count):
        gpu = i == count - 1
        name = f"gpu-node-{i:03d}" if gpu else f"node-{i:03d}"
        itype, cpu, mem = ("g5.8xlarge", 32, 128) if gpu else shapes[i % len(shapes)]
        zone = zones[i % len(zones)]
        capacity = {
            "cpu": str(cpu),
            "memory": f"{mem}Gi",
            "pods": "110",
            "ephemeral-storage": "200Gi",
        }
        allocatable = {
            "cpu": f"{cpu * 1000 - 200}m",
            "memory": f"{mem * 1024 - 1024}Mi",
            "pods": "110",
            "ephemeral-storage": "190Gi",
        }
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
            "node-role.kubernetes.io/worker": "",
            "node.kubernetes.io/instance-type": itype,
            "topology.kubernetes.io/region": "eu-west-1",
            "topology.kubernetes.io/zone": zone,
            "type": "kwok",
        }
        spec: dict = {}
        if gpu:
            capacity["nvidia.com/gpu"] = "4"
            allocatable["nvidia.com/gpu"] = "4"
            labels["nvidia.com/gpu.present"] = "true"
            labels["nvidia.com/gpu.product"] = "NVIDIA-A10G"
            labels["node-role.kubernetes.io/gpu"] = ""
            spec["taints"] = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
        nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": labels,
                    "annotations": {
                        "kwok.x-k8s.io/node": "fake",
                        "node.alpha.kubernetes.io/ttl": "0",
                        # metrics-server reads this path instead of /metrics/resource (kwok serves per node)
                        "metrics.k8s.io/resource-metrics-path": f"/metrics/nodes/{name}/metrics/resource",
                    },
                },
                "spec": spec,
                "status": {
                    "capacity": capacity,
                    "allocatable": allocatable,
                    "addresses": [
                        {"type": "InternalIP", "address": "127.0.0.1"},
                        {"type": "Hostname", "address": name},
                    ],
                    "nodeInfo": {
                        "architecture": "amd64",
                        "operatingSystem": "linux",
                        "osImage": "Debian GNU/Linux 12 (bookworm)",
                        "kernelVersion": "6.1.0-kwok",
                        "containerRuntimeVersion": "containerd://1.7.24",
                        "kubeletVersion": "v" + read_versions()["K8S_VERSION"],
                        "kubeProxyVersion": "",
                        "machineID": "",
                        "systemUUID": "",
                        "bootID": "",
                    },
                },
            }
        )
    return nodes


def cluster_exec_config(work_dir: Path) -> dict:
    """kwok ClusterExec: `kubectl exec` (and the console's terminal) into any pod of the sandbox runs the command
    on this machine, as the user running the sandbox, in a scratch folder of its own. A fake container for a
    fake cluster: never point it at anything but a throw-away sandbox."""
    work_dir.mkdir(parents=True, exist_ok=True)
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterExec",
        "metadata": {"name": "local-shell"},
        "spec": {
            "selector": {},
            "execs": [
                {
                    "containers": [],
                    "local": {
                        "workDir": str(work_dir),
                        "envs": [
                            {"name": "HOME", "value": str(work_dir)},
                            {"name": "PS1", "value": "sandbox$ "},
                            {"name": "TERM", "value": "xterm-256color"},
                            {"name": "PATH", "value": "/usr/local/bin:/usr/bin:/bin"},
                        ],
                    },
                }
            ],
        },
    }


def cluster_logs_config() -> dict:
    """kwok ClusterLogs: `kubectl logs` in the demo namespaces reads files under demo/logs."""
    logs = HERE / "demo" / "logs"
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterLogs",
        "metadata": {"name": "demo-logs"},
        "spec": {
            "selector": {},
            "logs": [
                {"containers": ["api"], "logsFile": str(logs / "payments-api.log"), "follow": True},
                {"containers": ["worker"], "logsFile": str(logs / "payments-worker.log"), "follow": True},
                {"containers": ["web"], "logsFile": str(logs / "erp-web.log"), "follow": True},
                {"containers": ["postgres"], "logsFile": str(logs / "erp-db.log"), "follow": True},
                {"containers": ["importer"], "logsFile": str(logs / "crashloop.log"), "follow": False},
                {"containers": ["model"], "logsFile": str(logs / "gpu-model.log"), "follow": True},
                {"containers": [], "logsFile": str(logs / "generic.log"), "follow": False},
            ],
        },
    }


def metrics_server_objects(port: int, ca_pem: bytes) -> dict:
    import base64

    user = "system:metrics-server"
    items = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:metrics-server"},
            "rules": [
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": "system:aggregated-metrics-reader",
                "labels": {
                    "rbac.authorization.k8s.io/aggregate-to-admin": "true",
                    "rbac.authorization.k8s.io/aggregate-to-edit": "true",
                    "rbac.authorization.k8s.io/aggregate-to-view": "true",
                },
            },
            "rules": [
                {"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:metrics-server"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:metrics-server",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "metrics-server:system:auth-delegator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:auth-delegator",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "metrics-server-auth-reader", "namespace": "kube-system"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "extension-apiserver-authentication-reader",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
        {
            # The process runs on the host: the aggregator resolves an ExternalName
            # Service to externalName:port (APIService port below).
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "metrics-server", "namespace": "kube-system", "labels": {"k8s-app": "metrics-server"}},
            "spec": {
                "type": "ExternalName",
                "externalName": "localhost",
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io", "labels": {"k8s-app": "metrics-server"}},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "service": {"name": "metrics-server", "namespace": "kube-system", "port": port},
                "caBundle": base64.b64encode(ca_pem).decode(),
            },
        },
    ]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def traefik_objects(tls_crt: bytes, tls_key: bytes) -> dict:
    """Traefik's identity and the Secret of the demo Gateway's HTTPS listener.

    The ClusterRole is Traefik's documented Gateway API RBAC (docs/content/reference/dynamic-configuration/
    kubernetes-gateway-rbac.yml in the v3.6 module), without ``pods get``, which only OpenTelemetry needs."""
    import base64

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    routes = ["gatewayclasses", "gateways", "httproutes", "grpcroutes", "tcproutes", "tlsroutes"]
    routes += ["referencegrants", "backendtlspolicies"]
    items = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": GATEWAY_NAMESPACE, "labels": {"team": "platform"}},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "traefik", "namespace": GATEWAY_NAMESPACE},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "traefik-gateway-controller"},
            "rules": [
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
                {
                    "apiGroups": [""],
                    "resources": ["services", "secrets", "configmaps"],
                    "verbs": ["get", "list", "watch"],
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
                {"apiGroups": ["gateway.networking.k8s.io"], "resources": routes, "verbs": ["get", "list", "watch"]},
                {
                    "apiGroups": ["gateway.networking.k8s.io"],
                    "resources": [f"{r}/status" for r in routes],
                    "verbs": ["update"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "traefik-gateway-controller"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "traefik-gateway-controller",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "traefik", "namespace": GATEWAY_NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "demo-wildcard-tls", "namespace": GATEWAY_NAMESPACE},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": b64(tls_crt), "tls.key": b64(tls_key)},
        },
    ]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def traefik_static_config(
    server: str, ca_file: Path, token_file: Path, p_web: int, p_websecure: int, p_traefik: int
) -> dict:
    """Traefik's static configuration: entrypoints on loopback (a Gateway listener binds to the entrypoint whose
    port equals the listener's port), ping and the API on their own port, the kubernetesGateway provider out of
    cluster (endpoint, token, CA) writing 127.0.0.1 as the Gateways' address."""
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {
            "web": {"address": f"127.0.0.1:{p_web}"},
            "websecure": {"address": f"127.0.0.1:{p_websecure}"},
            "traefik": {"address": f"127.0.0.1:{p_traefik}"},
        },
        "ping": {"entryPoint": "traefik"},
        "api": {"insecure": True, "dashboard": False},
        "log": {"level": "INFO", "noColor": True},
        "providers": {
            "kubernetesGateway": {
                "endpoint": server,
                "token": str(token_file),
                "certAuthFilePath": str(ca_file),
                "statusAddress": {"ip": "127.0.0.1"},
            }
        },
    }


def read_versions() -> dict[str, str]:
    values = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            values[k] = v
    return values


# --------------------------------------------------------------------------- status


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def collect_status(sb: Sandbox) -> dict:
    env = sb.load_env()
    pids = sb.pids()
    comps = {}
    for comp in COMPONENTS:
        pid = pids.get(comp)
        alive = bool(pid) and pid_alive(pid) and pid_belongs(pid, sb.run_dir)
        comps[comp] = {"pid": pid, "alive": alive, "rss_kib": rss_kib(pid) if alive else 0}
    result = {
        "name": sb.name,
        "run_dir": str(sb.run_dir),
        "exists": sb.run_dir.exists(),
        "server": env.get("KUBEMATE_SANDBOX_SERVER"),
        "kubeconfig": str(sb.kubeconfig) if sb.kubeconfig.exists() else None,
        "components": comps,
        "rss_total_kib": sum(c["rss_kib"] for c in comps.values()),
        "ready": None,
        "nodes": None,
        "nodes_ready": None,
    }
    if result["server"] and comps["kube-apiserver"]["alive"]:
        try:
            ctx = sb.ssl_context()
            code, _ = sb.get(result["server"] + "/readyz", ctx)
            result["ready"] = code == 200
            code, body = sb.get(result["server"] + "/api/v1/nodes", ctx, timeout=20)
            if code == 200:
                items = json.loads(body)["items"]
                result["nodes"] = len(items)
                result["nodes_ready"] = sum(
                    1
                    for n in items
                    for c in n.get("status", {}).get("conditions", [])
                    if c["type"] == "Ready" and c["status"] == "True"
                )
        except Exception as e:  # noqa: BLE001
            result["error"] = repr(e)
    return result


def print_status(sb: Sandbox, as_json: bool = False) -> int:
    st = collect_status(sb)
    if as_json:
        print(json.dumps(st, indent=2))
    else:
        print(f"sandbox {st['name']}: run folder {st['run_dir']}" + ("" if st["exists"] else " (absent)"))
        for comp, c in st["components"].items():
            state = "alive" if c["alive"] else "dead"
            pid = c["pid"] if c["pid"] else "-"
            rss = f"{c['rss_kib'] / 1024:.0f} MiB" if c["alive"] else ""
            print(f"  {comp:<24} {state:<6} pid {pid!s:<8} {rss}")
        print(f"  apiserver    {st['server'] or '-'} (ready: {st['ready']})")
        print(f"  kubeconfig   {st['kubeconfig'] or '-'}")
        print(f"  nodes        {st['nodes']} ({st['nodes_ready']} Ready)")
        print(f"  total RSS    {st['rss_total_kib'] / 1024:.0f} MiB")
    all_alive = all(c["alive"] for c in st["components"].values())
    return 0 if (all_alive and st["ready"]) else 1


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sandbox", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="build (if needed) and start a sandbox")
    p_up.add_argument("--name", default="demo")
    p_up.add_argument("--nodes", type=int, default=3)
    p_up.add_argument("--demo", action="store_true", help="apply deploy/sandbox/demo content")
    p_up.add_argument("--timeout", type=float, default=180, help="seconds to wait for each readiness step")
    p_down = sub.add_parser("down", help="stop a sandbox and remove its run folder")
    p_down.add_argument("--name", default="demo")
    p_down.add_argument(
        "--kill",
        action="store_true",
        help="kill at once instead of waiting up to 15 s for a graceful stop (a throw-away sandbox whose folder goes)",
    )
    p_status = sub.add_parser("status", help="print component state, apiserver URL, node count")
    p_status.add_argument("--name", default="demo")
    p_status.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    sb = Sandbox(args.name)
    if args.cmd == "up":
        if args.nodes < 1:
            parser.error("--nodes must be at least 1")
        sb.up(args.nodes, args.demo, args.timeout)
        return 0
    if args.cmd == "down":
        sb.down(kill=args.kill)
        return 0
    return print_status(sb, args.json)


if __name__ == "__main__":
    sys.exit(main())
