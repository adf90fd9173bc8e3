#!/usr/bin/env python3
"""Kubemate's backups beside the bare tools: an etcd snapshot, Kubemate's own database (backup and restore check) and
a Velero backup, each side in a fresh process, alternating, medians of ``--runs``.

    bench/backups.py                              # sandbox "bench-bk" (1 node), 5000 ConfigMaps, 50000 audit events
    bench/backups.py --runs 5 --configmaps 20000  # more runs, a bigger etcd
    bench/backups.py --sandbox NAME               # a running sandbox instead (see below); never stopped
    bench/backups.py --parts etcd                 # only some parts (etcd, database, velero)
    bench/backups.py --keep                       # leave the sandbox "bench-bk" running at the end

Setup (not timed): the sandbox ``bench-bk`` (``deploy/sandbox/up --name bench-bk --nodes 1``, stopped at the end
unless ``--keep``); a namespace ``bench-bk-<random>`` holding ``--configmaps`` ConfigMaps of ~2 KiB of
configuration-file text; versitygw (tests/plugins/s3.py's ``start_server``: a free loopback port, fresh keys, objects
as files in a temporary folder removed at the end) with one bucket for Kubemate and one for the peer; a database of
its own (``kubemate_bench_backups`` on the project PostgreSQL of .run/services.env, created fresh, migrated, dropped
at the end) and Redis db 11 (``--redis-db``, flushed before and after). In the database: the sandbox registered as an
operator registers it, a platform administrator, the storage target (saved through ``services.save_target``: its
probe object written, read and deleted), the sandbox's etcd access (``services.save_etcd_access``), an etcd plan and a
database plan (keep 7, on demand).

1. **etcd**: the sandbox's etcd (the ConfigMaps and whatever else the cluster holds).
   - kubemate: ``services.take_backup_now`` of the etcd plan, as the worker's job body runs it: ``etcdctl snapshot
     save``, ``etcdutl snapshot status``, gzip + AES-256-GCM sealing (``seal.seal``), SHA-256 of the sealed file,
     upload to versitygw (one PUT up to 16 MiB, multipart above), HEAD read-back, the Backup and Job rows, two audit
     events, the plan's retention.
   - peer (the floor of a shell script): ``etcdctl snapshot save``, ``etcdutl snapshot status -w json``, ``gzip -6``,
     boto3 ``upload_file`` with its default transfer settings; no sealing, no checksum, no read-back, no records.
2. **database**: the bench database after the etcd part, padded with ``--audit-events`` events written through
   ``apps.core.audit.record`` (a real chain).
   - backup, kubemate: ``take_backup_now`` of the database plan (``pg_dump --version`` against the server's version,
     an exported snapshot and the facts read in it, ``pg_dump -Fc`` of that snapshot, ``pg_restore --list``, sealing
     without compressing again, SHA-256, upload, read-back, rows, audit, retention); peer: ``pg_dump -Fc`` and boto3
     ``upload_file``.
   - restore check, kubemate: ``manage.py restore_database --target T --key K --as ADMIN --dry-run --no-input`` (the
     password on standard input, the command's own way for a runbook) run through ``call_command`` in a fresh
     process: download with the SHA-256 checked, opening the seal, ``pg_restore --list``, a scratch database,
     ``pg_restore --single-transaction`` into it, the facts and the whole audit chain verified there, the scratch
     database dropped; peer: boto3 ``download_file`` of its own dump, ``CREATE DATABASE``, ``pg_restore
     --no-owner --no-privileges --exit-on-error --single-transaction`` into it, ``DROP DATABASE``.
3. **velero** (when Velero starts in the sandbox: tests/plugins/velero.py's ``start_velero``, the real server run out
   of cluster, its backup storage location on the same versitygw; otherwise skipped with the reason printed):
   kubemate ``velero.services.run_backup`` of the bench namespace as the administrator and the Job body that follows
   it (``tasks.follow_velero``, polling every 2 s) to its end; peer ``velero backup create NAME --include-namespaces
   NS --wait`` with the same binary.

Steps are timed inside each side's process (Kubemate's functions wrapped by name, nothing else changed); "other" is
what is left of the total (rows, audit events, the Job, the retention, clients). Memory: ``VmHWM`` of the side's own
process from /proc/self/status at its end ("peak", Kubemate's including Django) and ``ru_maxrss`` of its largest
child ("tools": etcdctl, etcdutl, gzip, pg_dump, pg_restore, velero). Every run is written to
``.run/bench/backups-<stamp>.json``.

``--sandbox NAME`` registers that cluster in the bench database and, for the Velero part, projects its RBAC from
there, which removes what other databases projected into it: use a sandbox nobody else uses meanwhile.
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
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from datetime import datetime  # noqa: E402
from urllib.parse import unquote, urlsplit, urlunsplit  # noqa: E402

SANDBOX = "bench-bk"
BENCH_DB = "kubemate_bench_backups"
REDIS_DB = 11
ADMIN = "bench-admin"
PASSWORD = "bench-Pa55word-not-secret"  # noqa: S105 - a throw-away user in a throw-away database
TARGET = "bench-versitygw"
MIB = 1024 * 1024
PARTS = ("etcd", "database", "velero")

ETCD_STEPS = ["snapshot", "status", "compress", "hash", "upload", "progress", "read_back", "other", "total"]
DUMP_STEPS = ["dump", "list", "compress", "hash", "upload", "progress", "read_back", "other", "total"]
RESTORE_STEPS = ["prove", "fetch", "open", "list", "scratch", "restore", "check", "other", "total"]
VELERO_STEPS = ["create", "wait", "other", "total"]


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip().removeprefix("export ").strip()] = value.strip().strip('"')
    return values


def db_url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


def pg_env(url: str) -> dict[str, str]:
    """libpq's variables for a postgres:// URL (the password in PGPASSWORD, never on a command line)."""
    parts = urlsplit(url)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": tempfile.gettempdir()}
    for key, value in (
        ("PGHOST", parts.hostname),
        ("PGPORT", parts.port),
        ("PGUSER", unquote(parts.username or "")),
        ("PGPASSWORD", unquote(parts.password or "")),
        ("PGDATABASE", parts.path.lstrip("/")),
    ):
        if value:
            env[key] = str(value)
    return env


