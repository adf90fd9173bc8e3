"""Sample material for the CI/CD pipelines, made on this machine with nothing fetched from outside: a tiny
Debian-like base image, a Java application jar with Maven dependencies, and an offline OSV vulnerability database.

Standard library only, plus the ``crane`` binary the sandbox build makes (``deploy/sandbox/build --only crane``).
The tests (tests/cicd/) and ``make demo`` use it; nothing in the console imports it.

Base image (``push_base_image``): one layer written with ``tarfile`` (``build_base_rootfs``): ``/etc/os-release``
(Debian 12 bookworm), ``/var/lib/dpkg/status`` with a few installed packages (``openssl`` at a version the
sample database marks vulnerable), ``/etc/passwd`` and ``/etc/group`` with an ``app`` user (1000), ``/app`` and
``/tmp`` (mode 1777). ``crane append`` (no base: from scratch) turns it into an image and ``crane mutate`` sets its
platform (linux/amd64), environment, working directory and user. Entries have fixed times, owners and order, so
the same layer, and so the same image digest, comes out on every run.

Application jar (``build_jar``): a real jar: ``META-INF/MANIFEST.MF`` with a ``Main-Class``, valid class files
written by ``ClassFile`` (Java 8 format, a ``main`` that prints one line: ``java -jar`` runs it where a JDK is),
``META-INF/maven/<group>/<artifact>/pom.properties``, and each dependency as a nested jar (stored, as Spring Boot
does) under ``BOOT-INF/lib/`` with its own ``pom.properties``. osv-scanner's Java archive extractor
(osv-scalibr ``java/archive``) opens nested ``*.jar`` entries at any path and reads every ``pom.properties``, so
it reports the application and each dependency as a Maven package (``group:artifact``, version).

Offline OSV database (``build_osv_db``): ``<dir>/osv-scalibr/<Ecosystem>/all.zip``, one OSV JSON file a
vulnerability, the layout osv-scanner v2.5.1 reads with ``--offline`` when ``OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY``
(or ``--local-db-path``) is ``<dir>``. The folder is the base ecosystem (``Maven``, ``Debian``); a record names the
release in its ``affected[].package.ecosystem`` (``Debian:12``), as OSV's own Debian records do. Every ecosystem
found in a scanned image needs its ``all.zip`` (an empty one will do: ``ecosystems=``): without it osv-scanner
reports nothing at all, for any ecosystem, and exits 0 (only a line on stderr: ``could not load db for Maven
ecosystem``).

Bundle (``write_osv_bundle`` / ``unpack_osv_bundle``): the one file a user uploads to refresh the database on an
air-gapped install: a zip holding ``manifest.json`` (``{"format": "kubemate-osv-bundle", "version": 1, "created":
ISO date, "ecosystems": {"Maven": <records>, ...}}``) and one ``<Ecosystem>/all.zip`` per ecosystem (each as OSV
publishes it: https://osv-vulnerabilities.storage.googleapis.com/<Ecosystem>/all.zip).

As a script:

    python deploy/local/cicd_samples.py push-base 127.0.0.1:5000/library/debian:bookworm
    python deploy/local/cicd_samples.py jar /tmp/app.jar
    python deploy/local/cicd_samples.py osv-db /tmp/osv          # then OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY=/tmp/osv
    python deploy/local/cicd_samples.py osv-bundle /tmp/osv-bundle.zip
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import re
import struct
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "deploy" / "sandbox" / "build"

# Every entry of the samples carries this time, so the same bytes come out on every run.
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ZIP_TIME = (2026, 1, 1, 0, 0, 0)

# --- the sample application and its vulnerabilities ------------------------------------------------------------

APP = ("com.example", "orders", "1.4.2")
APP_DEPENDENCIES = [
    ("org.apache.logging.log4j", "log4j-core", "2.14.1"),  # the planted critical vulnerability
    ("org.apache.logging.log4j", "log4j-api", "2.14.1"),
    ("com.fasterxml.jackson.core", "jackson-databind", "2.17.2"),
]
JVM_OPTIONS = ["-XX:MaxRAMPercentage=75.0", "-XX:+ExitOnOutOfMemoryError", "-Djava.security.egd=file:/dev/./urandom"]

# Installed packages of the base image: (package, source, version, architecture, installed size KiB, description).
BASE_PACKAGES = [
    ("base-files", "", "12.4+deb12u7", "amd64", 341, "Debian base system miscellaneous files"),
    ("libc6", "glibc", "2.36-9+deb12u8", "amd64", 12988, "GNU C Library: Shared libraries"),
    ("zlib1g", "zlib", "1:1.2.13.dfsg-1", "amd64", 168, "compression library - runtime"),
    ("libssl3", "openssl", "3.0.11-1~deb12u2", "amd64", 6345, "Secure Sockets Layer toolkit - shared libraries"),
    ("openssl", "", "3.0.11-1~deb12u2", "amd64", 2290, "Secure Sockets Layer toolkit - cryptographic utility"),
    ("ca-certificates", "", "20230311", "all", 382, "Common CA certificates"),
]

SAMPLE_MAVEN_ID = "GHSA-q8v4-9m7x-cf2h"
SAMPLE_DEBIAN_ID = "DSA-9001-1"

SAMPLE_RECORDS = [
    {
        "schema_version": "1.6.0",
        "id": SAMPLE_MAVEN_ID,
        "modified": "2026-11-20T08:00:00Z",
        "published": "2026-11-18T12:00:00Z",
        "aliases": ["CVE-2021-44228"],
        "summary": "Remote code execution in Apache Log4j 2 through JNDI lookups in logged data (sample record)",
        "details": "Sample advisory of the Kubemate demo. An attacker who controls a logged string can make Log4j "
        "load and run code from a remote server through a JNDI lookup. Upgrade log4j-core to 2.17.1 or later.",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}],
        "affected": [
            {
                "package": {
                    "ecosystem": "Maven",
                    "name": "org.apache.logging.log4j:log4j-core",
                    "purl": "pkg:maven/org.apache.logging.log4j/log4j-core",
                },
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0-beta9"}, {"fixed": "2.17.1"}]}],
                "database_specific": {"source": "kubemate-sample"},
            }
        ],
        "references": [{"type": "ADVISORY", "url": "https://nvd.nist.gov/vuln/detail/CVE-2021-44228"}],
        "database_specific": {"severity": "CRITICAL", "cwe_ids": ["CWE-502", "CWE-917"], "github_reviewed": True},
    },
    {
        "schema_version": "1.6.0",
        "id": SAMPLE_DEBIAN_ID,
        "modified": "2026-11-21T08:00:00Z",
        "published": "2026-11-19T09:00:00Z",
        "aliases": ["CVE-2024-5535"],
        "summary": "openssl: buffer over-read in SSL_select_next_proto (sample record)",
        "details": "Sample advisory of the Kubemate demo. Calling SSL_select_next_proto with an empty supported "
        "client protocols buffer may crash or send memory contents to the peer. Upgrade openssl to 3.0.15-1~deb12u1.",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "openssl", "purl": "pkg:deb/debian/openssl?arch=source"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.15-1~deb12u1"}]}],
                "database_specific": {"source": "kubemate-sample"},
            }
        ],
        "references": [{"type": "ADVISORY", "url": "https://security-tracker.debian.org/tracker/CVE-2024-5535"}],
        "database_specific": {"severity": "HIGH"},
    },
]


# --- tools -----------------------------------------------------------------------------------------------------


def tool(name: str) -> Path:
    """The path of a binary of the sandbox build (``crane``, ``osv-scanner``); RuntimeError if it is not built."""
    key = name.upper().replace("-", "_") + "="
    done = subprocess.run([str(BUILD), "--print-paths"], capture_output=True, text=True, timeout=60, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(key):
            path = Path(line.split("=", 1)[1])
            if path.exists():
                return path
            raise RuntimeError(f"{path} is missing: build it with deploy/sandbox/build --only {name}")
    raise RuntimeError(f"deploy/sandbox/build --print-paths names no {key[:-1]}: {done.stdout}{done.stderr}")


def crane_run(crane, *args, insecure: bool = True, timeout: float = 120) -> str:
    """Run crane; its standard output, stripped. RuntimeError with its error output if it fails."""
    argv = [str(crane), *args] + (["--insecure"] if insecure else [])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


# --- base image ------------------------------------------------------------------------------------------------

OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

USERS = """\
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
app:x:1000:1000:app:/app:/usr/sbin/nologin
"""

GROUPS = """\
root:x:0:
nogroup:x:65534:
app:x:1000:
"""

BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "TZ": "UTC",
}
BASE_USER = "1000"
BASE_WORKDIR = "/app"


def dpkg_status(packages=BASE_PACKAGES) -> str:
    """``/var/lib/dpkg/status``: one stanza an installed package, as dpkg writes them."""
    stanzas = []
    for name, source, version, arch, size, description in packages:
        lines = [
            f"Package: {name}",
            "Status: install ok installed",
            "Priority: optional",
            "Section: libs",
            f"Installed-Size: {size}",
            "Maintainer: Debian Sample Maintainers <samples@example.org>",
            f"Architecture: {arch}",
        ]
        if source:
            lines.append(f"Source: {source}")
        lines += [f"Version: {version}", f"Description: {description}"]
        stanzas.append("\n".join(lines) + "\n")
    return "\n".join(stanzas)


def _add(tar: tarfile.TarFile, name: str, *, data: bytes | None = None, mode: int = 0o644, uid: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = int(EPOCH.timestamp())
    info.uid = info.gid = uid
    info.uname = info.gname = "root" if uid == 0 else "app"
    info.mode = mode
    if data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def build_base_rootfs(folder) -> Path:
    """Write the base image's one layer as ``<folder>/base-layer.tar``; its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "base-layer.tar"
    dirs = [
        ("etc", 0o755),
        ("var", 0o755),
        ("var/lib", 0o755),
        ("var/lib/dpkg", 0o755),
        ("var/lib/dpkg/info", 0o755),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("usr/lib", 0o755),
        ("usr/share", 0o755),
        ("usr/share/doc", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
    ]
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode in dirs:
            _add(tar, name + "/", mode=mode)
        _add(tar, "app/", mode=0o755, uid=1000)
        _add(tar, "etc/os-release", data=OS_RELEASE.encode())
        _add(tar, "etc/debian_version", data=b"12.7\n")
        _add(tar, "etc/passwd", data=USERS.encode())
        _add(tar, "etc/group", data=GROUPS.encode())
        _add(tar, "var/lib/dpkg/status", data=dpkg_status().encode())
        for name, *_ in BASE_PACKAGES:
            # dpkg's list of the files a package installed: its copyright file here.
            _add(tar, f"usr/share/doc/{name}/", mode=0o755)
            _add(tar, f"usr/share/doc/{name}/copyright", data=f"{name}: sample copyright file\n".encode())
            listing = f"/.\n/usr\n/usr/share\n/usr/share/doc\n/usr/share/doc/{name}\n/usr/share/doc/{name}/copyright\n"
            _add(tar, f"var/lib/dpkg/info/{name}.list", data=listing.encode())
    return path


def push_base_image(crane, registry_ref: str, insecure: bool = True, folder=None) -> str:
    """Build the base image from scratch and push it as ``registry_ref`` (``host:port/repo:tag``); its digest
    (``sha256:…``). ``crane append`` makes the image of the layer, ``crane mutate`` sets its config and pushes the
    result under the same tag."""
    with tempfile.TemporaryDirectory(prefix="kubemate-base-") as tmp:
        layer = build_base_rootfs(Path(folder or tmp))
        crane_run(crane, "append", "-f", str(layer), "-t", registry_ref, insecure=insecure)
        env = [arg for key, value in BASE_ENV.items() for arg in ("-e", f"{key}={value}")]
        pushed = crane_run(
            crane,
            "mutate",
            registry_ref,
            "--set-platform",
            "linux/amd64",
            *env,
            "-w",
            BASE_WORKDIR,
            "-u",
            BASE_USER,
            "-l",
            "org.opencontainers.image.title=debian-sample",
            "-t",
            registry_ref,
            insecure=insecure,
        )
    return pushed.rsplit("@", 1)[1]


def build_app_layer(jar, path, name: str = "app/app.jar") -> Path:
    """A layer tarball holding ``jar`` at ``/app/app.jar`` (readable by all, owned by root); its path."""
    path = Path(path)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "app/", mode=0o755, uid=1000)
        _add(tar, name, data=Path(jar).read_bytes())
    return path


