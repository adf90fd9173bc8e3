"""The offline install bundle (deploy/bundle): built, checked, installed without a network, run from its own units.

One bundle is built (`deploy/bundle/build`, with the host agent and a small OCI image layout made here) into a
temporary folder and read back: its SHA256SUMS, SBOM, MANIFEST and env template. It is then unpacked and installed
with the bundle's `install --prefix DIR --no-systemd --user` into a fresh virtualenv with pip's index switched off
(--no-index, PIP_NO_INDEX) and every proxy pointing at a closed port, against a database of its own on the
project-local PostgreSQL. The web, worker and web terminal are started with the ExecStart, Environment,
EnvironmentFile and WorkingDirectory of the units the installer rendered, so the units are what is tested; a person
created with the installed kubemate-manage signs in over HTTP, and the worker answers a ping and holds the beat.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.deploy.services import sha256
from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "deploy" / "bundle" / "build"
# Building, installing and starting take a few minutes on a busy two-core machine.
pytestmark = pytest.mark.timeout(1800)
CLOSED_PROXY = "http://127.0.0.1:9"
FULL_NAME = ("Bundle", "Tester")
TIMES: dict[str, float] = {}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            found[normalize(name)] = version.strip()
    return found


def make_oci_layout(folder: Path) -> str:
    """A minimal valid OCI image layout (one layer holding one file); returns its manifest digest."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return digest

    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as archive:
        content = b"kubemate bundle test layer\n"
        info = tarfile.TarInfo("etc/kubemate-test")
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    layer = gzip.compress(layer_tar.getvalue(), mtime=0)
    layer_digest = blob(layer)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer_tar.getvalue()).hexdigest()}"]},
        }
    ).encode()
    config_digest = blob(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{config_digest}",
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": f"sha256:{layer_digest}",
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    manifest_digest = blob(manifest)
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": f"sha256:{manifest_digest}",
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "bundle-test"},
            }
        ],
    }
    (folder / "index.json").write_text(json.dumps(index))
    # as deploy/image/build lists its base layer's packages
    (folder / "debian-packages.txt").write_text("python3.11 3.11.2-6+deb12u6 amd64\ntzdata 2025b-0+deb12u2 all\n")
    return f"sha256:{manifest_digest}"


# --- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch():
    """A short path under /tmp (virtualenv scripts' #! lines must stay short); removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="kmb-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def built(scratch):
    """deploy/bundle/build with the host agent and an OCI image layout: the tarball and what went in."""
    agent = subprocess.run([str(REPO / "agent" / "build.sh")], capture_output=True, text=True, timeout=600)
    assert agent.returncode == 0, agent.stderr
    layout = scratch / "oci"
    digest = make_oci_layout(layout)
    started = time.monotonic()
    result = subprocess.run(
        [str(BUILD), "--out", str(scratch / "out"), "--image-layout", str(layout)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    TIMES["build"] = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    tarball = Path(result.stdout.strip().splitlines()[-1])
    assert tarball.is_file(), result.stdout
    return {"tarball": tarball, "image_digest": digest, "agent": Path(agent.stdout.strip()), "log": result.stderr}


@pytest.fixture(scope="module")
def bundle(built, scratch) -> Path:
    """The unpacked bundle folder."""
    target = scratch / "unpacked"
    target.mkdir()
    subprocess.run(["tar", "-xzf", str(built["tarball"]), "-C", str(target)], check=True, timeout=300)
    (folder,) = target.iterdir()
    return folder


def offline_env() -> dict[str, str]:
    """The caller's environment with pip's index off and every proxy a closed port: a fetch would fail."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "DJANGO_", "VIRTUAL_ENV"))}
    env.update(
        PIP_NO_INDEX="1",
        http_proxy=CLOSED_PROXY,
        https_proxy=CLOSED_PROXY,
        HTTP_PROXY=CLOSED_PROXY,
        HTTPS_PROXY=CLOSED_PROXY,
        no_proxy="",
        NO_PROXY="",
        PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    )
    return env


