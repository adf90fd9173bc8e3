"""The console's container image (deploy/image): built without a daemon, pushed, read back, run read-only as 10001.

`deploy/image/build` builds the image (warm: only the app layer is made again) and pushes it to a registry this test
starts (`crane registry serve` on loopback); its manifest and config are read back from there and checked: the user,
the entrypoint and command, the environment, the labels, and that each layer is exactly a tar made on this machine
(its sha256 is the diff_id the config names: nothing came from a registry). The flattened file system is exported
and listed: no compiler, no headers, no -dev package, no pip; the collected static files, the compiled catalogs and
the byte code are there; tests, .git and the virtualenv of the checkout are not. Then the image runs with
`deploy/image/run` (runc, no daemon) on loopback, as 10001 with no capabilities and a read-only root file system:
`migrate` into a database of its own, `web` answers /readyz and serves a page in Chinese and a static file, writing
to the root file system fails while /tmp and /var/lib/kubemate take writes, and `worker` answers a Celery ping from
this machine, writes its heartbeat and holds the beat lease.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.deploy.services import sha256
from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "deploy" / "image" / "build"
RUN = REPO / "deploy" / "image" / "run"
# A cold build (the Debian root file system, the virtualenv) takes a few minutes on a busy two-core machine.
pytestmark = pytest.mark.timeout(1800)
TIMES: dict[str, float] = {}
ENTRYPOINT = ["/usr/bin/tini", "--", "/opt/kubemate/bin/kubemate"]
APP = "opt/kubemate/app"
# A compiler, a build tool or a header in the image fails the test.
FORBIDDEN = re.compile(
    r"^(usr/(local/)?bin/(gcc|cc|c\+\+|g\+\+|clang|make|cpp|ld|as|x86_64-linux-gnu-gcc)(-[0-9.]+)?"
    r"|usr/include/.+|usr/lib/gcc/.+)$"
)


def image_sha256(path: Path) -> str:
    return "sha256:" + sha256(path)


def crane_binary() -> str:
    paths = subprocess.run(
        [str(REPO / "deploy" / "sandbox" / "build"), "--print-paths"], capture_output=True, text=True, check=True
    ).stdout
    crane = next(line.split("=", 1)[1] for line in paths.splitlines() if line.startswith("CRANE="))
    if not os.access(crane, os.X_OK):
        subprocess.run([str(REPO / "deploy" / "sandbox" / "build"), "--only", "crane"], check=True, timeout=1200)
    return crane


@pytest.fixture(scope="module")
def crane() -> str:
    assert os.geteuid() == 0, "the image is built (mmdebstrap, chroot) and run (runc) as root"
    return crane_binary()


@pytest.fixture(scope="module")
def registry(crane, tmp_path_factory):
    """A local OCI registry on loopback (plain HTTP), blobs on disk, for this module."""
    port = free_port()
    log = tmp_path_factory.mktemp("registry") / "registry.log"
    disk = log.parent / "disk"
    disk.mkdir()
    with log.open("w") as out:
        server = subprocess.Popen(
            [crane, "registry", "serve", "--address", f"127.0.0.1:{port}", "--disk", str(disk)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while True:
        assert server.poll() is None, log.read_text()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/v2/")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the registry did not answer: " + log.read_text()
        time.sleep(0.2)
    yield f"127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def built(registry, crane):
    """deploy/image/build --push into the test's registry: the layout, the pushed reference, the build's output."""
    repository = f"{registry}/kubemate/kubemate"
    started = time.monotonic()
    result = subprocess.run([str(BUILD), "--push", repository], capture_output=True, text=True, timeout=1800)
    TIMES["build"] = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr[-6000:]
    layout = Path(result.stdout.strip().splitlines()[-1])
    assert layout == Path(subprocess.run([str(BUILD), "--print"], capture_output=True, text=True).stdout.strip())
    tag = (layout / "TAG").read_text().strip()
    return {
        "layout": layout,
        "tag": tag,
        "ref": f"{repository}:{tag}",
        "log": result.stderr,
        "buildinfo": json.loads((layout / "BUILDINFO.json").read_text()),
        "crane": crane,
    }


def crane_json(crane: str, *args: str):
    result = subprocess.run([crane, *args, "--insecure"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def pushed(crane, built):
    """The manifest and config as the registry serves them."""
    return {
        "manifest": crane_json(crane, "manifest", built["ref"]),
        "config": crane_json(crane, "config", built["ref"]),
        "digest": subprocess.run(
            [crane, "digest", "--insecure", built["ref"]], capture_output=True, text=True, check=True
        ).stdout.strip(),
    }


@pytest.fixture(scope="module")
def exported(crane, built):
    """The image's flattened file system, streamed from the registry by `crane export`: names, owners, a few files."""
    wanted = {"var/lib/dpkg/status", "etc/passwd", "etc/group", f"{APP}/.run/staticfiles/staticfiles.json"}
    entries: dict[str, tarfile.TarInfo] = {}
    contents: dict[str, bytes] = {}
    started = time.monotonic()
    command = [crane, "export", "--insecure", built["ref"], "-"]
    with (
        subprocess.Popen(command, stdout=subprocess.PIPE) as export,
        tarfile.open(fileobj=export.stdout, mode="r|") as archive,
    ):
        for member in archive:
            name = member.name.removeprefix("./").rstrip("/")
            entries[name] = member
            if name in wanted and member.isfile():
                contents[name] = archive.extractfile(member).read()
    assert export.returncode == 0
    TIMES["export"] = time.monotonic() - started
    return {"entries": entries, "names": set(entries), "contents": contents}