# --- jar -------------------------------------------------------------------------------------------------------


class ClassFile:
    """A minimal Java class file (version 52, Java 8): a public class extending ``java.lang.Object`` with a
    public constructor and ``public static void main(String[])`` that prints ``message``."""

    def __init__(self, name: str, message: str):
        self.name = name.replace(".", "/")
        self.message = message
        self._pool: list[bytes] = []
        self._index: dict[bytes, int] = {}

    def _entry(self, data: bytes) -> int:
        if data not in self._index:
            self._pool.append(data)
            self._index[data] = len(self._pool)
        return self._index[data]

    def utf8(self, text: str) -> int:
        raw = text.encode()
        return self._entry(struct.pack(">BH", 1, len(raw)) + raw)

    def klass(self, name: str) -> int:
        return self._entry(struct.pack(">BH", 7, self.utf8(name)))

    def string(self, text: str) -> int:
        return self._entry(struct.pack(">BH", 8, self.utf8(text)))

    def name_and_type(self, name: str, descriptor: str) -> int:
        return self._entry(struct.pack(">BHH", 12, self.utf8(name), self.utf8(descriptor)))

    def member(self, tag: int, owner: str, name: str, descriptor: str) -> int:
        return self._entry(struct.pack(">BHH", tag, self.klass(owner), self.name_and_type(name, descriptor)))

    def _method(self, access: int, name: str, descriptor: str, max_stack: int, max_locals: int, code: bytes):
        body = struct.pack(">HHI", max_stack, max_locals, len(code)) + code + struct.pack(">HH", 0, 0)
        return struct.pack(">HHHH", access, self.utf8(name), self.utf8(descriptor), 1) + (
            struct.pack(">HI", self.utf8("Code"), len(body)) + body
        )

    def to_bytes(self) -> bytes:
        this = self.klass(self.name)
        parent = self.klass("java/lang/Object")
        init = self.member(10, "java/lang/Object", "<init>", "()V")
        out = self.member(9, "java/lang/System", "out", "Ljava/io/PrintStream;")
        println = self.member(10, "java/io/PrintStream", "println", "(Ljava/lang/String;)V")
        message = self.string(self.message)
        if message > 255:
            raise ValueError("constant pool too large for ldc")
        constructor = self._method(
            0x0001, "<init>", "()V", 1, 1, bytes([0x2A, 0xB7]) + struct.pack(">H", init) + bytes([0xB1])
        )
        main = self._method(
            0x0009,  # public static
            "main",
            "([Ljava/lang/String;)V",
            2,
            1,
            bytes([0xB2])
            + struct.pack(">H", out)  # getstatic System.out
            + bytes([0x12, message])  # ldc message
            + bytes([0xB6])
            + struct.pack(">H", println)  # invokevirtual println
            + bytes([0xB1]),  # return
        )
        source = self.utf8("SourceFile")
        source_file = self.utf8(self.name.rsplit("/", 1)[-1] + ".java")
        head = struct.pack(">IHHH", 0xCAFEBABE, 0, 52, len(self._pool) + 1) + b"".join(self._pool)
        return (
            head
            + struct.pack(">HHHHH", 0x0021, this, parent, 0, 0)  # public super; no interfaces, no fields
            + struct.pack(">H", 2)
            + constructor
            + main
            + struct.pack(">HHIH", 1, source, 2, source_file)
        )