def pg_bin() -> Path:
    """The newest /usr/lib/postgresql/*/bin, as apps/backups/tools.py finds it (the same pg_dump on both sides)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0],
    )
    if not found:
        raise SystemExit("no /usr/lib/postgresql/*/bin: install the PostgreSQL client tools")
    return found[-1]


def tool_paths() -> dict[str, str]:
    done = subprocess.run(
        [str(ROOT / "deploy/sandbox/build"), "--print-paths"], capture_output=True, text=True, check=True
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


class ToolWatch:
    """The peak resident set of each tool a side's process runs (etcdctl, etcdutl, gzip, pg_dump, pg_restore,
    velero): every child ``subprocess.Popen`` starts is watched, its ``VmHWM`` read from /proc every 5 ms while it
    runs (after its exec: before it, the child is a copy of this process). ``ru_maxrss`` of the children cannot
    tell: Linux counts the address space a child had before its exec, here the whole Python process."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}
        self.live: set[int] = set()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.own = self._name(os.getpid()) or "python"
        real = subprocess.Popen.__init__
        watch = self

        def init(popen, *args, **kwargs):
            real(popen, *args, **kwargs)
            with watch.lock:
                watch.live.add(popen.pid)
            watch.wake.set()

        subprocess.Popen.__init__ = init
        threading.Thread(target=self._loop, daemon=True, name="tool-watch").start()

    @staticmethod
    def _name(pid: int) -> str:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("Name:"):
                    return line.split(":", 1)[1].strip()
        return ""

    def _loop(self) -> None:
        while True:
            with self.lock:
                pids = list(self.live)
            if not pids:
                self.wake.wait()
                self.wake.clear()
                continue
            for pid in pids:
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    status = ""
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                name, hwm = fields.get("Name", "").strip(), fields.get("VmHWM")
                if hwm is None or fields.get("State", "").strip().startswith("Z"):
                    with self.lock:
                        self.live.discard(pid)
                    continue
                if name != self.own:
                    self.peaks[name] = max(self.peaks.get(name, 0.0), int(hwm.split()[0]) / 1024)
            time.sleep(0.005)


WATCH: ToolWatch | None = None


def memory(start_mib: float) -> dict:
    """This process's peak resident set (VmHWM) and its largest tool's, in MiB."""
    status = dict(
        line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("Vm")
    )
    peaks = dict(WATCH.peaks) if WATCH is not None else {}
    return {
        "start_mib": start_mib,
        "peak_mib": int(status["VmHWM"].split()[0]) / 1024,
        "tools_mib": max(peaks.values(), default=0.0),
        "tools": peaks,
    }


def begin() -> float:
    """Just before a side's clock starts: the tools watched from now on (not those Django's imports ran, such as
    WeasyPrint's ldconfig and gcc); this process's resident set now, in MiB."""
    if WATCH is not None:
        WATCH.peaks.clear()
    return rss_mib()


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def import_boto3() -> None:
    """boto3 imported before a peer's clock starts, as Kubemate's side has it imported with Django."""
    import boto3  # noqa: F401
    from botocore.config import Config  # noqa: F401


