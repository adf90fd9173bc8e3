"""The CI/CD pipelines' image tools as real binaries (deploy/sandbox/build --only crane,osv-scanner): crane v0.22.1
builds an application image offline on the sample Debian base (deploy/local/cicd_samples.py), writes it to a local
tarball, and pushes it to a real registry (tests/plugins/registry.py) whose digest and config are read back;
osv-scanner v2.5.1 scans the tarball offline against the sample OSV database (unpacked from an upload bundle) and
finds the planted Maven and Debian vulnerabilities with their fixed versions, writes SBOMs, exits with its
documented codes, and opens no connection (a recording proxy on loopback counts every attempt)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import socket
import struct
import subprocess
import sys
import tarfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The registry fixture (oci_registry). Once tests/conftest.py lists "tests.plugins.registry", this line goes.

ROOT = Path(__file__).resolve().parents[2]


def load_samples():
    """deploy/local/cicd_samples.py as a module (the same one tests.plugins.registry.cicd_samples() loads; not
    imported from there, so that the plugin module is first imported by pytest, which rewrites its asserts)."""
    if "kubemate_cicd_samples" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "kubemate_cicd_samples", ROOT / "deploy" / "local" / "cicd_samples.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["kubemate_cicd_samples"] = module
        spec.loader.exec_module(module)
    return sys.modules["kubemate_cicd_samples"]


samples = load_samples()

# One JVM option holds a comma: crane's --entrypoint is a list flag that splits on commas unless the value is
# quoted the CSV way (see csv_flag).
JAVA_ENTRYPOINT = ["java", *samples.JVM_OPTIONS, "-Dspring.profiles.active=prod,k8s", "-jar", "/app/app.jar"]
MAVEN_PURLS = {
    "pkg:maven/com.example/orders@1.4.2",
    "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
    "pkg:maven/org.apache.logging.log4j/log4j-api@2.14.1",
    "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.17.2",
}


def csv_flag(values: list[str]) -> str:
    """A list for one crane list flag (``--entrypoint``, ``--cmd``): pflag reads each value as a CSV line, so a
    value holding a comma or a quote is quoted."""
    return ",".join('"' + v.replace('"', '""') + '"' if ("," in v or '"' in v) else v for v in values)


class Recorder:
    """A proxy on a free loopback port that answers nothing and records the first bytes of every connection: set
    as HTTP_PROXY/HTTPS_PROXY, it sees each request a Go program tries to send out."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            try:
                self.connections.append(conn.recv(512))
            except OSError:
                self.connections.append(b"")
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    connections: list = field(default_factory=list)

    def json(self) -> dict:
        return json.loads(self.stdout)


def run(argv: list, env: dict | None = None, timeout: float = 120) -> Run:
    start = time.monotonic()
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=env)
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def osv_scan(osv: Path, db: Path, archive: Path, *flags: str) -> Run:
    """``osv-scanner scan image --archive ARCHIVE --offline FLAGS`` with the database at ``db``, through a
    recording proxy; the run with the connections the proxy saw."""
    recorder = Recorder()
    env = {
        **os.environ,
        "OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY": str(db),
        "HTTPS_PROXY": recorder.url,
        "HTTP_PROXY": recorder.url,
        "https_proxy": recorder.url,
        "http_proxy": recorder.url,
        "NO_PROXY": "",
        "no_proxy": "",
    }
    env.pop("ALL_PROXY", None)
    try:
        result = run([osv, "scan", "image", "--archive", *flags, archive], env=env)
    finally:
        recorder.close()
    result.connections = recorder.connections
    return result