def test_the_pushed_image_runs_the_entrypoint_as_10001_with_production_settings(built, pushed):
    config = pushed["config"]
    assert pushed["digest"] == (built["layout"] / "DIGEST").read_text().strip()
    assert config["os"] == "linux" and config["architecture"] == "amd64"
    run = config["config"]
    assert run["User"] == "10001:10001"
    assert run["Entrypoint"] == ENTRYPOINT
    assert run["Cmd"] == ["web"]
    assert run["WorkingDir"] == "/opt/kubemate/app"
    assert run["ExposedPorts"] == {"8000/tcp": {}}
    env = dict(item.split("=", 1) for item in run["Env"])
    assert env["DJANGO_SETTINGS_MODULE"] == "kubemate.settings.production"
    assert env["PATH"].split(":")[0] == "/opt/kubemate/venv/bin"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    for key in ("KUBEMATE_CICD_STORAGE", "KUBEMATE_AI_DOCUMENTS_DIR", "KUBEMATE_BACKUP_WORKDIR"):
        assert env[key].startswith("/var/lib/kubemate/"), key
    labels = run["Labels"]
    __version__ = re.search(r'__version__ = "(.+)"', (REPO / "kubemate" / "__init__.py").read_text()).group(1)
    version, _, short = built["tag"].rpartition("-")
    assert version == __version__ == labels["org.opencontainers.image.version"]
    # Also tagged with the bare version (the chart's default tag is its appVersion).
    repository = built["ref"].rpartition(":")[0]
    assert crane_json(built["crane"], "manifest", f"{repository}:{version}") == pushed["manifest"]
    revision = labels["org.opencontainers.image.revision"]
    assert re.fullmatch(r"[0-9a-f]{40}", revision) and revision.startswith(short)
    commit_time = subprocess.run(
        ["git", "show", "-s", "--format=%ct", revision], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(commit_time)))
    assert labels["org.opencontainers.image.created"] == created
    for key in ("source", "licenses", "title"):
        assert labels[f"org.opencontainers.image.{key}"], key