def peer_client(state: dict):
    """A boto3 S3 client as a script would make one: path-style, the keys, boto3's defaults otherwise."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=state["s3_endpoint"],
        aws_access_key_id=state["s3_access_key"],
        aws_secret_access_key=state["s3_secret_key"],
        region_name=state["s3_region"],
        config=Config(s3={"addressing_style": "path"}),
    )


class Clock:
    """Seconds per step inside a side's process: ``wrap(module, name, step)`` times every call of a function by
    name (the callers look it up on the module at call time, so they call the wrapper)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.facts: dict = {}
        self.lock = threading.Lock()  # the upload's callbacks come from s3transfer's threads

    def add(self, step: str, seconds: float) -> None:
        with self.lock:
            self.seconds[step] = self.seconds.get(step, 0.0) + seconds

    def count(self, fact: str, thread: bool = False) -> None:
        with self.lock:
            self.facts[fact] = self.facts.get(fact, 0) + 1
            if thread:
                self.facts.setdefault(f"{fact}_threads", set()).add(threading.get_ident())

    def time_progress(self, progress) -> None:
        """Time the Job's progress updates inside ``s3.upload`` (its callback, called as bytes go out)."""
        real = progress.upload_progress
        clock = self

        def upload_progress(*args, **kwargs):
            report = real(*args, **kwargs)

            def timed(sent: int) -> None:
                with clock.step("progress"):
                    report(sent)
                clock.count("progress_calls", thread=True)

            return timed

        progress.upload_progress = upload_progress

    def count_connections(self) -> None:
        """Count the database connections Django opens from now on, and in how many threads."""
        from django.db.backends.signals import connection_created

        def opened(sender, connection, **kwargs):
            self.count("db_connections", thread=True)

        connection_created.connect(opened, weak=False)

    def plain_facts(self) -> dict:
        return {k: len(v) if isinstance(v, set) else v for k, v in self.facts.items()}

    def wrap(self, module, name: str, step: str, after=None) -> None:
        real = getattr(module, name)

        def timed(*args, **kwargs):
            began = time.monotonic()
            try:
                answer = real(*args, **kwargs)
            finally:
                self.add(step, time.monotonic() - began)
            if after is not None:
                after(args, kwargs, answer)
            return answer

        setattr(module, name, timed)

    @contextlib.contextmanager
    def step(self, step: str):
        began = time.monotonic()
        try:
            yield
        finally:
            self.add(step, time.monotonic() - began)

    def time_head(self, s3) -> None:
        """Time the read-back (HEAD) inside ``s3.upload``: the clients ``s3._client`` yields, with head_object timed."""
        real = s3._client
        clock = self

        class Client:
            def __init__(self, client) -> None:
                self._client = client

            def __getattr__(self, name):
                return getattr(self._client, name)

            def head_object(self, **kwargs):
                with clock.step("read_back"):
                    return self._client.head_object(**kwargs)

        @contextlib.contextmanager
        def client(access, **kwargs):
            with real(access, **kwargs) as found:
                yield Client(found)

        s3._client = client

    def total(self, total: float, steps: list[str], inside: dict[str, list[str]] | None = None) -> dict:
        """The steps' seconds with the nested ones taken out of their parent (``inside``: parent -> its parts), the
        rest as "other"."""
        seconds = dict(self.seconds)
        for parent, parts in (inside or {}).items():
            seconds[parent] = seconds.get(parent, 0.0) - sum(seconds.get(p, 0.0) for p in parts)
        named = [s for s in steps if s not in ("other", "total")]
        seconds = {s: seconds.get(s, 0.0) for s in named}
        seconds["other"] = total - sum(seconds.values())
        seconds["total"] = total
        return seconds


# Child processes: setup ---------------------------------------------------------------------------------------------


def django_setup():
    import django

    django.setup()


def setup(state: dict) -> dict:
    """The cluster, the administrator, the storage target, the etcd access and the two plans."""
    django_setup()
    from django.contrib.auth import get_user_model

    from apps.backups import services
    from apps.backups.models import Kind, Plan, Target
    from apps.clusters.registry.services import register_from_kubeconfig

    cluster = register_from_kubeconfig(
        actor=None, name=SANDBOX, kubeconfig_text=Path(state["kubeconfig"]).read_text(), environment="bench"
    )
    admin = get_user_model().objects.create_superuser(ADMIN, f"{ADMIN}@example.test", PASSWORD)
    target = services.save_target(
        actor=admin,
        target=Target(
            name=TARGET,
            endpoint=state["s3_endpoint"],
            bucket=state["kubemate_bucket"],
            region=state["s3_region"],
            path_style=True,
            prefix="kubemate/bench",
        ),
        access_key=state["s3_access_key"],
        secret_key=state["s3_secret_key"],
    )
    services.save_etcd_access(actor=admin, cluster=cluster, endpoints=[state["etcd_url"]])
    common = {"target": target, "keep_count": 7, "keep_days": 7, "rpo_hours": 24}
    services.save_plan(actor=admin, plan=Plan(kind=Kind.ETCD, name="etcd-bench", cluster=cluster, **common))
    services.save_plan(actor=admin, plan=Plan(kind=Kind.DATABASE, name="db-bench", **common))
    return {"cluster": cluster.pk}


def pad_audit(state: dict, count: int) -> dict:
    """``count`` audit events through ``audit.record`` (the chain is real), 1000 to a transaction."""
    django_setup()
    from django.db import transaction

    from apps.core import audit
    from apps.core.models import AuditEvent

    began = time.monotonic()
    written = 0
    while written < count:
        with transaction.atomic():
            for _ in range(min(1000, count - written)):
                written += 1
                audit.record(
                    actor=None,
                    actor_name=f"bench-user-{written % 40}",
                    action="resources.update",
                    cluster=SANDBOX,
                    namespace=state["namespace"],
                    kind="ConfigMap",
                    name=f"settings-{written % 5000:05d}",
                    detail={"fields": ["data"], "bench": written, "note": "padding written by bench/backups.py"},
                    reason="",
                )
    return {"written": written, "seconds": time.monotonic() - began, "events": AuditEvent.objects.count()}


def setup_velero(state: dict) -> dict:
    """Velero's namespace of the cluster, and the RBAC projection (what the reconcile queued by that change does)."""
    django_setup()
    from django.contrib.auth import get_user_model

    from apps.accounts.reconcile import reconcile_rbac
    from apps.backups.services import set_velero_namespace
    from apps.clusters.models import Cluster

    admin = get_user_model().objects.get(username=ADMIN)
    cluster = Cluster.objects.get(name=SANDBOX)
    set_velero_namespace(actor=admin, cluster=cluster, namespace=state["velero_namespace"])
    cluster.refresh_from_db()
    for attempt in range(5):
        # On a fresh cluster the first look at the just-created CRDs can find "conditions": null (see bench/cicd.py).
        try:
            reconcile_rbac(cluster)
            break
        except TypeError:
            if attempt == 4:
                raise
            time.sleep(1)
    return {"velero_namespace": cluster.velero_namespace}