def findings(report: dict) -> list[dict]:
    """One row per (package, vulnerability) of osv-scanner's JSON: what a pipeline's report page shows."""
    rows = []
    for result in report["results"]:
        for entry in result["packages"]:
            package = entry["package"]
            for vuln in entry.get("vulnerabilities", []):
                fixed = sorted(
                    event["fixed"]
                    for affected in vuln["affected"]
                    if affected["package"]["name"] == package["name"]
                    for r in affected.get("ranges", [])
                    for event in r["events"]
                    if "fixed" in event
                )
                group = next(g for g in entry["groups"] if vuln["id"] in g["ids"])
                rows.append(
                    {
                        "source": result["source"]["path"],
                        "type": result["source"]["type"],
                        "name": package["name"],
                        "os_package_name": package.get("os_package_name", ""),
                        "version": package["version"],
                        "ecosystem": package["ecosystem"],
                        "layer": package["image_origin_details"]["index"],
                        "id": vuln["id"],
                        "aliases": vuln.get("aliases", []),
                        "severity": vuln.get("database_specific", {}).get("severity", ""),
                        "cvss": [s["score"] for s in vuln.get("severity", [])],
                        "max_severity": group["max_severity"],
                        "fixed": fixed,
                    }
                )
    return rows


# --- fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tools() -> dict:
    return {"crane": samples.tool("crane"), "osv": samples.tool("osv-scanner")}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cicd-image-tools")


@pytest.fixture(scope="module")
def space() -> str:
    """A repository prefix of this module's own (the session's registry is shared)."""
    return f"cicd-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def base(oci_registry, tools, space) -> dict:
    ref = oci_registry.ref(f"{space}/debian", "bookworm")
    start = time.monotonic()
    digest = samples.push_base_image(tools["crane"], ref)
    return {"ref": ref, "digest": digest, "seconds": time.monotonic() - start}


@pytest.fixture(scope="module")
def image(base, work, oci_registry, tools, space) -> dict:
    """The application image built on the base and written to a local tarball, not pushed:
    ``crane mutate BASE --append LAYER --entrypoint … -e … --set-platform linux/amd64 -t REF -o image.tar``."""
    jar = samples.build_sample_jar(work / "app.jar")
    layer = samples.build_app_layer(jar, work / "app-layer.tar")
    target = oci_registry.ref(f"{space}/orders", "1.4.2")
    tarball = work / "image.tar"
    built = run(
        [
            tools["crane"],
            "mutate",
            base["ref"],
            "--append",
            layer,
            "--entrypoint",
            csv_flag(JAVA_ENTRYPOINT),
            "-e",
            "JAVA_TOOL_OPTIONS=-Dfile.encoding=UTF-8",
            "-e",
            "APP_VERSION=1.4.2",
            "-l",
            "org.opencontainers.image.version=1.4.2",
            "--set-platform",
            "linux/amd64",
            "-t",
            target,
            "-o",
            tarball,
            "--insecure",
        ]
    )
    assert built.returncode == 0, built.stderr
    assert built.stdout == ""  # -o writes the tarball and pushes nothing
    return {"tarball": tarball, "ref": target, "repository": f"{space}/orders", "jar": jar, "seconds": built.seconds}


@pytest.fixture(scope="module")
def osv_db(work) -> Path:
    """The sample database as a user would upload it (one bundle), unpacked where osv-scanner reads it."""
    bundle = samples.write_osv_bundle(work / "osv-bundle.zip", created="2026-12-01T00:00:00Z")
    folder = work / "osv"
    samples.unpack_osv_bundle(bundle, folder)
    return folder


# --- crane ------------------------------------------------------------------------------------------------------


