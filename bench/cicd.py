#!/usr/bin/env python3
"""A jar pipeline from upload to a deployed release: Kubemate's run beside the same steps as a CI job's shell steps.

    bench/cicd.py                         # sandbox "bench-ci" (3 nodes), 3 runs a side, a 60 MB jar
    bench/cicd.py --runs 5 --jar-mb 120   # more runs, a bigger jar
    bench/cicd.py --sandbox NAME          # a running sandbox instead of starting one (never stopped; see below)
    bench/cicd.py --keep                  # leave the sandbox "bench-ci" running at the end

Setup (not timed): the sandbox ``bench-ci`` (``deploy/sandbox/up --name bench-ci --nodes 3``, stopped at the end
unless ``--keep``), a database of its own (``kubemate_bench_cicd`` on the project PostgreSQL of .run/services.env,
created fresh, migrated, dropped at the end) and Redis db 13 (``--redis-db``, flushed before and after), a registry
(``crane registry serve`` on a free loopback port, blobs in a temporary folder), the CI/CD storage folder
(``KUBEMATE_CICD_STORAGE``) in the same temporary folder. In the database: the cluster registered as an operator
registers it, a developer bound to a project holding one namespace (RBAC projected), the registry, the sample base
image (deploy/local/cicd_samples.py, pushed offline) approved for the project, the sample OSV database as the
newest import, the project's policy at "warn only" so the planted critical finding does not block the deploy. The
jar is the sample application (com.example:orders:1.4.2 with log4j and jackson nested under BOOT-INF/lib) padded
with an incompressible stored resource to ``--jar-mb`` (default 60 MB, a Spring Boot fat jar's size).

Each side runs ``--runs`` times, alternating (Kubemate first in odd runs, the cli in even ones), each run in a fresh
process with its own image repository and its own Deployment (a first deploy each time):

- **kubemate**: a jar pipeline (direct deploy) saved by the developer (not timed), then timed: ``services.add_upload``
  of the jar (64 KiB chunks, as Django hands an uploaded file over), ``services.start_run`` (the dispatcher gives
  the run its Job) and the Job's body ``tasks.execute_run`` to its end, as the worker runs it: source (the upload's
  SHA-256 checked), build (the layer tar, ``crane mutate`` to an image archive), scan (``osv-scanner`` offline,
  findings and SBOM stored, the policy applied), push (``crane push``, the digest read back), deploy (the release
  created and deployed as the developer, the rollout followed until the new pods are ready on kwok). Stage seconds
  come from the Stage rows; "other" is the rest (start_run, the Job's bookkeeping, the run's end).
- **cli** (the peer, the floor): the same binaries as a CI job's shell steps would run them: ``install`` (a copy) of
  the jar into a workspace, ``tar`` of the layer, ``crane mutate BASE@DIGEST --append layer.tar --entrypoint …
  -t REF -o image.tar --insecure``, ``osv-scanner scan image --archive image.tar --offline --all-packages --format
  json`` on the same database, ``crane push``, ``kubectl apply`` of the same Deployment and Service Kubemate
  renders (the image by digest), ``kubectl rollout status``. No audit, no records, no policy, no UI.

It prints the median seconds of each stage and the total from the upload's start to the rollout's end, and writes
every run to ``.run/bench/cicd-<stamp>.json``.

``--sandbox NAME`` registers that cluster in the bench database and projects its RBAC there, which removes the
projections of every other database that registered it (reconcile keeps only what its own database wants): use a
sandbox no other console or test session is using at the time.
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
import importlib.util  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
import uuid  # noqa: E402
import zipfile  # noqa: E402
from datetime import datetime  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

SANDBOX = "bench-ci"
BENCH_DB = "kubemate_bench_cicd"
REDIS_DB = 13
CLUSTER = "bench-ci"
PASSWORD = "bench-Pa55word-not-secret"  # noqa: S105 - throw-away users in a throw-away database
CHUNK = 64 * 1024  # Django's UploadedFile.chunks() size
MIB = 1024 * 1024
STAGES = ["upload", "source", "build", "scan", "push", "deploy"]
CLI_STEPS = ["copy", "layer", "mutate", "scan", "push", "apply", "rollout"]


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool_paths() -> dict[str, str]:
    """What ``deploy/sandbox/build --print-paths`` names (CRANE, OSV_SCANNER, KUBECTL, …)."""
    done = subprocess.run(
        [str(ROOT / "deploy/sandbox/build"), "--print-paths"], capture_output=True, text=True, check=True
    )
    paths = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    for name in ("CRANE", "OSV_SCANNER", "KUBECTL"):
        if not Path(paths.get(name, "")).is_file():
            raise SystemExit(f"{name} is not built: deploy/sandbox/build --only {name.lower().replace('_', '-')}")
    return paths


def cicd_samples():
    """deploy/local/cicd_samples.py as a module (a script beside the demo, not a package)."""
    spec = importlib.util.spec_from_file_location("kubemate_cicd_samples", ROOT / "deploy/local/cicd_samples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["kubemate_cicd_samples"] = module
    spec.loader.exec_module(module)
    return module


def fat_jar(path: Path, megabytes: int) -> Path:
    """The sample application jar, padded to ``megabytes`` with a stored resource of random bytes (incompressible,
    like the classes and nested jars of a Spring Boot fat jar as far as gzip and the registry are concerned)."""
    samples = cicd_samples()
    samples.build_sample_jar(path)
    missing = megabytes * MIB - path.stat().st_size
    if missing > 0:
        with zipfile.ZipFile(path, "a") as jar:
            info = zipfile.ZipInfo("BOOT-INF/classes/static/assets.bin", samples.ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with jar.open(info, "w", force_zip64=missing > 2**31) as out:
                while missing > 0:
                    block = os.urandom(min(missing, 4 * MIB))
                    out.write(block)
                    missing -= len(block)
    return path


class Registry:
    """``crane registry serve`` on a free loopback port, blobs on disk (tests/plugins/registry.py's way)."""

    def __init__(self, crane: str, folder: Path) -> None:
        self.host = f"127.0.0.1:{free_port()}"
        (folder / "blobs").mkdir(parents=True)
        self.log = (folder / "registry.log").open("wb")
        argv = [crane, "registry", "serve", "--address", self.host, "--disk", str(folder / "blobs")]
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"crane registry serve exited with {self.process.returncode}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("crane registry serve did not answer in 60 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


# Child processes ------------------------------------------------------------------------------------------------


def setup(state: dict) -> dict:
    """In the bench database: the cluster, the users, the project, the registry, the approved base, the vulnerability
    database, the policy; and the cli's manifest (the objects Kubemate renders for the same release spec)."""
    import django

    django.setup()
    from types import SimpleNamespace

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from apps.accounts import services as accounts
    from apps.accounts.models import Project, Role
    from apps.accounts.reconcile import reconcile_rbac
    from apps.cicd import runner, services, storage
    from apps.cicd.models import Registry as RegistryRow
    from apps.cicd.models import VulnDatabase
    from apps.clusters.registry.services import register_from_kubeconfig
    from apps.releases import render

    samples = cicd_samples()
    cluster = register_from_kubeconfig(
        actor=None, name=CLUSTER, kubeconfig_text=Path(state["kubeconfig"]).read_text(), environment="bench"
    )
    users = get_user_model()
    admin = users.objects.create_superuser("bench-admin", "bench-admin@example.test", PASSWORD)
    developer = users.objects.create_user("bench-dev", "bench-dev@example.test", PASSWORD)
    project = accounts.save_project(
        actor=admin,
        project=Project(cluster=cluster, slug="bench-ci", name="Bench CI", namespaces=[state["kubemate_namespace"]]),
    )
    accounts.create_binding(actor=admin, role=Role.objects.get(slug="developer"), user=developer, project=project)
    for attempt in range(5):
        # On a fresh cluster the first look at the just-created CRDs can find "conditions": null, which
        # apps/accounts/k8s.py's ensure_crds does not take (TypeError); the projection is idempotent: again.
        try:
            reconcile_rbac(cluster)
            break
        except TypeError:
            if attempt == 4:
                raise
            time.sleep(1)
    developer = users.objects.get(pk=developer.pk)
    registry = RegistryRow.objects.create(name="bench", host=state["registry"], insecure=True, cluster=cluster)
    reference = f"{state['registry']}/base/jre:17"
    samples.push_base_image(state["crane"], reference, folder=Path(state["folder"]) / "base")
    base = services.approve_base(
        actor=developer, project=project, name="Debian JRE", reference=reference, registry=registry
    )
    folder = uuid.uuid4().hex
    samples.build_osv_db(storage.root() / "vulndb" / folder)
    VulnDatabase.objects.create(
        data_date=timezone.now(),
        filename="sample.zip",
        sha256="0" * 64,
        size=1,
        folder=folder,
        ecosystems={"Maven": 1, "Debian": 1},
    )
    services.save_policy(
        actor=admin, project=project, block_on="none", max_concurrent_runs=2, keep_days=30, keep_runs=10
    )
    spec = runner._release_spec(SimpleNamespace(port=8080), "@IMAGE@")
    objects = render.manifests("@NAME@", state["cli_namespace"], spec, {})
    (Path(state["folder"]) / "deploy.yaml.in").write_text(render.to_yaml(objects))
    return {"base": base.pinned, "vulndb": str(storage.root() / "vulndb" / folder), "cluster": cluster.pk}


def side_kubemate(state: dict, number: int) -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from apps.accounts.models import Project
    from apps.cicd import services, tasks
    from apps.cicd.models import BaseImage, Pipeline, Run
    from apps.cicd.models import Registry as RegistryRow
    from apps.core.models import Job

    developer = get_user_model().objects.get(username="bench-dev")
    project = Project.objects.get(slug="bench-ci")
    name = f"orders-k{number}"
    pipeline = services.save_pipeline(
        actor=developer,
        pipeline=Pipeline(
            project=project,
            namespace=state["kubemate_namespace"],
            name=name,
            kind=Pipeline.Kind.JAR,
            base_image=BaseImage.objects.get(project=project),
            registry=RegistryRow.objects.get(name="bench"),
            repository=f"bench/{name}",
            port=8080,
            deploy_mode=Pipeline.DeployMode.DIRECT,
        ),
    )
    started = time.monotonic()
    with Path(state["jar"]).open("rb") as f:
        upload = services.add_upload(
            actor=developer, pipeline=pipeline, filename="orders.jar", chunks=iter(lambda: f.read(CHUNK), b"")
        )
    uploaded = time.monotonic()
    run = services.start_run(actor=developer, pipeline=pipeline, trigger=Run.Trigger.UPLOAD, upload=upload)
    run.refresh_from_db()
    if run.job_id is None:
        raise RuntimeError("the dispatcher gave the run no job")
    tasks.execute_run(str(run.job_id), run.pk)
    total = time.monotonic() - started
    run.refresh_from_db()
    if run.status != Run.Status.SUCCEEDED:
        raise RuntimeError(f"run {name} #{run.number} ended {run.status}: {run.message}")
    seconds = {"upload": uploaded - started}
    details = {}
    for stage in run.stages.all():
        seconds[stage.key] = (stage.finished_at - stage.started_at).total_seconds()
        details[stage.key] = stage.detail
    seconds["other"] = total - sum(seconds[key] for key in STAGES)
    seconds["total"] = total
    rollout = Job.objects.get(pk=details["deploy"]["rollout_job"])
    return {
        "side": "kubemate",
        "run": number,
        "seconds": seconds,
        "rollout_wait": (rollout.finished_at - rollout.started_at).total_seconds(),
        "image_mb": details["build"]["archive_size"] / MIB,
        "jar_mb": upload.size / MIB,
        "image": f"{run.image}@{run.digest}",
        "findings": run.counts,
    }


def side_cli(state: dict, number: int) -> dict:
    """The floor: the same binaries, one after the other, as a CI job's shell steps."""
    name = f"orders-c{number}"
    work = Path(state["folder"]) / f"cli-{number}"
    (work / "ws").mkdir(parents=True)
    reference = f"{state['registry']}/bench/{name}:{number}"
    kubectl = [state["kubectl"], "--kubeconfig", state["kubeconfig"]]
    scan_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY": state["vulndb"],
    }
    seconds: dict[str, float] = {}

    def step(key: str, argv: list[str], ok=(0,), env=None) -> str:
        began = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work)
        seconds[key] = seconds.get(key, 0.0) + time.monotonic() - began
        if done.returncode not in ok:
            raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.strip()[-1500:]}")
        return done.stdout

    started = time.monotonic()
    step("copy", ["install", "-D", "-m", "644", state["jar"], str(work / "ws/app/app.jar")])
    step("layer", ["tar", "--owner=0", "--group=0", "--numeric-owner", "-C", "ws", "-cf", "layer.tar", "app"])
    step(
        "mutate",
        [
            state["crane"],
            "mutate",
            state["base"],
            "--append",
            "layer.tar",
            "--entrypoint",
            "java,-jar,/app/app.jar",
            "--env",
            "JAVA_TOOL_OPTIONS=-XX:MaxRAMPercentage=75.0",
            "--workdir",
            "/app",
            "--user",
            "10001:10001",
            "--platform",
            "linux/amd64",
            "-t",
            reference,
            "-o",
            "image.tar",
            "--insecure",
        ],
    )
    scan = ["scan", "image", "--archive", "--offline", "--all-packages", "--format", "json"]
    step("scan", [state["osv_scanner"], *scan, "--output-file", "scan.json", "image.tar"], ok=(0, 1), env=scan_env)
    pushed = step("push", [state["crane"], "push", "image.tar", reference, "--insecure"]).strip()
    image = f"{reference}@{pushed.rsplit('@', 1)[1]}"
    began = time.monotonic()
    manifest = (Path(state["folder"]) / "deploy.yaml.in").read_text()
    (work / "deploy.yaml").write_text(manifest.replace("@NAME@", name).replace("@IMAGE@", image))
    seconds["apply"] = time.monotonic() - began
    step("apply", [*kubectl, "apply", "-f", "deploy.yaml"])
    step("rollout", [*kubectl, "rollout", "status", f"deployment/{name}", "-n", state["cli_namespace"], "--timeout=5m"])
    total = time.monotonic() - started
    findings = json.loads((work / "scan.json").read_text())
    vulns = sum(len(p.get("vulnerabilities") or []) for r in findings.get("results") or [] for p in r["packages"])
    image_mb = (work / "image.tar").stat().st_size / MIB
    shutil.rmtree(work, ignore_errors=True)
    cli = {
        "upload": seconds["copy"],
        "source": 0.0,
        "build": seconds["layer"] + seconds["mutate"],
        "scan": seconds["scan"],
        "push": seconds["push"],
        "deploy": seconds["apply"] + seconds["rollout"],
        "other": 0.0,
        "total": total,
    }
    return {
        "side": "cli",
        "run": number,
        "seconds": cli,
        "steps": seconds,
        "rollout_wait": seconds["rollout"],
        "image_mb": image_mb,
        "jar_mb": Path(state["jar"]).stat().st_size / MIB,
        "image": image,
        "findings": {"vulnerabilities": vulns},
    }