# Child processes: the sides -----------------------------------------------------------------------------------------


def etcd_kubemate(state: dict, number: int) -> dict:
    django_setup()
    from django.contrib.auth import get_user_model

    from apps.backups import etcd, progress, runner, s3, seal, services
    from apps.backups.models import Backup, Kind, Plan

    admin = get_user_model().objects.get(username=ADMIN)
    plan = Plan.objects.select_related("cluster", "target").get(kind=Kind.ETCD, name="etcd-bench")
    clock = Clock()
    clock.wrap(
        etcd, "save", "snapshot", after=lambda a, kw, _: clock.facts.setdefault("snapshot_bytes", a[1].stat().st_size)
    )
    clock.wrap(etcd, "status", "status")
    clock.wrap(seal, "seal", "compress")
    clock.wrap(s3, "file_sha256", "hash")
    clock.wrap(s3, "upload", "upload")
    clock.time_head(s3)
    clock.time_progress(progress)
    clock.wrap(runner, "apply_retention", "retention")
    clock.count_connections()
    start = begin()
    began = time.monotonic()
    backup = services.take_backup_now(actor=admin, plan=plan)
    total = time.monotonic() - began
    used = memory(start)
    if backup.status != Backup.Status.SUCCEEDED:
        raise RuntimeError(f"etcd backup {backup.name} ended {backup.status}: {backup.message}")
    seconds = clock.total(total, ETCD_STEPS, inside={"upload": ["hash", "progress", "read_back"]})
    return {
        "side": "kubemate",
        "run": number,
        "seconds": seconds,
        "retention": clock.seconds.get("retention", 0.0),
        "facts": clock.plain_facts(),
        "snapshot_mb": clock.facts["snapshot_bytes"] / MIB,
        "object_mb": backup.size_bytes / MIB,
        "keys": backup.total_keys,
        "revision": backup.revision,
        "key": backup.key,
        **used,
    }


def etcd_peer(state: dict, number: int) -> dict:
    """The floor: the tools one after the other, as a shell script's steps, and one boto3 upload."""
    import_boto3()
    work = Path(state["folder"]) / f"etcd-peer-{number}"
    work.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ETCDCTL_API": "3", "HOME": str(work)}
    clock = Clock()
    snapshot = work / "snapshot.db"
    start = begin()
    began = time.monotonic()
    with clock.step("snapshot"):
        flags = ["--endpoints", state["etcd_url"], "--dial-timeout", "5s", "--command-timeout", "60s"]
        run([state["etcdctl"], *flags, "snapshot", "save", str(snapshot)], env=env)
    with clock.step("status"):
        status = json.loads(run([state["etcdutl"], "snapshot", "status", str(snapshot), "-w", "json"], env=env))
    with clock.step("compress"):
        run(["gzip", "-6", "-k", str(snapshot)], env=env)
    packed = work / "snapshot.db.gz"
    key = f"etcd/{SANDBOX}/peer-{number}-{datetime.now():%Y%m%dT%H%M%S}.db.gz"
    with clock.step("upload"):
        peer_client(state).upload_file(str(packed), state["peer_bucket"], key)
    total = time.monotonic() - began
    used = memory(start)
    answer = {
        "side": "peer",
        "run": number,
        "seconds": clock.total(total, ETCD_STEPS),
        "snapshot_mb": snapshot.stat().st_size / MIB,
        "object_mb": packed.stat().st_size / MIB,
        "keys": status["totalKey"],
        "revision": status["revision"],
        "key": key,
        **used,
    }
    shutil.rmtree(work, ignore_errors=True)
    return answer


def run(argv: list[str], env: dict | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, input=stdin)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} … exited with {done.returncode}: {done.stderr.strip()[-1500:]}")
    return done.stdout


def database_kubemate(state: dict, number: int) -> dict:
    django_setup()
    from django.contrib.auth import get_user_model

    from apps.backups import pgdump, progress, runner, s3, seal, services
    from apps.backups.models import Backup, Kind, Plan

    admin = get_user_model().objects.get(username=ADMIN)
    plan = Plan.objects.select_related("target").get(kind=Kind.DATABASE, name="db-bench")
    clock = Clock()
    clock.wrap(pgdump, "dump", "dump")
    clock.wrap(pgdump, "entries", "list")
    clock.wrap(seal, "seal", "compress")
    clock.wrap(s3, "file_sha256", "hash")
    clock.wrap(s3, "upload", "upload")
    clock.time_head(s3)
    clock.time_progress(progress)
    clock.wrap(pgdump, "check_versions", "versions")
    clock.wrap(runner, "apply_retention", "retention")
    clock.count_connections()
    start = begin()
    began = time.monotonic()
    backup = services.take_backup_now(actor=admin, plan=plan)
    total = time.monotonic() - began
    used = memory(start)
    if backup.status != Backup.Status.SUCCEEDED:
        raise RuntimeError(f"database backup {backup.name} ended {backup.status}: {backup.message}")
    detail = backup.detail or {}
    return {
        "side": "kubemate",
        "run": number,
        "seconds": clock.total(total, DUMP_STEPS, inside={"upload": ["hash", "progress", "read_back"]}),
        "versions": clock.seconds.get("versions", 0.0),
        "retention": clock.seconds.get("retention", 0.0),
        "facts": clock.plain_facts(),
        "dump_mb": detail.get("dump_bytes", 0) / MIB,
        "object_mb": backup.size_bytes / MIB,
        "audit_events": detail.get("audit_events"),
        "key": backup.key,
        **used,
    }


