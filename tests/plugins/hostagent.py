"""pytest plugin: the real host agent (agent/, built by agent/build.sh) reading a fake host the test writes.

The function fixture ``host_agent`` starts the agent binary on a free loopback port with a fresh token file and a
configuration whose ``--root`` is a folder laid out like a host (``FakeHost``: /proc/stat, /proc/meminfo,
/proc/loadavg, /proc/net/dev, /proc/diskstats, /proc/sys/..., /proc/<pid>/stat, the mount table /proc/1/mounts,
/etc/crontab, /etc/cron.d/, certificate files), healthy to begin with. A test changes one fact and asks again: the
agent collects on every request (``cache_seconds`` 0), so each host check can be made to pass and to fail:

    def test_something(host_agent):
        host_agent.host.memory(total_mib=1024, available_mib=10)
        report = host_agent.report()

Two things a folder of files cannot fake are made real instead:

- CPU times are counters the agent reads twice, 200 ms apart: a thread advances /proc/stat by fixed ticks every
  10 ms, so the usage, iowait and steal shares the agent measures are exactly those the test sets (``cpu``).
- Disk space comes from statfs(2): the agent runs in a user and mount namespace of its own (``unshare``), where
  small tmpfs filesystems with known contents are mounted under ``--mount-root``: ``/`` and ``/data`` nearly empty,
  ``/full`` 97.7 % full, ``/inodes`` with 61 of its 64 inodes used. The mount table the test writes says which of
  them the host has (``mounts``).

Clock offsets come from ``SntpServer``, a fake: an NTP server (RFC 4330 SNTP over UDP on loopback) answering with a
time the test chooses. A real NTP server cannot be made to show a wrong time here without changing the machine's
own clock.

``stop()`` then ``start()`` restart the agent on the same port with a new self-signed certificate, as a real
restart does; ``fingerprint`` is the one it logged. ``real_host_agent`` runs the same binary against this machine's
own / for a smoke test. ``tls_impostor`` is a TLS server with a certificate of its own that records what it is sent:
for what a real agent does not answer (too large, too slow, not JSON) and to show that a peer whose certificate is
not the pinned one never receives the token. If the binary cannot be built or the agent does not start, the
fixtures raise: tests fail, they are never skipped.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.plugins.served import Served, free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "agent" / "build.sh"

# Run inside the agent's own user and mount namespace: mount the tmpfs filesystems statfs is to find, fill two of
# them, then become the agent. The mounts vanish with the namespace when the agent exits.
MOUNT_SCRIPT = """
set -e
m="$1"; shift
mount -t tmpfs -o size=64m tmpfs "$m"
mkdir "$m/data" "$m/full" "$m/inodes"
mount -t tmpfs -o size=1m tmpfs "$m/data"
mount -t tmpfs -o size=1m tmpfs "$m/full"
head -c 1024000 /dev/zero > "$m/full/blob"
mount -t tmpfs -o size=1m,nr_inodes=64 tmpfs "$m/inodes"
i=0
while [ $i -lt 60 ]; do : > "$m/inodes/f$i"; i=$((i+1)); done
exec "$@"
"""

CERT_GLOBS = ["/etc/kubernetes/pki/*.crt", "/etc/ssl/bank/*.pem"]
CRON_PATHS = ["/etc/crontab", "/etc/cron.d/*", "/var/spool/cron/crontabs/*"]
# A kernel parameter only the agent's configuration holds a baseline for (sysctls[].expected).
AGENT_BASELINE = {"vm.dirty_ratio": "20"}


def binary() -> Path:
    """The agent binary, built once per version by agent/build.sh (which prints its path)."""
    done = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=600)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not Path(lines[-1]).exists():
        raise RuntimeError(f"agent/build.sh failed ({done.returncode}): {done.stdout}{done.stderr}")
    return Path(lines[-1])


def baseline_values() -> dict[str, str]:
    """A value meeting Kubemate's kernel parameter baseline for each of its parameters, and the agent's own."""
    from apps.inspection.checks.hosts import BASELINE

    return {**{name: str(int(value)) for name, (_rule, value) in BASELINE.items()}, **AGENT_BASELINE}


def pem_certificate(common_name: str, not_after: datetime.datetime) -> tuple[str, str, str]:
    """(certificate PEM, key PEM, serial in the agent's lower-case hex) of a self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    serial = x509.random_serial_number()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_after - datetime.timedelta(days=400))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem, format(serial, "x")


class FakeHost:
    """A host's files under ``root``: what the agent reads with ``--root``. Starts healthy; each method sets one
    fact (files are replaced whole, so the agent never reads half a file)."""

    CPUS = 4

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._ticks = {"user": 10, "nice": 0, "system": 5, "idle": 80, "iowait": 5, "irq": 0, "softirq": 0, "steal": 0}
        self._totals = dict.fromkeys(self._ticks, 100_000)
        self._interfaces: dict[str, dict[str, int]] = {}
        self._zombie_pids: list[int] = []
        self._stop = threading.Event()
        self._defaults()
        self._ticker = threading.Thread(target=self._tick, daemon=True, name="fake-proc-stat")
        self._ticker.start()

    # files -------------------------------------------------------------------------------------------------
    def path(self, host_path: str) -> Path:
        return self.root / host_path.lstrip("/")

    def write(self, host_path: str, text: str) -> None:
        target = self.path(host_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.parent / f".{target.name}.{threading.get_ident()}.tmp"
        temporary.write_text(text)
        os.replace(temporary, target)

    def remove(self, host_path: str) -> None:
        self.path(host_path).unlink(missing_ok=True)

    def close(self) -> None:
        self._stop.set()
        self._ticker.join(5)

    # facts ---------------------------------------------------------------------------------------------------
    def cpu(self, *, user: int = 10, system: int = 5, idle: int = 80, iowait: int = 5, steal: int = 0) -> None:
        """CPU ticks per step, in percent of the step (they should add up to 100)."""
        with self._lock:
            self._ticks.update(user=user, system=system, idle=idle, iowait=iowait, steal=steal)

    def _stat_text(self) -> str:
        order = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
        total = " ".join(str(self._totals[k]) for k in order)
        each = " ".join(str(self._totals[k] // self.CPUS) for k in order)
        lines = [f"cpu  {total} 0 0"] + [f"cpu{n} {each} 0 0" for n in range(self.CPUS)]
        return "\n".join([*lines, "intr 1", "ctxt 2", "btime 1700000000", "processes 500", ""])

    def _tick(self) -> None:
        while not self._stop.wait(0.01):
            with self._lock:
                for key, value in self._ticks.items():
                    self._totals[key] += value
                text = self._stat_text()
            self.write("/proc/stat", text)

    def load(self, load1: float, load5: float, load15: float) -> None:
        self.write("/proc/loadavg", f"{load1:.2f} {load5:.2f} {load15:.2f} 3/456 7890\n")

    def memory(self, *, total_mib: int, available_mib: int, swap_total_mib: int = 0, swap_free_mib: int = 0) -> None:
        kib = 1024
        self.write(
            "/proc/meminfo",
            f"MemTotal:       {total_mib * kib} kB\nMemFree:        {available_mib * kib // 2} kB\n"
            f"MemAvailable:   {available_mib * kib} kB\nBuffers:        1024 kB\nCached:         2048 kB\n"
            f"SwapTotal:      {swap_total_mib * kib} kB\nSwapFree:       {swap_free_mib * kib} kB\n",
        )

    def mounts(self, *points: str) -> None:
        """The host's mount table: each of ``/``, ``/data``, ``/full``, ``/inodes`` (see the module docstring),
        plus pseudo filesystems the agent skips."""
        fstypes = {"/": "ext4", "/data": "xfs", "/full": "ext4", "/inodes": "ext4"}
        lines = ["proc /proc proc rw,nosuid 0 0", "tmpfs /run tmpfs rw,nosuid 0 0"]
        lines += [f"/dev/vd{chr(97 + n)} {p} {fstypes[p]} rw,relatime 0 0" for n, p in enumerate(points)]
        self.write("/proc/1/mounts", "\n".join(lines) + "\n")

    def interface(self, name: str, *, packets: int = 1_000_000, errors: int = 0, drops: int = 0) -> None:
        """Counters of one interface since boot: ``packets`` each way, ``errors`` and ``drops`` on receive."""
        self._interfaces[name] = {"packets": packets, "errors": errors, "drops": drops}
        lines = [
            "Inter-|   Receive                                                |  Transmit",
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls"
            " carrier compressed",
        ]
        for iface, c in sorted(self._interfaces.items()):
            lines.append(
                f"{iface:>6}: {c['packets'] * 800} {c['packets']} {c['errors']} {c['drops']} 0 0 0 0 "
                f"{c['packets'] * 600} {c['packets']} 0 0 0 0 0 0"
            )
        self.write("/proc/net/dev", "\n".join(lines) + "\n")

    def sysctl(self, name: str, value: str) -> None:
        self.write("/proc/sys/" + name.replace(".", "/"), f"{value}\n")

    def open_files(self, allocated: int, maximum: int) -> None:
        self.write("/proc/sys/fs/file-nr", f"{allocated}\t0\t{maximum}\n")

    def zombies(self, count: int, parent: int = 4242) -> None:
        """``count`` processes in state Z, children of ``parent`` (which is a running process)."""
        for pid in self._zombie_pids:
            shutil.rmtree(self.path(f"/proc/{pid}"), ignore_errors=True)
        self._zombie_pids = [5000 + n for n in range(count)]
        self.write(f"/proc/{parent}/stat", f"{parent} (batch-runner) S 1 {parent} {parent} 0 -1 4194560 0\n")
        for pid in self._zombie_pids:
            self.write(f"/proc/{pid}/stat", f"{pid} (report job) Z {parent} {parent} {parent} 0 -1 4227084 0\n")

    def certificate(self, host_path: str, *, days_left: float, name: str = "apiserver") -> str:
        """A certificate file (its key in the same file, as some tools write them) expiring in ``days_left``
        days; its serial."""
        not_after = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days_left)
        cert, key, serial = pem_certificate(name, not_after.replace(microsecond=0))
        self.write(host_path, key + cert)
        return serial

    def cron(self, host_path: str, *lines: str) -> None:
        self.write(host_path, "# written by the test\n" + "\n".join(lines) + "\n")

    def _defaults(self) -> None:
        self.write("/etc/hostname", "node-a\n")
        self.write("/proc/sys/kernel/osrelease", "6.1.0-kubemate-test\n")
        self.write("/proc/uptime", "864000.00 3000000.00\n")
        self.write("/proc/stat", self._stat_text())
        self.load(0.5, 0.4, 0.3)
        self.memory(total_mib=16384, available_mib=8192)
        self.mounts("/", "/data")
        self.write(
            "/proc/diskstats",
            "   7       0 loop0 10 0 80 1 0 0 0 0 0 1 1 0 0 0 0\n"
            " 253       0 vda 10000 0 80000 5000 20000 0 160000 9000 0 12000 14000 0 0 0 0\n",
        )
        self.interface("lo", packets=5000)
        self.interface("eth0")
        self.interface("cali1234abcd", errors=50, drops=50)  # a pod's interface: not the host's
        for name, value in baseline_values().items():
            self.sysctl(name, value)
        self.open_files(2048, 1_048_576)
        self.write("/proc/1/stat", "1 (systemd) S 0 1 1 0 -1 4194560 0\n")
        self.write("/proc/2/stat", "2 (kthreadd) S 0 0 0 0 -1 2129984 0\n")
        self.zombies(0)
        self.certificate("/etc/kubernetes/pki/apiserver.crt", days_left=300)
        self.cron(
            "/etc/crontab",
            "SHELL=/bin/sh",
            "PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin",
            "17 * * * * root cd / && run-parts --report /etc/cron.hourly",
        )
        self.cron("/etc/cron.d/backup", "30 2 * * * root /usr/local/sbin/backup.sh --target /data/backup")


class SntpServer:
    """A fake NTP server (RFC 4330 SNTP v4 over UDP on loopback): answers each request with this machine's time
    plus ``offset`` seconds, or as an unsynchronised server (leap indicator 3, stratum 0) when ``unsynchronised``."""

    NTP_EPOCH = 2_208_988_800

    def __init__(self) -> None:
        self.offset = 0.0
        self.unsynchronised = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True, name="fake-sntp").start()

    def _timestamp(self, seconds: float) -> bytes:
        whole = int(seconds)
        return struct.pack("!II", whole + self.NTP_EPOCH, int((seconds - whole) * 2**32) & 0xFFFFFFFF)

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            if len(data) < 48:
                continue
            now = time.time() + self.offset
            leap, stratum = (3, 0) if self.unsynchronised else (0, 2)
            reply = bytearray(48)
            reply[0] = leap << 6 | 4 << 3 | 4  # leap indicator, version 4, mode 4 (server)
            reply[1], reply[2], reply[3] = stratum, data[2], 0xEC
            reply[12:16] = b"KMTS"
            reply[16:24] = self._timestamp(now - 16)
            reply[24:32] = data[40:48]  # the client's transmit time, echoed as the originate time
            reply[32:40] = self._timestamp(now)
            reply[40:48] = self._timestamp(now)
            self.sock.sendto(bytes(reply), peer)

    def close(self) -> None:
        self.sock.close()


def _client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the agent's certificate is self-signed; tests pin it where it matters
    return context


@dataclass
class HostAgentServer(Served):
    name = "kubemate-agent"
    log_name = "agent"

    folder: Path
    binary: Path
    port: int
    token: str
    sntp: SntpServer
    host: FakeHost | None = None  # None: the agent reads this machine's own / (real_host_agent)
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def mount_root(self) -> Path:
        return self.folder / "mnt"

    def write_config(self) -> None:
        (self.folder / "token").write_text(self.token + "\n")
        (self.folder / "token").chmod(0o600)
        self.mount_root.mkdir(exist_ok=True)
        config = {
            "listen": f"127.0.0.1:{self.port}",
            "token_file": str(self.folder / "token"),
            "cpu_sample_ms": 200,
            "timeout_ms": 5000,
            "cache_seconds": 0,
            "sysctls": [{"name": n, **({"expected": AGENT_BASELINE[n]} if n in AGENT_BASELINE else {})}
                        for n in baseline_values()],
            "cert_globs": CERT_GLOBS,
            "cron_paths": CRON_PATHS,
            "ntp_server": self.sntp.address,
            "max_zombies_listed": 10,
        }  # fmt: skip
        (self.folder / "agent.json").write_text(json.dumps(config, indent=2))

    def command(self) -> list[str]:
        flags = ["--config", str(self.folder / "agent.json"), "--listen", f"127.0.0.1:{self.port}"]
        flags += ["--token-file", str(self.folder / "token")]
        if self.host is None:
            return [str(self.binary), *flags, "--root", "/"]
        flags += ["--root", str(self.host.root), "--mount-root", str(self.mount_root)]
        return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", MOUNT_SCRIPT, "agent-mounts",
                str(self.mount_root), str(self.binary), *flags]  # fmt: skip

    def ready_url(self) -> str:
        return f"{self.url}/healthz"

    def start(self) -> None:
        # Served.start, asking /healthz over TLS without verifying the agent's self-signed certificate (urllib's
        # default context would refuse it forever).
        if self.process is not None and self.process.poll() is None:
            return
        self._log = (self.folder / f"{self.log_name}.log").open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBEMATE_NODE_")}
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(self.ready_url(), timeout=2, context=_client_context()) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        self.process.kill()
        raise RuntimeError(f"{self.name} did not become ready in 60 s: {self.log()}")

    @property
    def fingerprint(self) -> str:
        """The certificate fingerprint the running agent logged (``sha256:AA:BB:…``)."""
        found = ""
        for line in (self.folder / f"{self.log_name}.log").read_text(errors="replace").splitlines():
            if line.startswith("{") and "tls_fingerprint" in line:
                found = json.loads(line)["tls_fingerprint"]
        return found

    def report(self, token: str | None = None) -> dict:
        """GET /report straight from the agent (what Kubemate's door should read)."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        request = urllib.request.Request(f"{self.url}/report", headers=headers)  # noqa: S310 (https URL built here)
        with urllib.request.urlopen(request, timeout=30, context=_client_context()) as response:  # noqa: S310
            return json.loads(response.read())


def _start_agent(folder: Path, path: Path, sntp: SntpServer, host: FakeHost | None) -> HostAgentServer:
    server = HostAgentServer(
        folder=folder, binary=path, port=free_port(), token=secrets.token_urlsafe(32), sntp=sntp, host=host
    )
    server.write_config()
    server.start()
    return server


@pytest.fixture(scope="session")
def agent_binary() -> Path:
    return binary()


@pytest.fixture(scope="session")
def sntp_server():
    server = SntpServer()
    yield server
    server.close()


@pytest.fixture
def host_agent(agent_binary, sntp_server):
    """The real agent reading a healthy FakeHost (``host_agent.host``), on a free loopback port."""
    sntp_server.offset, sntp_server.unsynchronised = 0.0, False
    folder = Path(tempfile.mkdtemp(prefix="kubemate-hostagent-"))
    host = FakeHost(folder / "root")
    try:
        server = _start_agent(folder, agent_binary, sntp_server, host)
    except BaseException:
        host.close()
        raise
    yield server
    server.stop()
    host.close()
    sntp_server.offset, sntp_server.unsynchronised = 0.0, False
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def real_host_agent(agent_binary, sntp_server):
    """The real agent reading this machine's own / (a smoke test of every collector on a real host)."""
    folder = Path(tempfile.mkdtemp(prefix="kubemate-hostagent-real-"))
    server = _start_agent(folder, agent_binary, sntp_server, None)
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


class TlsImpostor:
    """Not a host agent: a TLS server with a self-signed certificate of its own (``fingerprint``) that answers every
    GET with ``status`` and ``body`` (bytes, or a function yielding chunks sent without a length) after ``delay``
    seconds. ``accepted`` counts TLS connections, ``seen`` keeps each request's path and Authorization header."""

    def __init__(self, folder: Path) -> None:
        self.status, self.body, self.delay = 200, b"{}", 0.0
        self.seen: list[tuple[str, str]] = []
        self.accepted = 0
        cert, key, _serial = pem_certificate("impostor", datetime.datetime.now(datetime.UTC) + datetime.timedelta(30))
        (folder / "cert.pem").write_text(cert)
        (folder / "key.pem").write_text(key)
        der = x509.load_pem_x509_certificate(cert.encode()).public_bytes(serialization.Encoding.DER)
        digest = hashlib.sha256(der).hexdigest().upper()
        self.fingerprint = ":".join(digest[i : i + 2] for i in range(0, 64, 2))
        impostor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                impostor.seen.append((self.path, self.headers.get("Authorization", "")))
                time.sleep(impostor.delay)
                self.send_response(impostor.status)
                self.send_header("Content-Type", "application/json")
                body = impostor.body
                if isinstance(body, bytes):
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.end_headers()  # no length: read until the server closes
                try:
                    for chunk in body():
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, address = super().get_request()
                impostor.accepted += 1
                return sock, address

            def handle_error(self, request, client_address):
                pass  # a client hanging up after the handshake is what some tests do on purpose

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="tls-impostor").start()


@pytest.fixture
def tls_impostor():
    folder = Path(tempfile.mkdtemp(prefix="kubemate-impostor-"))
    impostor = TlsImpostor(folder)
    yield impostor
    impostor.server.shutdown()
    impostor.server.server_close()
    shutil.rmtree(folder, ignore_errors=True)