def run_install(bundle: Path, prefix: Path, env_file: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [str(bundle / "install"), "--prefix", str(prefix), "--no-systemd", "--user", "--env-file", str(env_file)]
    return subprocess.run(
        [*command, *extra], capture_output=True, text=True, env=offline_env(), timeout=1200, cwd=bundle
    )


@pytest.fixture(scope="module")
def installed(bundle, scratch, database, redis_url):
    prefix, env_file = scratch / "prefix", scratch / "kubemate.env"
    ports = {"web": free_port(), "terminal": free_port()}
    sets = {
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "KUBEMATE_BIND": f"127.0.0.1:{ports['web']}",
        "KUBEMATE_TERMINAL_PORT": str(ports["terminal"]),
    }
    started = time.monotonic()
    result = run_install(bundle, prefix, env_file, *(arg for k, v in sets.items() for arg in ("--set", f"{k}={v}")))
    TIMES["install"] = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {"prefix": prefix, "env_file": env_file, "ports": ports, "result": result, "redis": redis_url}


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def parse_unit(path: Path) -> dict[str, list[str]]:
    """The [Service] settings of a unit file: key -> values in order."""
    settings: dict[str, list[str]] = {}
    section = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "Service":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def unit_command(path: Path) -> tuple[list[str], dict[str, str], str]:
    """argv, environment and working directory of a unit, as systemd would expand them."""
    unit = parse_unit(path)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    for line in unit.get("Environment", []):
        for assignment in shlex.split(line):
            key, _, value = assignment.partition("=")
            env[key] = value
    for name in unit.get("EnvironmentFile", []):  # settings from the file override Environment=
        env.update(read_env_file(Path(name.lstrip("-"))))
    (exec_start,) = unit["ExecStart"]
    exec_start = exec_start.lstrip("-@+!:").replace("%H", socket.gethostname()).replace("%%", "%")

    def expand(word: str) -> str:
        def value(match: re.Match) -> str:
            assert match.group(1) in env, f"{path.name}: ${{{match.group(1)}}} is not set by the unit or env file"
            return env[match.group(1)]

        return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value, word)

    argv = [expand(word) for word in shlex.split(exec_start)]
    (workdir,) = unit["WorkingDirectory"]
    return argv, env, workdir


class Http:
    """A few requests to the console as nginx would pass them (X-Forwarded-Proto: https), cookies kept by hand
    (they are Secure, so an ordinary client would not send them over plain HTTP to loopback)."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None, https=True):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        if https:
            sent["X-Forwarded-Proto"] = "https"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        conn.close()
        return response.status, dict(response.getheaders()), text


@pytest.fixture(scope="module")
def running(installed):
    """web, worker and web terminal started from the rendered units' commands; stopped (process groups) after."""
    prefix = installed["prefix"]
    processes = {}
    logs = {}
    for name in ("web", "worker", "terminal"):
        argv, env, workdir = unit_command(prefix / "systemd" / f"kubemate-{name}.service")
        logs[name] = prefix.parent / f"{name}.log"
        with logs[name].open("w") as log:
            processes[name] = subprocess.Popen(
                argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
    try:
        web = Http(installed["ports"]["web"])
        deadline = time.monotonic() + 120
        while True:
            for name, process in processes.items():
                assert process.poll() is None, f"{name} exited: {logs[name].read_text()[-3000:]}"
            try:
                status, _headers, body = web.request("GET", "/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"/readyz never answered 200: {logs['web'].read_text()[-3000:]}"
            time.sleep(0.5)
        TIMES["ready"] = 120 - (deadline - time.monotonic())
        yield {**installed, "processes": processes, "logs": logs, "readyz": json.loads(body)}
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        import redis

        # Tasks the worker's beat queued and nobody took are not left for the next user of this Redis database.
        client = redis.Redis.from_url(installed["redis"])
        client.delete("celery", "unacked", "unacked_index")
        client.close()


def installed_manage(installed, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(installed["prefix"] / "bin" / "kubemate-manage"), *args],
        capture_output=True,
        text=True,
        env=offline_env(),
        timeout=300,
    )


# --- the tarball ---------------------------------------------------------------------------------------------------


def built_commit(tarball: Path) -> str:
    """The commit the MANIFEST names (HEAD may have moved on since the build: others commit meanwhile)."""
    with tarfile.open(tarball) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("/MANIFEST"))
        text = archive.extractfile(member).read().decode()
    return re.search(r"^commit:\s+([0-9a-f]{40})", text, re.M).group(1)