def database_peer(state: dict, number: int) -> dict:
    import_boto3()
    work = Path(state["folder"]) / f"db-peer-{number}"
    work.mkdir()
    dump = work / "kubemate.dump"
    key = f"database/peer-{number}-{datetime.now():%Y%m%dT%H%M%S}.dump"
    clock = Clock()
    start = begin()
    began = time.monotonic()
    with clock.step("dump"):
        run([str(Path(state["pg_bin"]) / "pg_dump"), "-Fc", "-f", str(dump)], env=pg_env(state["database_url"]))
    with clock.step("upload"):
        peer_client(state).upload_file(str(dump), state["peer_bucket"], key)
    total = time.monotonic() - began
    used = memory(start)
    answer = {
        "side": "peer",
        "run": number,
        "seconds": clock.total(total, DUMP_STEPS),
        "dump_mb": dump.stat().st_size / MIB,
        "object_mb": dump.stat().st_size / MIB,
        "key": key,
        **used,
    }
    shutil.rmtree(work, ignore_errors=True)
    return answer


def restore_kubemate(state: dict, number: int) -> dict:
    """``manage.py restore_database --dry-run`` in this fresh process, the password on standard input."""
    django_setup()
    from django.core.management import call_command

    from apps.backups import database, pgdump, s3, seal
    from apps.backups import restore as restores

    clock = Clock()
    clock.wrap(database, "prove", "prove")
    clock.wrap(s3, "exists", "fetch")
    clock.wrap(s3, "download", "fetch")
    clock.wrap(seal, "open_sealed", "open")
    clock.wrap(pgdump, "entries", "list")
    clock.wrap(pgdump, "create_scratch_database", "scratch")
    clock.wrap(pgdump, "drop", "scratch")
    clock.wrap(pgdump, "restore", "restore")
    clock.wrap(restores, "facts", "check")
    clock.wrap(restores, "_chain", "check")
    clock.wrap(pgdump, "check_versions", "versions")
    key = state["database_keys"]["kubemate"][str(number)]
    out = io.StringIO()
    start = begin()
    sys.stdin = io.StringIO(PASSWORD + "\n")
    began = time.monotonic()
    call_command(
        "restore_database",
        "--target",
        TARGET,
        "--key",
        key,
        "--as",
        ADMIN,
        "--dry-run",
        "--no-input",
        stdout=out,
        stderr=io.StringIO(),
    )
    total = time.monotonic() - began
    used = memory(start)
    said = out.getvalue()
    if "audit chain in the backup is intact" not in said:
        raise RuntimeError(f"the dry run did not find an intact chain:\n{said}")
    return {
        "side": "kubemate",
        "run": number,
        "seconds": clock.total(total, RESTORE_STEPS),
        "versions": clock.seconds.get("versions", 0.0),
        "key": key,
        "said": said.strip().splitlines(),
        **used,
    }


def restore_peer(state: dict, number: int) -> dict:
    import psycopg

    import_boto3()
    key = state["database_keys"]["peer"][str(number)]
    work = Path(state["folder"]) / f"restore-peer-{number}"
    work.mkdir()
    dump = work / "kubemate.dump"
    scratch = f"{BENCH_DB}_peer_scratch_{secrets.token_hex(3)}"
    admin_url = db_url(state["database_url"], "postgres")
    clock = Clock()
    start = begin()
    began = time.monotonic()
    with clock.step("fetch"):
        peer_client(state).download_file(state["peer_bucket"], key, str(dump))
    with clock.step("scratch"), psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{scratch}" TEMPLATE template0')
    try:
        with clock.step("restore"):
            run(
                [
                    str(Path(state["pg_bin"]) / "pg_restore"),
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "--single-transaction",
                    f"--dbname={scratch}",
                    str(dump),
                ],
                env=pg_env(state["database_url"]),
            )
    finally:
        with clock.step("scratch"), psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    total = time.monotonic() - began
    used = memory(start)
    shutil.rmtree(work, ignore_errors=True)
    return {"side": "peer", "run": number, "seconds": clock.total(total, RESTORE_STEPS), "key": key, **used}


def velero_kubemate(state: dict, number: int) -> dict:
    django_setup()
    from django.contrib.auth import get_user_model

    from apps.backups import tasks
    from apps.backups.models import Backup
    from apps.backups.velero import services as velero
    from apps.clusters.models import Cluster

    admin = get_user_model().objects.get(username=ADMIN)
    cluster = Cluster.objects.get(name=SANDBOX)
    clock = Clock()
    start = begin()
    began = time.monotonic()
    with clock.step("create"):
        backup = velero.run_backup(actor=admin, cluster=cluster, namespaces=[state["namespace"]], ttl_hours=24)
    with clock.step("wait"):
        tasks.follow_velero(str(backup.job_id), "backup", backup.pk)
    total = time.monotonic() - began
    used = memory(start)
    backup.refresh_from_db()
    if backup.status != Backup.Status.SUCCEEDED:
        raise RuntimeError(f"Velero backup {backup.name} ended {backup.status}: {backup.message}")
    return {
        "side": "kubemate",
        "run": number,
        "seconds": clock.total(total, VELERO_STEPS),
        "name": backup.name,
        "items": backup.detail.get("items"),
        "phase": backup.detail.get("phase"),
        **used,
    }