def test_base_image_is_built_offline_pushed_and_reproducible(base, oci_registry, tools, space):
    assert base["digest"].startswith("sha256:") and len(base["digest"]) == 71
    assert oci_registry.digest(base["ref"]) == base["digest"]
    assert oci_registry.tags(f"{space}/debian") == ["bookworm"]

    config = oci_registry.config(base["ref"])
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["config"]["User"] == "1000"
    assert config["config"]["WorkingDir"] == "/app"
    assert "LANG=C.UTF-8" in config["config"]["Env"]
    manifest = oci_registry.manifest(base["ref"])
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert len(manifest["layers"]) == 1

    # The same bytes every time: a second push elsewhere gives the same digest.
    again = samples.push_base_image(tools["crane"], oci_registry.ref(f"{space}/debian-again", "bookworm"))
    assert again == base["digest"]

    # The filesystem as a container sees it (crane export flattens the layers into one tar on stdout).
    exported = subprocess.run(
        [str(tools["crane"]), "export", base["ref"], "-", "--insecure"], capture_output=True, timeout=60, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        members = {m.name.strip("/"): m for m in tar.getmembers()}
        assert members["tmp"].mode == 0o1777
        assert members["app"].uid == 1000
        os_release = tar.extractfile("etc/os-release").read().decode()
        status = tar.extractfile("var/lib/dpkg/status").read().decode()
    assert 'VERSION_ID="12"' in os_release and "VERSION_CODENAME=bookworm" in os_release
    assert "Package: openssl\nStatus: install ok installed" in status
    assert "Version: 3.0.11-1~deb12u2" in status


def test_app_image_goes_to_a_tarball_then_is_pushed_with_the_same_digest(image, base, oci_registry, tools, work):
    assert oci_registry.tags(image["repository"]) == []  # built, not pushed yet

    local = run([tools["crane"], "digest", "--tarball", image["tarball"]])
    assert local.returncode == 0, local.stderr
    pushed = run([tools["crane"], "push", image["tarball"], image["ref"], "--insecure"])
    assert pushed.returncode == 0, pushed.stderr
    # crane push prints the pushed image by digest: 127.0.0.1:PORT/<repo>@sha256:…
    assert pushed.stdout.strip() == f"{image['ref'].rsplit(':', 1)[0]}@{local.stdout.strip()}"
    assert oci_registry.digest(image["ref"]) == local.stdout.strip()
    assert oci_registry.tags(image["repository"]) == ["1.4.2"]

    config = oci_registry.config(image["ref"])
    assert config["config"]["Entrypoint"] == JAVA_ENTRYPOINT
    assert config["config"].get("Cmd") is None
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    env = config["config"]["Env"]
    assert "JAVA_TOOL_OPTIONS=-Dfile.encoding=UTF-8" in env and "LANG=C.UTF-8" in env  # added to the base's
    assert config["config"]["User"] == "1000" and config["config"]["WorkingDir"] == "/app"  # kept from the base
    assert config["config"]["Labels"]["org.opencontainers.image.version"] == "1.4.2"

    # The base layer is reused as is; the application is one more layer.
    base_layers = [layer["digest"] for layer in oci_registry.manifest(base["ref"])["layers"]]
    layers = [layer["digest"] for layer in oci_registry.manifest(image["ref"])["layers"]]
    assert layers[:1] == base_layers and len(layers) == 2

    # crane pull writes the same kind of tarball (docker save format) from the registry.
    pulled = run([tools["crane"], "pull", image["ref"], work / "pulled.tar", "--insecure"])
    assert pulled.returncode == 0, pulled.stderr
    again = run([tools["crane"], "digest", "--tarball", work / "pulled.tar"])
    assert again.stdout.strip() == local.stdout.strip()
    with tarfile.open(work / "pulled.tar") as tar:
        assert "manifest.json" in tar.getnames()


def test_append_pushes_directly_or_writes_a_tarball(base, oci_registry, tools, work, space):
    layer = samples.build_app_layer(samples.build_sample_jar(work / "append.jar"), work / "append-layer.tar")
    ref = oci_registry.ref(f"{space}/appended", "1")
    pushed = run([tools["crane"], "append", "-b", base["ref"], "-f", layer, "-t", ref, "--insecure"])
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.strip() == f"{ref.rsplit(':', 1)[0]}@{oci_registry.digest(ref)}"
    config = oci_registry.config(ref)
    assert "Entrypoint" not in config["config"] or not config["config"]["Entrypoint"]  # append sets no config
    assert "LANG=C.UTF-8" in config["config"]["Env"]

    local_ref = oci_registry.ref(f"{space}/appended-local", "1")
    written = run(
        [tools["crane"], "append", "-b", base["ref"], "-f", layer, "-t", local_ref, "-o", work / "a.tar", "--insecure"]
    )
    assert written.returncode == 0, written.stderr
    assert (work / "a.tar").stat().st_size > 0
    assert oci_registry.tags(f"{space}/appended-local") == []


# --- osv-scanner --------------------------------------------------------------------------------------------------


def test_offline_scan_finds_the_planted_vulnerabilities_and_opens_no_connection(image, osv_db, tools):
    scan = osv_scan(tools["osv"], osv_db, image["tarball"], "--offline", "--format", "json")
    assert scan.returncode == 1, scan.stderr  # 1: vulnerabilities found
    assert scan.connections == []
    assert scan.seconds < 30
    assert "Loaded Maven local db" in scan.stderr and "Loaded Debian local db" in scan.stderr
    report = scan.json()
    rows = findings(report)

    assert {row["id"] for row in rows} == {samples.SAMPLE_MAVEN_ID, samples.SAMPLE_DEBIAN_ID}
    (log4j,) = [row for row in rows if row["id"] == samples.SAMPLE_MAVEN_ID]
    assert log4j == {
        "source": "/app/app.jar",
        "type": "artifact",
        "name": "org.apache.logging.log4j:log4j-core",
        "os_package_name": "",
        "version": "2.14.1",
        "ecosystem": "Maven",
        "layer": 1,
        "id": samples.SAMPLE_MAVEN_ID,
        "aliases": ["CVE-2021-44228"],
        "severity": "CRITICAL",
        "cvss": ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"],
        "max_severity": "10.0",
        "fixed": ["2.17.1"],
    }
    openssl = [row for row in rows if row["id"] == samples.SAMPLE_DEBIAN_ID]
    assert {row["os_package_name"] for row in openssl} == {"openssl", "libssl3"}  # binary packages of one source
    for row in openssl:
        assert (row["source"], row["type"], row["name"]) == ("/var/lib/dpkg/status", "os", "openssl")
        assert (row["ecosystem"], row["version"], row["layer"]) == ("Debian:12", "3.0.11-1~deb12u2", 0)
        assert row["aliases"] == ["CVE-2024-5535"] and row["severity"] == "HIGH" and row["max_severity"] == "7.5"
        assert row["fixed"] == ["3.0.15-1~deb12u1"]

    # image_origin_details.index points into image_metadata.layer_metadata: base layer 0, application layer 1.
    with tarfile.open(image["tarball"]) as tar:  # docker save format: manifest.json names the config file
        (entry,) = json.loads(tar.extractfile("manifest.json").read())
        diff_ids = json.loads(tar.extractfile(entry["Config"]).read())["rootfs"]["diff_ids"]
    layers = report["image_metadata"]["layer_metadata"]
    assert [layer["diff_id"] for layer in layers] == diff_ids
    assert report["image_metadata"]["os"] == "Debian GNU/Linux 12 (bookworm)"


def test_sboms_list_the_packages(image, osv_db, tools):
    every = osv_scan(tools["osv"], osv_db, image["tarball"], "--offline", "--all-packages", "--format", "json")
    assert every.returncode == 1
    packages = {
        (p["package"]["name"], p["package"].get("os_package_name", ""), p["package"]["version"])
        for r in every.json()["results"]
        for p in r["packages"]
    }
    assert ("com.example:orders", "", "1.4.2") in packages
    assert ("com.fasterxml.jackson.core:jackson-databind", "", "2.17.2") in packages
    assert ("glibc", "libc6", "2.36-9+deb12u8") in packages
    assert len(packages) == 10

    # CycloneDX: language packages only; osv-scanner v2.5.1 has no purl type for Debian and leaves them out.
    cdx = osv_scan(tools["osv"], osv_db, image["tarball"], "--offline", "--all-packages", "--format", "cyclonedx-1-5")
    assert cdx.returncode == 1
    bom = cdx.json()
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.5")
    assert {c["purl"] for c in bom["components"]} == MAVEN_PURLS
    assert "unable to determine purl type of openssl@3.0.11-1~deb12u2 (Debian:12)" in cdx.stderr
    (vuln,) = bom["vulnerabilities"]
    assert vuln["id"] == samples.SAMPLE_MAVEN_ID
    assert vuln["affects"] == [{"ref": "pkg:maven/org.apache.logging.log4j/log4j-core"}]

    # SPDX 2.3 lists every package, Debian ones with their deb purl.
    spdx = osv_scan(tools["osv"], osv_db, image["tarball"], "--offline", "--all-packages", "--format", "spdx-2-3")
    assert spdx.returncode == 1
    document = spdx.json()
    assert document["spdxVersion"] == "SPDX-2.3"
    purls = {ref["referenceLocator"] for p in document["packages"] for ref in p.get("externalRefs", [])}
    assert purls >= MAVEN_PURLS
    assert "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=bookworm" in purls
    assert "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=bookworm&source=openssl" in purls
    assert all(scan.connections == [] for scan in (every, cdx, spdx))


def test_exit_codes_and_an_incomplete_database(image, tools, work):
    clean = samples.build_osv_db(work / "osv-clean", records=[])
    scan = osv_scan(tools["osv"], clean, image["tarball"], "--offline", "--format", "json")
    assert scan.returncode == 0, scan.stderr  # 0: nothing found
    assert scan.json()["results"] == []

    # A database without an ecosystem the image has: osv-scanner says so on stderr, reports nothing, exits 0.
    partial = samples.build_osv_db(work / "osv-partial", ecosystems=("Debian",), records=[samples.SAMPLE_RECORDS[1]])
    assert not (partial / "osv-scalibr" / "Maven").exists()
    scan = osv_scan(tools["osv"], partial, image["tarball"], "--offline", "--format", "json")
    assert scan.returncode == 0
    assert "could not load db for Maven ecosystem" in scan.stderr
    assert scan.json()["results"] == []

    (work / "not-an-image.tar").write_text("hello\n")
    scan = osv_scan(tools["osv"], clean, work / "not-an-image.tar", "--offline", "--format", "json")
    assert scan.returncode == 127  # any other error
    assert "failed to load image from tarball" in scan.stderr

    lonely = work / "lonely"
    lonely.mkdir()
    with tarfile.open(lonely / "layer.tar", "w") as tar:
        info = tarfile.TarInfo("readme.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    made = run([tools["crane"], "append", "-f", lonely / "layer.tar", "-t", "local/lonely:1", "-o", lonely / "i.tar"])
    assert made.returncode == 0, made.stderr
    scan = osv_scan(tools["osv"], clean, lonely / "i.tar", "--offline", "--format", "json")
    assert scan.returncode == 128  # no packages found
    assert "No package sources found" in scan.stderr


def test_offline_vulnerabilities_alone_still_calls_out(image, osv_db, tools):
    """``--offline-vulnerabilities`` only keeps the database local: the base image lookup (deps.dev) still tries
    the network, which is why the pipelines pass ``--offline``. The recording proxy is what it reaches."""
    scan = osv_scan(tools["osv"], osv_db, image["tarball"], "--offline-vulnerabilities", "--format", "json")
    assert scan.returncode == 1
    assert any(c.startswith(b"CONNECT api.deps.dev:443") for c in scan.connections), scan.connections
    assert {row["id"] for row in findings(scan.json())} == {samples.SAMPLE_MAVEN_ID, samples.SAMPLE_DEBIAN_ID}


# --- the samples themselves -------------------------------------------------------------------------------------


def test_osv_bundle_round_trip_and_refusals(work):
    bundle = samples.write_osv_bundle(work / "bundle.zip", created="2026-12-01T00:00:00Z")
    with zipfile.ZipFile(bundle) as archive:
        assert sorted(archive.namelist()) == ["Debian/all.zip", "Maven/all.zip", "manifest.json"]
        with zipfile.ZipFile(io.BytesIO(archive.read("Maven/all.zip"))) as maven:
            assert maven.namelist() == [f"{samples.SAMPLE_MAVEN_ID}.json"]
            assert json.loads(maven.read(maven.namelist()[0]))["affected"][0]["package"]["ecosystem"] == "Maven"
    manifest = samples.unpack_osv_bundle(bundle, work / "unpacked")
    assert manifest == {
        "format": "kubemate-osv-bundle",
        "version": 1,
        "created": "2026-12-01T00:00:00Z",
        "ecosystems": {"Debian": 1, "Maven": 1},
    }
    direct = samples.build_osv_db(work / "direct")
    for ecosystem in ("Maven", "Debian"):
        path = Path("osv-scalibr") / ecosystem / "all.zip"
        assert (work / "unpacked" / path).read_bytes() == (direct / path).read_bytes()

    def bundle_of(entries: dict) -> Path:
        path = work / f"bad-{uuid.uuid4().hex[:6]}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
        return path

    good_manifest = json.dumps({"format": "kubemate-osv-bundle", "version": 1})
    with open(bundle, "rb") as f:
        maven_zip = zipfile.ZipFile(f).read("Maven/all.zip")
    for entries, message in [
        ({"Maven/all.zip": maven_zip}, "no readable manifest.json"),
        ({"manifest.json": '{"format": "other"}', "Maven/all.zip": maven_zip}, "not a kubemate-osv-bundle"),
        ({"manifest.json": good_manifest, "../Maven/all.zip": maven_zip}, "unexpected entry"),
        ({"manifest.json": good_manifest, "Maven/other.json": b"{}"}, "unexpected entry"),
        ({"manifest.json": good_manifest, "Maven/all.zip": b"not a zip"}, "is not a zip"),
    ]:
        with pytest.raises(ValueError, match=message):
            samples.unpack_osv_bundle(bundle_of(entries), work / "refused")
    assert not (work / "refused").exists()


def test_the_jar_is_a_real_fat_jar(image):
    with zipfile.ZipFile(image["jar"]) as jar:
        names = jar.namelist()
        assert names[:2] == ["META-INF/", "META-INF/MANIFEST.MF"]
        manifest = jar.read("META-INF/MANIFEST.MF").decode()
        assert "Main-Class: com.example.orders.Application\r\n" in manifest
        assert jar.read("META-INF/maven/com.example/orders/pom.properties").decode().splitlines()[1:] == [
            "groupId=com.example",
            "artifactId=orders",
            "version=1.4.2",
        ]
        main = jar.read("com/example/orders/Application.class")
        magic, minor, major, pool = struct.unpack(">IHHH", main[:10])
        assert (magic, minor, major) == (0xCAFEBABE, 0, 52) and pool > 10
        assert b"com/example/orders/Application" in main and b"([Ljava/lang/String;)V" in main
        nested = [info for info in jar.infolist() if info.filename.startswith("BOOT-INF/lib/")]
        assert [i.filename for i in nested if i.filename.endswith(".jar")] == [
            "BOOT-INF/lib/log4j-core-2.14.1.jar",
            "BOOT-INF/lib/log4j-api-2.14.1.jar",
            "BOOT-INF/lib/jackson-databind-2.17.2.jar",
        ]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in nested)  # nested jars are stored, as Spring Boot's
        with zipfile.ZipFile(io.BytesIO(jar.read("BOOT-INF/lib/log4j-core-2.14.1.jar"))) as inner:
            props = inner.read("META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties").decode()
            assert "version=2.14.1" in props
            assert inner.read("org/apache/logging/log4j/log4jcore/Sample.class")[:4] == b"\xca\xfe\xba\xbe"
    # Same inputs, same bytes (the image digest depends on it).
    again = samples.build_sample_jar(image["jar"].with_name("again.jar"))
    assert again.read_bytes() == image["jar"].read_bytes()