def test_every_layer_is_a_tar_made_here_and_none_came_from_a_registry(built, pushed):
    manifest, config = pushed["manifest"], pushed["config"]
    layers = built["buildinfo"]["layers"]
    assert [layer["name"] for layer in layers] == ["debian", "tools", "venv", "app"]
    assert len(manifest["layers"]) == len(config["rootfs"]["diff_ids"]) == 4
    assert "annotations" not in manifest or not any("base.digest" in key for key in manifest["annotations"])
    for layer, descriptor, diff_id in zip(layers, manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        assert "urls" not in descriptor, descriptor
        assert descriptor["digest"] == layer["digest"]
        assert image_sha256(Path(layer["source_tar"])) == diff_id, layer["name"]
    # The cached layers were reused (a warm build makes only the app layer) or made now by the build itself.
    for name in ("debian", "tools", "venv"):
        assert re.search(rf"{name} layer: (cached|built in)", built["log"]), built["log"][-3000:]


def test_the_file_system_has_no_compiler_headers_or_pip(exported):
    names = exported["names"]
    assert "usr/bin/python3.11" in names and "usr/bin/tini" in names
    assert not sorted(n for n in names if FORBIDDEN.match(n))
    # base-files makes /usr/include; it must stay empty (no Python.h, no -dev package's headers).
    assert "usr/include/python3.11" not in names
    assert not [n for n in names if n.startswith("usr/include/")]
    status = exported["contents"]["var/lib/dpkg/status"].decode()
    packages = re.findall(r"^Package: (\S+)$", status, re.MULTILINE)
    assert "python3" in packages and "tini" in packages
    assert not [p for p in packages if p.endswith("-dev") or p in {"gcc", "cpp", "make", "binutils", "libc6-dev"}]
    assert not [n for n in names if n.startswith(("opt/kubemate/venv/bin/pip", "usr/share/python-wheels"))]
    assert not [n for n in names if re.match(r"opt/kubemate/venv/lib/python3\.11/site-packages/pip(/|-)", n)]
    # apt's package lists are gone (its empty lock file may stay).
    assert not [n for n, e in exported["entries"].items() if n.startswith("var/lib/apt/lists/") and e.size > 0]
    assert not [n for n in names if n.startswith("usr/share/man/") and exported["entries"][n].isfile()]
    assert not [
        n for n in names if n.startswith("usr/share/doc/") and exported["entries"][n].isfile() and "copyright" not in n
    ]


def test_the_app_is_there_with_static_files_catalogs_and_byte_code_but_no_tests(exported):
    names, entries = exported["names"], exported["entries"]
    assert f"{APP}/manage.py" in names and "opt/kubemate/bin/kubemate" in names
    assert entries["opt/kubemate/bin/kubemate"].mode & 0o111
    assert f"{APP}/locale/zh_Hans/LC_MESSAGES/django.mo" in names
    assert entries[f"{APP}/locale/zh_Hans/LC_MESSAGES/django.mo"].size > 10_000
    manifest = json.loads(exported["contents"][f"{APP}/.run/staticfiles/staticfiles.json"])
    hashed = manifest["paths"]["vendor/htmx/htmx.min.js"]
    assert f"{APP}/.run/staticfiles/{hashed}" in names and f"{APP}/.run/staticfiles/{hashed}.gz" in names
    assert f"{APP}/apps/core/__pycache__/views.cpython-311.pyc" in names
    assert f"{APP}/kubemate/settings/__pycache__/production.cpython-311.pyc" in names
    assert any(n.startswith("opt/kubemate/venv/lib/python3.11/site-packages/django/__pycache__/") for n in names)
    for absent in ("tests", "bench", ".git", ".venv", "node_modules", "deploy", ".run/services.env", "agent"):
        assert f"{APP}/{absent}" not in names, absent
    assert not [n for n in names if n.startswith(f"{APP}/.run/") and not n.startswith(f"{APP}/.run/staticfiles")]
    for tool in ("crane", "osv-scanner", "etcdctl", "etcdutl"):
        assert f"opt/kubemate/tools/bin/{tool}" in names, tool
    assert re.search(r"^kubemate:x:10001:10001:", exported["contents"]["etc/passwd"].decode(), re.MULTILINE)
    volume = entries["var/lib/kubemate"]
    assert volume.isdir() and (volume.uid, volume.gid) == (10001, 10001)
    # Nothing of Kubemate's belongs to anyone but root, except the volume's mount point: the user cannot change it.
    assert not [n for n, e in entries.items() if n.startswith("opt/") and (e.uid, e.gid) != (0, 0)][:5]


# --- running it ------------------------------------------------------------------------------------------------------


class Runner:
    """deploy/image/run with this test's database, Redis, data folder and secrets."""

    def __init__(self, layout: Path, database: str, redis_url: str, data: Path, logs: Path):
        self.layout, self.data, self.logs = layout, data, logs
        self.env = {
            "DATABASE_URL": database,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "image-test-" + "k7Qz" * 15,
            "KUBEMATE_ENCRYPTION_KEYS": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # As in production: TLS redirects on, the proxy's X-Forwarded-Proto trusted (the chart's probes send it).
            "KUBEMATE_SSL_REDIRECT": "true",
            "KUBEMATE_BEHIND_TLS_PROXY": "true",
        }
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.names: set[str] = set()

    def argv(self, name: str, *command: str, port: int | None = None, extra: dict | None = None) -> list[str]:
        self.names.add(name)
        argv = [str(RUN), "--layout", str(self.layout), "--data", str(self.data), "--name", name]
        if port:
            argv += ["--port", str(port)]
        for key, value in {**self.env, **(extra or {})}.items():
            argv += ["-e", f"{key}={value}"]
        return [*argv, *command]

    def run(self, name: str, *command: str, timeout: int = 600) -> subprocess.CompletedProcess:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "VIRTUAL_ENV"))}
        return subprocess.run(
            self.argv(name, *command),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean,
            stdin=subprocess.DEVNULL,
        )

    def start(self, name: str, *command: str, port: int | None = None, extra: dict | None = None):
        log = self.logs / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                self.argv(name, *command, port=port, extra=extra),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.processes.append((name, process))
        return process, log

    def stop(self, name: str, process: subprocess.Popen) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # runc forwards it to tini, which forwards it to the command
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        subprocess.run(["runc", "delete", "-f", name], capture_output=True)
        return process.returncode

    def remove_bundles(self) -> None:
        """The runtime bundles deploy/image/run made (their config.json holds this test's secrets)."""
        for name in self.names:
            shutil.rmtree(REPO / ".run" / "image" / "containers" / name, ignore_errors=True)