# The orchestrator -----------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.stamp = datetime.now().strftime("%Y-%m-%d-%H%M%S")
        services = read_env_file(ROOT / ".run" / "services.env")
        self.base_db = services["DATABASE_URL"]
        self.redis_url = services["REDIS_URL"].rsplit("/", 1)[0] + f"/{args.redis_db}"
        self.folder = Path(tempfile.mkdtemp(prefix="kubemate-bench-cicd-"))
        self.registry: Registry | None = None
        self.started_sandbox = False
        self.created_db = False
        self.namespaces: list[str] = []
        self.sandbox_name = args.sandbox or SANDBOX

    @property
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBEMATE_SANDBOX") and k != "KUBECONFIG"}
        env.update(
            DATABASE_URL=db_url(self.base_db, BENCH_DB),
            REDIS_URL=self.redis_url,
            DJANGO_SETTINGS_MODULE="kubemate.settings",
            KUBEMATE_LOG_LEVEL="WARNING",
            KUBEMATE_CICD_STORAGE=str(self.folder / "storage"),
        )
        return env

    def child(self, *args: str) -> dict:
        done = subprocess.run(
            [sys.executable, __file__, *args, "--state", str(self.folder / "state.json")],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def flush_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.redis_url).flushdb()

    def drop_database(self) -> None:
        import psycopg

        with psycopg.connect(db_url(self.base_db, "postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")

    def prepare(self) -> dict:
        import psycopg

        args = self.args
        paths = tool_paths()
        if args.sandbox:
            if not (ROOT / ".run/sandbox" / args.sandbox / "env").is_file():
                raise SystemExit(f"--sandbox {args.sandbox}: no sandbox at .run/sandbox/{args.sandbox}")
            log(f"using the running sandbox {args.sandbox}")
        else:
            log(f"starting sandbox {SANDBOX} (3 nodes)")
            began = time.monotonic()
            self.started_sandbox = True
            subprocess.run(
                [str(ROOT / "deploy/sandbox/up"), "--name", SANDBOX, "--nodes", "3"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            log(f"sandbox up in {time.monotonic() - began:.0f} s")
        sandbox = read_env_file(ROOT / ".run/sandbox" / self.sandbox_name / "env")
        kubectl = [paths["KUBECTL"], "--kubeconfig", sandbox["KUBECONFIG"]]
        suffix = uuid.uuid4().hex[:6]
        kubemate_ns, cli_ns = f"bench-kubemate-{suffix}", f"bench-cli-{suffix}"
        for namespace in (kubemate_ns, cli_ns):
            subprocess.run([*kubectl, "create", "namespace", namespace], check=True, capture_output=True)
            self.namespaces.append(namespace)

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

        self.registry = Registry(paths["CRANE"], self.folder / "registry")
        log(f"registry on {self.registry.host}; writing a {args.jar_mb} MB jar")
        jar = fat_jar(self.folder / "orders.jar", args.jar_mb)
        state = {
            "folder": str(self.folder),
            "kubeconfig": sandbox["KUBECONFIG"],
            "kubectl": paths["KUBECTL"],
            "crane": paths["CRANE"],
            "osv_scanner": paths["OSV_SCANNER"],
            "registry": self.registry.host,
            "jar": str(jar),
            "kubemate_namespace": kubemate_ns,
            "cli_namespace": cli_ns,
        }
        (self.folder / "state.json").write_text(json.dumps(state))
        log("registering the cluster, the project, the registry, the base image, the vulnerability database")
        state.update(self.child("--setup"))
        (self.folder / "state.json").write_text(json.dumps(state))
        return state

    def run(self) -> None:
        self.prepare()
        answers: dict[str, list[dict]] = {"kubemate": [], "cli": []}
        for number in range(1, self.args.runs + 1):
            for side in ("kubemate", "cli") if number % 2 else ("cli", "kubemate"):  # neither always goes first
                answer = self.child("--side", side, "--run", str(number))
                answers[side].append(answer)
                s = answer["seconds"]
                parts = ", ".join(f"{key} {s[key]:.2f}" for key in STAGES)
                log(f"run {number} {side:8}: total {s['total']:.2f} s ({parts})")
        self.report(answers)

    def report(self, answers: dict[str, list[dict]]) -> None:
        def median(rows, key, sub="seconds"):
            return statistics.median(r[sub][key] if sub else r[key] for r in rows)

        print()
        header = f"{'side':10}" + "".join(f"{k:>8}" for k in [*STAGES, "other", "total"]) + f"{'image MB':>10}"
        print(header)
        for side, rows in answers.items():
            cells = "".join(f"{median(rows, k):>8.2f}" for k in [*STAGES, "other", "total"])
            print(f"{side:10}{cells}{median(rows, 'image_mb', None):>10.1f}")
        print()
        print("cli steps  " + "".join(f"{k:>8}" for k in CLI_STEPS))
        print(" " * 11 + "".join(f"{median(answers['cli'], k, 'steps'):>8.2f}" for k in CLI_STEPS))
        kubemate, cli = answers["kubemate"], answers["cli"]
        print()
        print(
            f"kubemate deploy: {median(kubemate, 'deploy'):.2f} s, of which the rollout wait "
            f"{median(kubemate, 'rollout_wait', None):.2f} s; "
            f"cli rollout status {median(cli, 'rollout_wait', None):.2f} s"
        )
        total, floor = median(kubemate, "total"), median(cli, "total")
        print(
            f"total kubemate {total:.2f} s, cli {floor:.2f} s: Kubemate's own cost {total - floor:.2f} s "
            f"({total / floor:.2f}x); goal under 60 s: {'met' if total < 60 else 'missed'}"
        )
        print(f"jar {kubemate[-1]['jar_mb']:.1f} MB; findings {kubemate[-1]['findings']}")
        out = ROOT / ".run" / "bench" / f"cicd-{self.stamp}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"date": self.stamp, "config": vars(self.args), "runs": answers}, indent=1))
        print(f"runs written to {out.relative_to(ROOT)}")

    def cleanup(self) -> None:
        if self.registry is not None:
            self.registry.stop()
        if self.created_db and not self.args.keep_db:
            with contextlib.suppress(Exception):
                self.drop_database()
        with contextlib.suppress(Exception):
            self.flush_redis()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.started_sandbox and not self.args.keep:
            subprocess.run([str(ROOT / "deploy/sandbox/down"), "--name", SANDBOX], stdout=subprocess.DEVNULL)
            log(f"sandbox {SANDBOX} stopped")
        elif self.namespaces and not self.args.keep:
            paths = tool_paths()
            sandbox = read_env_file(ROOT / ".run/sandbox" / self.sandbox_name / "env")
            subprocess.run(
                [
                    paths["KUBECTL"],
                    "--kubeconfig",
                    sandbox["KUBECONFIG"],
                    "delete",
                    "namespace",
                    "--wait=false",
                    *self.namespaces,
                ],
                capture_output=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--jar-mb", type=int, default=60, help="pad the jar to this size in MB (default 60)")
    parser.add_argument(
        "--sandbox",
        default="",
        help="a running sandbox instead of bench-ci, one nobody else uses (its RBAC projection is replaced)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the sandbox bench-ci (and the namespaces)")
    parser.add_argument("--keep-db", action="store_true", help=f"leave the database {BENCH_DB}")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help=f"Redis database (default {REDIS_DB})")
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--side", choices=["kubemate", "cli"], help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup or args.side:
        state = json.loads(Path(args.state).read_text())
        if args.setup:
            print(json.dumps(setup(state)))
        elif args.side == "kubemate":
            print(json.dumps(side_kubemate(state, args.run)))
        else:
            print(json.dumps(side_cli(state, args.run)))
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