def velero_peer(state: dict, number: int) -> dict:
    name = f"peer-{number}-{datetime.now():%H%M%S}"
    common = ["--kubeconfig", state["kubeconfig"], "--namespace", state["velero_namespace"]]
    env = json.loads(Path(state["velero_env"]).read_text())
    clock = Clock()
    start = begin()
    began = time.monotonic()
    with clock.step("create"):
        run(
            [state["velero"], "backup", "create", name, "--include-namespaces", state["namespace"], "--wait", *common],
            env=env,
        )
    total = time.monotonic() - began
    used = memory(start)
    kubectl = [state["kubectl"], "--kubeconfig", state["kubeconfig"], "-n", state["velero_namespace"]]
    found = json.loads(run([*kubectl, "get", "backups.velero.io", name, "-o", "json"]))
    status = found.get("status") or {}
    if status.get("phase") != "Completed":
        raise RuntimeError(f"velero backup {name} ended {status.get('phase')}: {json.dumps(status)[:800]}")
    seconds = clock.total(total, VELERO_STEPS)
    return {
        "side": "peer",
        "run": number,
        "seconds": seconds,
        "name": name,
        "items": (status.get("progress") or {}).get("itemsBackedUp"),
        "phase": status.get("phase"),
        **used,
    }


SIDES = {
    "etcd-kubemate": etcd_kubemate,
    "etcd-peer": etcd_peer,
    "database-kubemate": database_kubemate,
    "database-peer": database_peer,
    "restore-kubemate": restore_kubemate,
    "restore-peer": restore_peer,
    "velero-kubemate": velero_kubemate,
    "velero-peer": velero_peer,
}


# The orchestrator ---------------------------------------------------------------------------------------------------