@pytest.fixture(scope="module")
def runner(built, database, redis_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("image-run")
    (folder / "data").mkdir()
    runner = Runner(built["layout"], database, redis_url, folder / "data", folder)
    yield runner
    for name, process in runner.processes:
        runner.stop(name, process)
    runner.remove_bundles()


def container_name(role: str) -> str:
    return f"kubemate-imagetest-{os.getpid()}-{role}"


@pytest.fixture(scope="module")
def migrated(runner):
    started = time.monotonic()
    result = runner.run(container_name("migrate"), "migrate", timeout=900)
    TIMES["migrate"] = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Applying core.0001_initial... OK" in result.stdout
    return runner


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Host": "127.0.0.1", "X-Forwarded-Proto": "https", **(headers or {})})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def container_pids(name: str) -> list[int]:
    result = subprocess.run(["runc", "ps", "--format", "json", name], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def test_web_answers_readyz_as_10001_without_capabilities_on_a_read_only_root(migrated, built):
    port, name = free_port(), container_name("web")
    started = time.monotonic()
    process, log = migrated.start(name, "web", port=port)
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, log.read_text()[-4000:]
        try:
            status, _, body = get(port, "/readyz")
            if status == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-4000:]
        time.sleep(0.5)
    TIMES["ready"] = time.monotonic() - started
    assert json.loads(body) == {"ready": True, "database": "ok", "redis": "ok"}
    # Production settings: plain HTTP without the proxy's header is sent to HTTPS.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/login/", headers={"Host": "127.0.0.1"})
    assert conn.getresponse().status == 301
    # A page in Chinese (the compiled catalog) and a static file from the collected, hashed set (WhiteNoise).
    status, _, page = get(port, "/login/", {"Accept-Language": "zh-hans"})
    assert status == 200 and "登录" in page.decode()
    status, _, page = get(port, "/login/", {"Accept-Language": "en"})
    assert status == 200 and "Sign in" in page.decode()
    hashed = re.search(rb'src="(/static/vendor/htmx/htmx\.min\.[0-9a-f]{12}\.js)"', page)
    assert hashed, page[:2000]
    status, headers, script = get(port, hashed.group(1).decode())
    assert status == 200 and len(script) > 10_000
    assert "immutable" in headers.get("Cache-Control", "")
    # Every process of the container runs as 10001:10001 with no capabilities, on a read-only root.
    pids = container_pids(name)
    assert len(pids) >= 3, pids  # tini, gunicorn's arbiter, its worker
    for pid in pids:
        status_lines = proc_status(pid)
        assert status_lines["Uid"].split() == ["10001"] * 4, (pid, status_lines["Uid"])
        assert status_lines["Gid"].split() == ["10001"] * 4, (pid, status_lines["Gid"])
        assert int(status_lines["CapEff"], 16) == 0 and int(status_lines["CapBnd"], 16) == 0
        assert status_lines["NoNewPrivs"] == "1"
    root_mount = next(
        line.split() for line in Path(f"/proc/{pids[0]}/mountinfo").read_text().splitlines() if line.split()[4] == "/"
    )
    assert "ro" in root_mount[5].split(","), root_mount
    assert migrated.stop(name, process) == 0, log.read_text()[-3000:]
    assert "Shutting down: Master" in log.read_text()


def test_the_root_file_system_refuses_writes_and_the_volumes_take_them(migrated):
    result = migrated.run(container_name("write"), "python", "-c", "open('/opt/kubemate/x', 'w')")
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr, result.stderr
    script = (
        "import json, os, shutil\n"
        "out = {'uid': os.getuid(), 'gid': os.getgid(), 'cc': [shutil.which(c) for c in ('cc', 'gcc', 'make')]}\n"
        "for path in ('/x', '/etc/x', '/opt/kubemate/app/x', '/usr/x', '/tmp/x', '/var/lib/kubemate/x'):\n"
        "    try:\n"
        "        open(path, 'w').write('x'); out[path] = 'written'\n"
        "    except OSError as exc:\n"
        "        out[path] = exc.strerror\n"
        "print(json.dumps(out))\n"
    )
    result = migrated.run(container_name("writes"), "python", "-c", script)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["uid"] == found["gid"] == 10001
    assert found["cc"] == [None, None, None]
    for path in ("/x", "/etc/x", "/opt/kubemate/app/x", "/usr/x"):
        assert found[path] == "Read-only file system", (path, found[path])
    assert found["/tmp/x"] == found["/var/lib/kubemate/x"] == "written"
    assert (migrated.data / "x").stat().st_uid == 10001
    # manage: any manage.py command, with the production settings.
    result = migrated.run(container_name("manage"), "manage", "check", "--deploy", "--fail-level", "ERROR")
    assert result.returncode == 0, result.stdout + result.stderr


def test_worker_answers_a_ping_writes_its_heartbeat_and_holds_the_beat(migrated, redis_url, database):
    import psycopg
    import redis
    from celery import Celery

    name = container_name("worker")
    process, log = migrated.start(name, "worker", extra={"KUBEMATE_WORKER_BEAT": "true"})
    client = Celery(broker=redis_url)
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, log.read_text()[-4000:]
        replies = client.control.ping(destination=[f"celery@{name}"], timeout=3)
        if replies:
            break
        assert time.monotonic() < deadline, log.read_text()[-4000:]
    assert replies == [{f"celery@{name}": {"ok": "pong"}}]
    beats = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while True:
        holder = None
        with psycopg.connect(database) as conn:
            row = conn.execute("SELECT holder FROM core_lease WHERE name = 'beat' AND expires_at > now()").fetchone()
            holder = row[0] if row else None
        keys = list(beats.scan_iter(match=f"kubemate:worker:{name}:*"))
        if holder and keys:
            break
        assert time.monotonic() < deadline, (holder, keys, log.read_text()[-4000:])
        time.sleep(1)
    assert name in holder
    assert migrated.stop(name, process) in (0, -signal.SIGTERM), log.read_text()[-3000:]
    assert not list(beats.scan_iter(match=f"kubemate:worker:{name}:*"))  # removed on a clean stop


def test_zz_report_sizes_and_times(built, capsys):
    """Prints what the image weighs and how long its build and start took (deploy/image/README.md numbers)."""
    layers = built["buildinfo"]["layers"]
    compressed = sum(layer["compressed_bytes"] for layer in layers)
    assert compressed > 50 * 2**20
    with capsys.disabled():
        print(
            f"\nkubemate:{built['tag']}: {compressed / 2**20:.0f} MB compressed, "
            f"{sum(layer['uncompressed_bytes'] for layer in layers) / 2**20:.0f} MB unpacked ("
            + ", ".join(
                f"{layer['name']} {layer['compressed_bytes'] / 2**20:.0f}/{layer['uncompressed_bytes'] / 2**20:.0f}"
                for layer in layers
            )
            + f" MB); build {TIMES.get('build', 0):.0f} s, export {TIMES.get('export', 0):.0f} s, "
            f"migrate {TIMES.get('migrate', 0):.0f} s, web ready {TIMES.get('ready', 0):.0f} s after start"
        )