def test_the_tarball_is_versioned_and_written_deterministically(built):
    tarball = built["tarball"]
    commit = built_commit(tarball)
    init = subprocess.run(["git", "show", f"{commit}:kubemate/__init__.py"], capture_output=True, text=True, cwd=REPO)
    version = re.search(r'__version__ = "(.+)"', init.stdout).group(1)
    assert tarball.name == f"kubemate-{version}-{commit[:7]}-linux-x86_64-py311.tar.gz"
    log = subprocess.run(["git", "log", "-1", "--format=%ct", commit], capture_output=True, text=True, cwd=REPO)
    epoch = int(log.stdout)
    with tarfile.open(tarball) as archive:
        members = archive.getmembers()
    tops = {m.name.split("/", 1)[0] for m in members}
    assert tops == {tarball.name.removesuffix("-linux-x86_64-py311.tar.gz")}
    assert {(m.uid, m.gid) for m in members} == {(0, 0)}
    assert {int(m.mtime) for m in members} == {epoch}
    assert all(m.isfile() or m.isdir() for m in members)
    names = {m.name.split("/", 1)[1] for m in members if "/" in m.name}
    for required in ("install", "MANIFEST", "SHA256SUMS", "sbom.cdx.json", "INSTALL.md", "UPGRADE.md"):
        assert required in names
    # what a release must not carry
    assert not [n for n in names if re.search(r"(^|/)(tests|bench|\.git|node_modules|__pycache__)(/|$)", n)]
    assert not [n for n in names if n.startswith("app/.run/") and not n.startswith("app/.run/staticfiles")]
    # gzip without a name or time, so the same inputs give the same bytes
    header = tarball.read_bytes()[:10]
    assert header[3] & 0x08 == 0 and header[4:8] == b"\0\0\0\0"
    assert (tarball.parent / (tarball.name + ".sha256")).read_text().split()[0] == sha256(tarball)