def configmap_data(index: int) -> dict:
    """~2 KiB of configuration-file text: names repeat, values do not (compresses like real settings, ~2-3x)."""
    lines = [f"service.{index:05d}.setting.{j:02d}={secrets.token_hex(10)}" for j in range(44)]
    return {"application.properties": "\n".join(lines) + "\n"}


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
        unknown = set(self.parts) - set(PARTS)
        if unknown:
            raise SystemExit(f"--parts: unknown {', '.join(sorted(unknown))} (known: {', '.join(PARTS)})")
        self.stamp = datetime.now().strftime("%Y-%m-%d-%H%M%S")
        services = read_env_file(ROOT / ".run" / "services.env")
        self.base_db = services["DATABASE_URL"]
        self.redis_url = services["REDIS_URL"].rsplit("/", 1)[0] + f"/{args.redis_db}"
        self.folder = Path(tempfile.mkdtemp(prefix="kubemate-bench-backups-"))
        self.sandbox_name = args.sandbox or SANDBOX
        self.started_sandbox = False
        self.created_db = False
        self.namespace = ""
        self.s3 = None
        self.velero = None
        self.velero_skipped = ""
        self.state: dict = {}
        self.paths: dict = {}

    @property
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBEMATE_SANDBOX") and k != "KUBECONFIG"}
        env.update(
            DATABASE_URL=db_url(self.base_db, BENCH_DB),
            REDIS_URL=self.redis_url,
            DJANGO_SETTINGS_MODULE="kubemate.settings",
            KUBEMATE_LOG_LEVEL="WARNING",
            KUBEMATE_BACKUP_WORKDIR=str(self.folder / "work"),
        )
        return env

    def child(self, *args: str) -> dict:
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, __file__, *args, "--state", str(self.folder / "state.json")],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        if isinstance(answer, dict):
            answer["process_seconds"] = time.monotonic() - began
        return answer

    def save_state(self) -> None:
        (self.folder / "state.json").write_text(json.dumps(self.state))

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return run([self.paths["KUBECTL"], "--kubeconfig", self.state["kubeconfig"], *args], stdin=stdin)

    def flush_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.redis_url).flushdb()

    def drop_databases(self) -> None:
        import psycopg

        with psycopg.connect(db_url(self.base_db, "postgres"), autocommit=True) as conn:
            left = conn.execute(
                "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
                (BENCH_DB, BENCH_DB + "\\_%"),
            ).fetchall()
            for (name,) in left:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # setup ----------------------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        import psycopg

        from tests.plugins.s3 import start_server, unique_bucket

        args = self.args
        self.paths = tool_paths()
        for name in ("ETCDCTL", "ETCDUTL", "KUBECTL", "VERSITYGW"):
            if not Path(self.paths.get(name, "")).is_file():
                raise SystemExit(f"{name} is not built: deploy/sandbox/build --only {name.lower()}")
        if args.sandbox:
            if not (ROOT / ".run/sandbox" / args.sandbox / "env").is_file():
                raise SystemExit(f"--sandbox {args.sandbox}: no sandbox at .run/sandbox/{args.sandbox}")
            log(f"using the running sandbox {args.sandbox}")
        else:
            log(f"starting sandbox {SANDBOX} (1 node)")
            began = time.monotonic()
            self.started_sandbox = True
            with (self.folder / "sandbox-up.log").open("w") as out:
                subprocess.run(
                    [str(ROOT / "deploy/sandbox/up"), "--name", SANDBOX, "--nodes", "1"],
                    check=True,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            log(f"sandbox up in {time.monotonic() - began:.0f} s")
        sandbox = read_env_file(ROOT / ".run/sandbox" / self.sandbox_name / "env")
        self.namespace = f"bench-bk-{uuid.uuid4().hex[:6]}"
        self.state.update(
            folder=str(self.folder),
            kubeconfig=sandbox["KUBECONFIG"],
            etcd_url=sandbox["KUBEMATE_SANDBOX_ETCD"],
            etcdctl=self.paths["ETCDCTL"],
            etcdutl=self.paths["ETCDUTL"],
            kubectl=self.paths["KUBECTL"],
            velero=self.paths.get("VELERO", ""),
            pg_bin=str(pg_bin()),
            namespace=self.namespace,
            database_url=db_url(self.base_db, BENCH_DB),
            database_keys={"kubemate": {}, "peer": {}},
        )
        self.kubectl("create", "namespace", self.namespace)
        self.fill_namespace(args.configmaps)

        self.s3 = start_server()
        self.state.update(
            s3_endpoint=self.s3.endpoint,
            s3_access_key=self.s3.access_key,
            s3_secret_key=self.s3.secret_key,
            s3_region=self.s3.region,
            kubemate_bucket=self.s3.make_bucket(unique_bucket("bench-kubemate")),
            peer_bucket=self.s3.make_bucket(unique_bucket("bench-peer")),
        )
        log(f"versitygw on {self.s3.endpoint} (objects in {self.s3.path})")

        log(f"creating database {BENCH_DB} and migrating it; Redis db {args.redis_db} flushed")
        with psycopg.connect(db_url(self.base_db, "postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {BENCH_DB}")
        self.created_db = True
        self.flush_redis()
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=self.env, capture_output=True
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate failed: {migrate.stderr.decode()[-2000:]}")
        self.save_state()
        log("registering the cluster, the administrator, the storage target, the etcd access, the plans")
        self.state.update(self.child("--setup"))
        self.save_state()

    def fill_namespace(self, count: int) -> None:
        log(f"creating {count} ConfigMaps of ~2 KiB in {self.namespace}")
        began = time.monotonic()
        chunks = []
        for first in range(0, count, 250):
            items = [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"settings-{i:05d}", "labels": {"app": f"service-{i % 50:02d}"}},
                    "data": configmap_data(i),
                }
                for i in range(first, min(first + 250, count))
            ]
            chunks.append(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda text: self.kubectl("create", "-n", self.namespace, "-f", "-", stdin=text), chunks))
        found = self.kubectl("get", "configmaps", "-n", self.namespace, "--no-headers", "-o", "name").split()
        log(f"{len(found)} ConfigMaps in {time.monotonic() - began:.0f} s")

    def start_velero(self) -> None:
        """The real Velero server against the sandbox (tests/plugins/velero.py), or the reason it did not start."""
        try:
            from tests.plugins.sandbox import _reuse
            from tests.plugins.velero import start_velero

            handle = _reuse(str(ROOT / ".run/sandbox" / self.sandbox_name))
            self.velero = start_velero(handle, self.s3)
        except Exception as exc:  # noqa: BLE001 - Velero is optional here: say why it is left out, never fake it
            self.velero_skipped = f"Velero did not start: {type(exc).__name__}: {str(exc).strip()[:600]}"
            return
        env_file = self.folder / "velero-env.json"
        env_file.write_text(json.dumps(self.velero.environment()))
        self.state.update(velero_namespace=self.velero.namespace, velero_env=str(env_file))
        self.save_state()
        self.state.update(self.child("--setup-velero"))
        self.save_state()

    # runs -----------------------------------------------------------------------------------------------------------

    def alternate(self, part: str, title: str) -> dict[str, list[dict]]:
        answers: dict[str, list[dict]] = {"kubemate": [], "peer": []}
        for number in range(1, self.args.runs + 1):
            for side in ("kubemate", "peer") if number % 2 else ("peer", "kubemate"):  # neither always goes first
                answer = self.child("--side", f"{part}-{side}", "--run", str(number))
                answers[side].append(answer)
                s = answer["seconds"]
                steps = ", ".join(f"{k} {v:.2f}" for k, v in s.items() if k != "total" and v)
                log(f"{title} run {number} {side:8}: {s['total']:.2f} s ({steps}); peak {answer['peak_mib']:.0f} MiB")
                if part == "database":
                    self.state["database_keys"][side][str(number)] = answer["key"]
                    self.save_state()
        return answers

    def run(self) -> None:
        self.prepare()
        results: dict = {}
        if "etcd" in self.parts:
            results["etcd"] = self.alternate("etcd", "etcd")
        if "database" in self.parts:
            log(f"padding the database with {self.args.audit_events} audit events")
            padded = self.child("--pad", str(self.args.audit_events))
            log(f"{padded['written']} events in {padded['seconds']:.0f} s; {padded['events']} in the chain")
            results["database_padding"] = padded
            results["database"] = self.alternate("database", "db backup")
            results["restore"] = self.alternate("restore", "db restore check")
        if "velero" in self.parts:
            log("starting Velero against the sandbox")
            self.start_velero()
            if self.velero is None:
                log(self.velero_skipped)
            else:
                log(f"Velero up in namespace {self.velero.namespace}")
                results["velero"] = self.alternate("velero", "velero")
        elif not self.velero_skipped:
            self.velero_skipped = "not asked for (--parts)"
        self.report(results)

    # report ---------------------------------------------------------------------------------------------------------

    def report(self, results: dict) -> None:
        def median(rows, key, sub="seconds"):
            values = [r[sub][key] if sub else r[key] for r in rows]
            values = [v for v in values if v is not None]
            return statistics.median(values) if values else 0.0

        def table(title: str, answers: dict, steps: list[str], size: tuple[str, str] | None) -> None:
            print()
            print(title)
            header = f"{'side':10}" + "".join(f"{s.replace('_', '-'):>10}" for s in steps)
            if size:
                header += f"{size[1]:>11}"
            print(header + f"{'start MiB':>10}{'peak MiB':>10}{'tools MiB':>11}")
            for side, rows in answers.items():
                cells = "".join(
                    f"{median(rows, s):>10.2f}"
                    if side == "kubemate" or s in ("other", "total") or median(rows, s) > 0
                    else f"{'-':>10}"
                    for s in steps
                )
                if size:
                    cells += f"{median(rows, size[0], None):>11.2f}"
                mem = "".join(
                    f"{median(rows, key, None):>{width}.0f}"
                    for key, width in (("start_mib", 10), ("peak_mib", 10), ("tools_mib", 11))
                )
                print(f"{side:10}{cells}{mem}")
            kubemate, peer = median(answers["kubemate"], "total"), median(answers["peer"], "total")
            print(
                f"Kubemate {kubemate:.2f} s, peer {peer:.2f} s: Kubemate's own cost {kubemate - peer:+.2f} s "
                f"({(kubemate - peer) / peer * 100:+.0f} %, {kubemate / peer:.2f}x)"
            )

        print()
        print(f"medians of {self.args.runs} runs a side; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f} now")
        if "etcd" in results:
            rows = results["etcd"]
            table(
                f"etcd snapshot ({self.args.configmaps} ConfigMaps of ~2 KiB; snapshot "
                f"{median(rows['kubemate'], 'snapshot_mb', None):.1f} MiB, "
                f"{median(rows['kubemate'], 'keys', None):.0f} keys)",
                rows,
                ETCD_STEPS,
                ("object_mb", "object MiB"),
            )
        if "database" in results:
            rows = results["database"]
            table(
                f"Kubemate's database, backup ({results['database_padding']['events']} audit events; dump "
                f"{median(rows['kubemate'], 'dump_mb', None):.1f} MiB)",
                rows,
                DUMP_STEPS,
                ("object_mb", "object MiB"),
            )
            table("Kubemate's database, restore check", results["restore"], RESTORE_STEPS, None)
            startup = median(results["restore"]["kubemate"], "process_seconds", None) - median(
                results["restore"]["kubemate"], "total"
            )
            print(f"(the kubemate restore's process spent {startup:.2f} s more starting Python and Django)")
        if "velero" in results:
            rows = results["velero"]
            table(
                f"Velero backup of the namespace ({median(rows['kubemate'], 'items', None):.0f} items)",
                rows,
                VELERO_STEPS,
                None,
            )
        else:
            print()
            print(f"Velero: skipped. {self.velero_skipped}")
        out = ROOT / ".run" / "bench" / f"backups-{self.stamp}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "date": self.stamp,
                    "config": vars(self.args),
                    "cpus": os.cpu_count(),
                    "velero_skipped": self.velero_skipped,
                    "results": results,
                },
                indent=1,
            )
        )
        print(f"runs written to {out.relative_to(ROOT)}")

    # cleanup --------------------------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        if self.velero is not None:
            from tests.plugins.velero import stop_velero

            try:
                stop_velero(self.velero)
            except Exception as exc:  # noqa: BLE001 - go on cleaning up the rest
                log(f"stopping Velero failed: {exc}")
        if self.s3 is not None:
            self.s3.close()
        if self.created_db and not self.args.keep_db:
            try:
                self.drop_databases()
            except Exception as exc:  # noqa: BLE001 - go on cleaning up the rest
                log(f"dropping {BENCH_DB} failed: {exc}")
        with contextlib.suppress(Exception):
            self.flush_redis()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.started_sandbox and not self.args.keep:
            subprocess.run([str(ROOT / "deploy/sandbox/down"), "--name", SANDBOX], stdout=subprocess.DEVNULL)
            log(f"sandbox {SANDBOX} stopped")
        elif self.namespace and not self.args.keep and self.state.get("kubeconfig"):
            with contextlib.suppress(Exception):
                self.kubectl("delete", "namespace", "--wait=false", self.namespace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--configmaps", type=int, default=5000, help="ConfigMaps of ~2 KiB in etcd (default 5000)")
    parser.add_argument("--audit-events", type=int, default=50000, help="audit events to pad the database with")
    parser.add_argument("--parts", default=",".join(PARTS), help="which parts, comma-separated (default: all)")
    parser.add_argument("--sandbox", default="", help="a running sandbox instead of bench-bk, one nobody else uses")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox bench-bk (and the namespace)")
    parser.add_argument("--keep-db", action="store_true", help=f"leave the database {BENCH_DB}")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help=f"Redis database (default {REDIS_DB})")
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--setup-velero", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pad", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup or args.setup_velero or args.pad or args.side:
        state = json.loads(Path(args.state).read_text())
        if args.setup:
            answer = setup(state)
        elif args.setup_velero:
            answer = setup_velero(state)
        elif args.pad:
            answer = pad_audit(state, args.pad)
        else:
            global WATCH
            WATCH = ToolWatch()
            answer = SIDES[args.side](state, args.run)
        print(json.dumps(answer))
        return
    if not (ROOT / ".run" / "services.env").is_file():
        raise SystemExit("No .run/services.env: start PostgreSQL and Redis with `make services`.")
    bench = Bench(args)
    try:
        bench.run()
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