def _manifest(attributes: dict) -> bytes:
    lines = ["Manifest-Version: 1.0", "Created-By: kubemate cicd_samples"]
    lines += [f"{key}: {value}" for key, value in attributes.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _pom_properties(group: str, artifact: str, version: str) -> bytes:
    return f"#Created by Apache Maven 3.9.9\ngroupId={group}\nartifactId={artifact}\nversion={version}\n".encode()


def _zip_entry(archive: zipfile.ZipFile, name: str, data: bytes, stored: bool = False) -> None:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.compress_type = zipfile.ZIP_STORED if stored or name.endswith("/") else zipfile.ZIP_DEFLATED
    info.external_attr = (0o40755 << 16) | 0x10 if name.endswith("/") else 0o644 << 16
    archive.writestr(info, data)


def _package_of(group: str, artifact: str) -> str:
    return group.replace(".", "/") + "/" + re.sub(r"[^A-Za-z0-9]", "", artifact)


def _jar_bytes(group: str, artifact: str, version: str, main_class: str, nested: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as jar:
        _zip_entry(jar, "META-INF/", b"")
        attributes = {
            "Main-Class": main_class,
            "Implementation-Title": artifact,
            "Implementation-Version": version,
            "Implementation-Vendor-Id": group,
        }
        if nested:
            attributes["Spring-Boot-Lib"] = "BOOT-INF/lib/"
        _zip_entry(jar, "META-INF/MANIFEST.MF", _manifest(attributes))
        package = main_class.rsplit(".", 1)[0].replace(".", "/")
        parts = package.split("/")
        for i in range(1, len(parts) + 1):
            _zip_entry(jar, "/".join(parts[:i]) + "/", b"")
        _zip_entry(
            jar, main_class.replace(".", "/") + ".class", ClassFile(main_class, f"{artifact} {version}").to_bytes()
        )
        health = package + "/Health"
        _zip_entry(jar, health + ".class", ClassFile(health, "ok").to_bytes())
        maven = f"META-INF/maven/{group}/{artifact}/"
        _zip_entry(jar, "META-INF/maven/", b"")
        _zip_entry(jar, f"META-INF/maven/{group}/", b"")
        _zip_entry(jar, maven, b"")
        _zip_entry(jar, maven + "pom.properties", _pom_properties(group, artifact, version))
        if nested:
            _zip_entry(jar, "BOOT-INF/", b"")
            _zip_entry(jar, "BOOT-INF/lib/", b"")
            for name, data in nested:
                _zip_entry(jar, f"BOOT-INF/lib/{name}", data, stored=True)  # nested jars stay uncompressed
    return buffer.getvalue()


def build_jar(path, group: str, artifact: str, version: str, dependencies=(), main_class: str = "") -> Path:
    """Write an executable jar for ``group:artifact:version`` at ``path`` with each ``(group, artifact, version)``
    of ``dependencies`` nested under ``BOOT-INF/lib/``; its path."""
    main_class = main_class or _package_of(group, artifact).replace("/", ".") + ".Application"
    nested = []
    for dep_group, dep_artifact, dep_version in dependencies:
        dep_main = _package_of(dep_group, dep_artifact).replace("/", ".") + ".Sample"
        data = _jar_bytes(dep_group, dep_artifact, dep_version, dep_main, [])
        nested.append((f"{dep_artifact}-{dep_version}.jar", data))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_jar_bytes(group, artifact, version, main_class, nested))
    return path


def build_sample_jar(path) -> Path:
    """The demo application's jar: ``com.example:orders:1.4.2`` with log4j 2.14.1 and jackson-databind."""
    return build_jar(path, *APP, dependencies=APP_DEPENDENCIES)


# --- OSV database ----------------------------------------------------------------------------------------------

ECOSYSTEM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9 ._+-]*$")