def test_sha256sums_lists_every_file_and_each_one_matches(bundle):
    listed = {}
    for line in (bundle / "SHA256SUMS").read_text().splitlines():
        digest, path = line[:64], line[66:]
        assert re.fullmatch(r"[0-9a-f]{64}", digest) and line[64:66] == "  "
        listed[path] = digest
    files = {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert files == set(listed)
    assert {path for path, digest in listed.items() if sha256(bundle / path) != digest} == set()


def test_the_bundle_holds_the_application_wheels_agent_chart_and_image(bundle, built):
    app = bundle / "app"
    for path in ("manage.py", "kubemate/settings/production.py", "templates/base.html", "requirements.txt"):
        assert (app / path).is_file(), path
    assert (app / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.mo").stat().st_size > 10_000
    assert (app / "static" / "vendor" / "VERSIONS").is_file()
    manifest = json.loads((app / ".run" / "staticfiles" / "staticfiles.json").read_text())
    assert len(manifest["paths"]) > 100
    assert any(p.startswith("vendor/tabler") for p in manifest["paths"])
    wheels = {normalize(w.name.split("-", 1)[0]) for w in (bundle / "wheels").glob("*.whl")}
    assert (
        set(pins(bundle / "app" / "requirements.txt")) | set(pins(bundle / "app" / "requirements-nodeps.txt")) <= wheels
    )
    assert sha256(bundle / "agent" / "kubemate-agent") == sha256(built["agent"])
    assert (bundle / "agent" / "deploy" / "kubemate-agent.service").is_file()
    (chart,) = (bundle / "helm").glob("kubemate-*.tgz")
    with tarfile.open(chart) as archive:
        assert "kubemate/Chart.yaml" in archive.getnames()
    index = json.loads((bundle / "image" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == built["image_digest"]
    blob = bundle / "image" / "blobs" / "sha256" / built["image_digest"].split(":")[1]
    assert "sha256:" + sha256(blob) == built["image_digest"]


def test_the_manifest_names_versions_and_says_nothing_is_missing(bundle, built):
    text = (bundle / "MANIFEST").read_text()
    version = (bundle / "VERSION").read_text().strip()
    assert f"version:      {version}" in text
    commit = built_commit(built["tarball"])
    assert version.endswith(commit[:7])
    assert subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO).returncode == 0
    assert f"digest {built['image_digest']}" in text
    assert re.search(r"agent/\s+kubemate-agent \d", text)
    assert re.search(r"helm/\s+kubemate-[\d.]+\.tgz", text)
    assert re.search(r"wheels/\s+\d+ wheels", text)
    assert "missing: nothing" in text


def test_the_sbom_is_cyclonedx_and_lists_every_pinned_package_with_its_wheel_hash(bundle, built):
    bom = json.loads((bundle / "sbom.cdx.json").read_text())
    assert bom["bomFormat"] == "CycloneDX"
    assert bom["specVersion"] in {"1.5", "1.6"}
    assert re.fullmatch(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", bom["serialNumber"])
    assert isinstance(bom["version"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", bom["metadata"]["timestamp"])
    assert bom["metadata"]["component"]["name"] == "kubemate"

    def walk(components):
        for component in components:
            yield component
            yield from walk(component.get("components", []))

    components = list(walk(bom["components"]))
    refs = [c["bom-ref"] for c in components] + [bom["metadata"]["component"]["bom-ref"]]
    assert len(refs) == len(set(refs)), "bom-refs must be unique"
    types = {"application", "framework", "library", "container", "platform", "operating-system", "file"}
    lengths = {"SHA-256": 64, "SHA-512": 128}
    for component in components:
        assert component["type"] in types and component["name"] and component.get("version"), component
        for digest in component.get("hashes", []):
            assert re.fullmatch(rf"[0-9a-f]{{{lengths[digest['alg']]}}}", digest["content"]), component
        for entry in component.get("licenses", []):
            assert ("expression" in entry) != ("license" in entry), component
            if "license" in entry:
                assert {"id", "name"} & set(entry["license"]), component
        if "purl" in component:
            assert re.fullmatch(r"pkg:[a-z]+/\S+@\S+", component["purl"]), component
    for dependency in bom["dependencies"]:
        assert dependency["ref"] in refs and set(dependency["dependsOn"]) <= set(refs)

    pypi = {c["purl"]: c for c in components if c.get("purl", "").startswith("pkg:pypi/")}
    wheels = {w.name: w for w in (bundle / "wheels").glob("*.whl")}
    for requirements in ("requirements.txt", "requirements-nodeps.txt"):
        for name, version in pins(bundle / "app" / requirements).items():
            component = pypi.get(f"pkg:pypi/{name}@{version}")
            assert component, f"{name}=={version} of {requirements} is not in the SBOM"
            wheel = next(p["value"] for p in component["properties"] if p["name"] == "kubemate:wheel")
            assert component["hashes"] == [{"alg": "SHA-256", "content": sha256(wheels[wheel])}]
    assert len(pypi) == len(wheels)
    assert pypi["pkg:pypi/django@" + pins(bundle / "app" / "requirements.txt")["django"]]["licenses"]

    lock = json.loads((bundle / "app" / "package-lock.json").read_text())
    for path, entry in lock["packages"].items():
        if path and not entry.get("dev"):
            name = path.rsplit("node_modules/", 1)[1]
            npm = [
                c for c in components if c.get("purl") == f"pkg:npm/{name.replace('@', '%40', 1)}@{entry['version']}"
            ]
            assert npm, f"npm {name}@{entry['version']} is not in the SBOM"
            expected = base64.b64decode(entry["integrity"].removeprefix("sha512-")).hex()
            assert npm[0]["hashes"] == [{"alg": "SHA-512", "content": expected}]
    assert not [c for c in components if c.get("purl", "").startswith("pkg:npm/esbuild@")], "dev tools are not shipped"

    (agent,) = [c for c in components if c["name"] == "kubemate-agent"]
    assert agent["hashes"][0]["content"] == sha256(built["agent"])
    go = subprocess.run(["go", "version", str(built["agent"])], capture_output=True, text=True, check=True)
    toolchain = go.stdout.split(":", 1)[1].strip()
    assert f"pkg:golang/stdlib@v{toolchain.removeprefix('go')}" in {c.get("purl") for c in agent["components"]}

    (image,) = [c for c in components if c["type"] == "container"]
    assert image["hashes"] == [{"alg": "SHA-256", "content": built["image_digest"].split(":")[1]}]
    debs = {c["purl"] for c in image["components"]}
    assert debs == {
        "pkg:deb/debian/python3.11@3.11.2-6%2Bdeb12u6?arch=amd64",
        "pkg:deb/debian/tzdata@2025b-0%2Bdeb12u2?arch=all",
    }
    (chart,) = [c for c in components if c["name"].endswith("(Helm chart)")]
    (chart_file,) = (bundle / "helm").glob("*.tgz")
    assert chart["hashes"][0]["content"] == sha256(chart_file)


def test_the_env_template_lists_every_setting_and_the_units_read_only_what_they_set(bundle):
    template = (bundle / "systemd" / "kubemate.env").read_text()
    listed = set(re.findall(r"^#([A-Z][A-Z0-9_]*)=", template, re.M))
    assert not re.findall(r"^[A-Z][A-Z0-9_]*=", template, re.M), "the template sets nothing: every line is commented"
    read = set()
    for path in (bundle / "app" / "kubemate" / "settings").glob("*.py"):
        if path.name != "test.py":
            source = path.read_text()
            read |= set(re.findall(r"\benv(?:_bool|_int|_list)?\(\s*\"([A-Z][A-Z0-9_]*)\"", source))
            read |= set(re.findall(r"\"(KUBEMATE_LDAP_[A-Z_]+)\"", source))
    assert len(read) > 60
    assert read - listed == set()
    for unit in (bundle / "systemd").glob("*.service"):
        settings = parse_unit(unit)
        assert settings["User"] == ["@USER@"] and settings["EnvironmentFile"] == ["@ENV_FILE@"]
        assert settings["ExecStart"][0].startswith("@PREFIX@/current/venv/bin/")
        defaults = {a.split("=", 1)[0] for line in settings["Environment"] for a in shlex.split(line)}
        assert set(re.findall(r"\$\{(\w+)\}", settings["ExecStart"][0])) <= defaults, unit.name
        assert set(re.findall(r"\$\{(\w+)\}", settings["ExecStart"][0])) <= listed, unit.name
        assert "DJANGO_SETTINGS_MODULE=kubemate.settings.production" in settings["Environment"][0]


# --- the installation ----------------------------------------------------------------------------------------------


def test_install_builds_the_release_offline_with_its_settings(installed, bundle):
    prefix, output = installed["prefix"], installed["result"].stdout
    version = (bundle / "VERSION").read_text().strip()
    assert f"all {len((bundle / 'SHA256SUMS').read_text().splitlines())} files match" in output
    assert os.readlink(prefix / "current") == f"releases/{version}"
    python = prefix / "current" / "venv" / "bin" / "python"
    probe = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    assert probe.stdout.strip() == "(3, 11)"
    frozen = subprocess.run([python, "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True)
    installed_versions = {
        normalize(line.split("==", 1)[0]): line.split("==", 1)[1] for line in frozen.stdout.splitlines() if "==" in line
    }
    for requirements in ("requirements.txt", "requirements-nodeps.txt"):
        for name, version_pin in pins(bundle / "app" / requirements).items():
            assert installed_versions.get(name) == version_pin, f"{name}: {installed_versions.get(name)}"
    env_file = installed["env_file"]
    assert env_file.stat().st_mode & 0o777 == 0o600
    values = read_env_file(env_file)
    assert len(values["SECRET_KEY"]) >= 50
    fernet = subprocess.run(
        [
            python,
            "-c",
            "import sys; from cryptography.fernet import Fernet; Fernet(sys.argv[1])",
            values["KUBEMATE_ENCRYPTION_KEYS"],
        ],
        capture_output=True,
    )
    assert fernet.returncode == 0
    assert values["KUBEMATE_CICD_STORAGE"] == str(prefix / "data" / "cicd")
    assert (prefix / "data" / "cicd").is_dir()
    assert "System check identified no issues" in output + installed["result"].stderr
    # The rendered units pass systemd's own check (syntax, known keys, executables).
    units = sorted(str(p) for p in (prefix / "systemd").iterdir())
    verify = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr


def test_install_again_is_harmless(installed, bundle):
    prefix, env_file = installed["prefix"], installed["env_file"]
    before = env_file.read_bytes()
    venv_python = (prefix / "current" / "venv" / "bin" / "python").resolve().stat()
    result = run_install(bundle, prefix, env_file, "--set", "SECRET_KEY=" + "x" * 60)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "already installed" in result.stdout and "kept as it is" in result.stdout
    assert "--set is ignored" in result.stdout
    assert env_file.read_bytes() == before
    assert (prefix / "current" / "venv" / "bin" / "python").resolve().stat().st_ino == venv_python.st_ino
    assert "No migrations to apply" in result.stdout


def test_a_changed_or_added_file_is_refused(bundle, scratch):
    for case in ("changed", "added"):
        copy = scratch / f"tampered-{case}" / bundle.name
        copy.parent.mkdir()
        subprocess.run(["cp", "-al", str(bundle), str(copy)], check=True)  # hard links: cheap, and ...
        if case == "changed":
            target = copy / "app" / "manage.py"
            text = target.read_text()
            target.unlink()  # ... a new file, so the original stays as it was
            target.write_text(text + "\nimport os  # changed\n")
        else:
            (copy / "wheels" / "extra-0.1-py3-none-any.whl").write_bytes(b"PK\x05\x06" + b"\0" * 18)
        prefix = scratch / f"tampered-{case}-prefix"
        result = run_install(copy, prefix, scratch / f"tampered-{case}.env")
        assert result.returncode != 0
        reason = "does not match SHA256SUMS" if case == "changed" else "files not in SHA256SUMS"
        assert reason in result.stderr, result.stderr
        assert not (prefix / "releases").exists()
        shutil.rmtree(copy.parent)


def test_an_upgrade_switches_current_and_a_rollback_switches_it_back(installed, bundle, scratch):
    """A newer bundle (this one relabelled) installs beside the running release; --rollback points back."""
    prefix, env_file = installed["prefix"], installed["env_file"]
    version = (bundle / "VERSION").read_text().strip()
    newer = scratch / "newer" / bundle.name
    newer.parent.mkdir()
    subprocess.run(["cp", "-al", str(bundle), str(newer)], check=True)
    (newer / "VERSION").unlink()
    (newer / "VERSION").write_text(f"{version}.1\n")
    sums = (newer / "SHA256SUMS").read_text()
    (newer / "SHA256SUMS").unlink()
    (newer / "SHA256SUMS").write_text(
        re.sub(r"^[0-9a-f]{64}  VERSION$", f"{sha256(newer / 'VERSION')}  VERSION", sums, flags=re.M)
    )
    try:
        result = run_install(newer, prefix, env_file)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert os.readlink(prefix / "current") == f"releases/{version}.1"
        assert os.readlink(prefix / "previous") == f"releases/{version}"
        assert (prefix / "releases" / version / ".complete").is_file(), "the previous release is kept"
        assert "No migrations to apply" in result.stdout

        back = run_install(newer, prefix, env_file, "--rollback")
        assert back.returncode == 0, back.stdout + back.stderr
        assert os.readlink(prefix / "current") == f"releases/{version}"
        assert os.readlink(prefix / "previous") == f"releases/{version}.1"
    finally:
        if os.readlink(prefix / "current") != f"releases/{version}":
            os.symlink(f"releases/{version}", prefix / "current.test")
            os.replace(prefix / "current.test", prefix / "current")
        (prefix / "previous").unlink(missing_ok=True)
        shutil.rmtree(prefix / "releases" / f"{version}.1", ignore_errors=True)
        shutil.rmtree(newer.parent, ignore_errors=True)


# --- running it ------------------------------------------------------------------------------------------------------


def test_web_from_its_unit_serves_the_production_console_and_a_person_signs_in(running):
    assert running["readyz"] == {"ready": True, "database": "ok", "redis": "ok"}
    first, last = FULL_NAME
    create = installed_manage(
        running,
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_superuser('bundle-admin', 'admin@bank.example', 'Bundle-Pass-2026!', "
        f"first_name='{first}', last_name='{last}')",
    )
    assert create.returncode == 0, create.stderr
    web = Http(running["ports"]["web"])
    # production settings: plain HTTP is sent to HTTPS (nginx terminates TLS and says so in X-Forwarded-Proto)
    status, headers, _ = web.request("GET", "/login/", https=False)
    assert status == 301 and headers["Location"].startswith("https://")
    status, headers, page = web.request("GET", "/login/")
    assert status == 200 and "Strict-Transport-Security" in headers
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    # the collected static files are served (WhiteNoise, hashed names)
    stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page).group(1)
    assert web.request("GET", stylesheet)[0] == 200
    # the compiled Chinese catalogue is there
    assert (
        "用户名" in Http(running["ports"]["web"]).request("GET", "/login/", headers={"Accept-Language": "zh-hans"})[2]
    )
    origin = f"https://127.0.0.1:{running['ports']['web']}"
    body = f"csrfmiddlewaretoken={token}&username=bundle-admin&password=Bundle-Pass-2026%21&next="
    status, headers, _ = web.request(
        "POST",
        "/login/",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": origin,
            "Referer": f"{origin}/login/",
        },
    )
    assert status == 302, status
    assert "kubemate_session" in web.cookies
    location = urlsplit(headers["Location"]).path or "/"
    status, _, dashboard = web.request("GET", location)
    assert status == 200
    assert f"{first} {last}" in dashboard


def test_worker_from_its_unit_answers_and_holds_the_beat(running):
    argv, env, workdir = unit_command(running["prefix"] / "systemd" / "kubemate-worker.service")
    celery = argv[0]
    node = next(a for a in argv if a.startswith("worker@"))
    deadline = time.monotonic() + 90
    while True:
        assert running["processes"]["worker"].poll() is None, running["logs"]["worker"].read_text()[-3000:]
        ping = subprocess.run(
            [celery, "-A", "kubemate", "inspect", "ping", "-d", node, "--timeout", "5", "--json"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ping.returncode == 0 and json.loads(ping.stdout.strip().splitlines()[-1]).get(node) == {"ok": "pong"}:
            break
        assert time.monotonic() < deadline, ping.stdout + ping.stderr
        time.sleep(2)
    # KUBEMATE_WORKER_BEAT from the unit: this worker holds the beat lease
    deadline = time.monotonic() + 60
    while True:
        lease = installed_manage(
            running,
            "shell",
            "-c",
            "from django.utils import timezone; from apps.core.models import Lease; "
            "print(Lease.objects.filter(name='beat', expires_at__gt=timezone.now()).exclude(holder='').count())",
        )
        assert lease.returncode == 0, lease.stderr
        if lease.stdout.strip().endswith("1"):
            break
        assert time.monotonic() < deadline, running["logs"]["worker"].read_text()[-3000:]
        time.sleep(2)


def test_the_web_terminal_from_its_unit_listens(running):
    deadline = time.monotonic() + 60
    while True:
        assert running["processes"]["terminal"].poll() is None, running["logs"]["terminal"].read_text()[-3000:]
        try:
            socket.create_connection(("127.0.0.1", running["ports"]["terminal"]), timeout=2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, running["logs"]["terminal"].read_text()[-3000:]
            time.sleep(0.5)


def test_zz_report_sizes_and_times(built, bundle, installed, capsys):
    """Prints what the bundle weighs and how long building and installing took (README numbers)."""
    size = built["tarball"].stat().st_size
    unpacked = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    release = sum(p.stat().st_size for p in (installed["prefix"] / "releases").rglob("*") if p.is_file())
    assert size > 50 * 1024 * 1024 and unpacked > size
    with capsys.disabled():
        print(
            f"\nbundle {built['tarball'].name}: {size / 2**20:.0f} MB ({unpacked / 2**20:.0f} MB unpacked); "
            f"build {TIMES.get('build', 0):.0f} s, install {TIMES.get('install', 0):.0f} s "
            f"(release {release / 2**20:.0f} MB), web ready {TIMES.get('ready', 0):.0f} s after start"
        )