def ecosystems_of(record: dict) -> set[str]:
    """The database folders a record goes in: the base ecosystem of each affected package (``Debian:12`` →
    ``Debian``)."""
    return {a["package"]["ecosystem"].split(":", 1)[0] for a in record.get("affected", []) if a.get("package")}


def _all_zip(records: list[dict]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in sorted(records, key=lambda r: r["id"]):
            _zip_entry(archive, f"{record['id']}.json", json.dumps(record, indent=2).encode())
    return buffer.getvalue()


def _by_ecosystem(records, ecosystems=()) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {name: [] for name in ecosystems}
    for record in records:
        for name in ecosystems_of(record):
            grouped.setdefault(name, []).append(record)
    return grouped


def build_osv_db(folder, records=SAMPLE_RECORDS, ecosystems=("Maven", "Debian")) -> Path:
    """Write ``<folder>/osv-scalibr/<Ecosystem>/all.zip`` for each ecosystem of ``records`` (and an empty one for
    each of ``ecosystems`` without records); ``folder``, the value of ``OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY``."""
    folder = Path(folder)
    for name, group in _by_ecosystem(records, ecosystems).items():
        target = folder / "osv-scalibr" / name / "all.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_all_zip(group))
    return folder


def write_osv_bundle(path, records=SAMPLE_RECORDS, created: str = "", ecosystems=("Maven", "Debian")) -> Path:
    """Write the upload bundle (``manifest.json`` + ``<Ecosystem>/all.zip``) at ``path``; its path."""
    grouped = _by_ecosystem(records, ecosystems)
    manifest = {
        "format": "kubemate-osv-bundle",
        "version": 1,
        "created": created or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ecosystems": {name: len(group) for name, group in sorted(grouped.items())},
    }
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as bundle:
        _zip_entry(bundle, "manifest.json", json.dumps(manifest, indent=2).encode())
        for name, group in sorted(grouped.items()):
            _zip_entry(bundle, f"{name}/all.zip", _all_zip(group), stored=True)
    return path


def unpack_osv_bundle(bundle, folder) -> dict:
    """Check an uploaded bundle and write its databases under ``<folder>/osv-scalibr/``; its manifest.
    ValueError if it is not a bundle (no or wrong manifest, an entry outside ``<Ecosystem>/all.zip``, an
    ``all.zip`` that is not a zip)."""
    with zipfile.ZipFile(bundle) as archive:
        try:
            manifest = json.loads(archive.read("manifest.json"))
        except (KeyError, ValueError) as error:
            raise ValueError(f"no readable manifest.json: {error}") from error
        if manifest.get("format") != "kubemate-osv-bundle" or manifest.get("version") != 1:
            raise ValueError("manifest.json is not a kubemate-osv-bundle version 1")
        databases = {}
        for name in archive.namelist():
            if name == "manifest.json" or name.endswith("/"):
                continue
            ecosystem, _, rest = name.partition("/")
            if rest != "all.zip" or not ECOSYSTEM_NAME.match(ecosystem):
                raise ValueError(f"unexpected entry {name!r}: entries are manifest.json and <Ecosystem>/all.zip")
            data = archive.read(name)
            try:
                zipfile.ZipFile(io.BytesIO(data)).testzip()
            except zipfile.BadZipFile as error:
                raise ValueError(f"{name} is not a zip: {error}") from error
            databases[ecosystem] = data
    for ecosystem, data in databases.items():
        target = Path(folder) / "osv-scalibr" / ecosystem / "all.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return manifest


# --- script ----------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser("push-base", help="build the base image and push it; prints its digest")
    push.add_argument("ref", help="host:port/repository:tag")
    push.add_argument("--crane", default="", help="the crane binary (default: the sandbox build's)")
    push.add_argument("--secure", action="store_true", help="the registry speaks HTTPS (default: plain HTTP)")
    jar = commands.add_parser("jar", help="write the sample application jar")
    jar.add_argument("path")
    db = commands.add_parser("osv-db", help="write the sample offline OSV database under a folder")
    db.add_argument("folder")
    bundle = commands.add_parser("osv-bundle", help="write the sample database as an upload bundle")
    bundle.add_argument("path")
    args = parser.parse_args(argv)
    if args.command == "push-base":
        print(push_base_image(args.crane or tool("crane"), args.ref, insecure=not args.secure))
    elif args.command == "jar":
        print(build_sample_jar(args.path))
    elif args.command == "osv-db":
        print(build_osv_db(args.folder))
    else:
        print(write_osv_bundle(args.path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
