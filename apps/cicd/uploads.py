"""Jars and wars handed to pipelines: what one holds (checked with bounds before anything is built from it), the
start templates (where the archive goes in the image, how the JVM starts and takes its options), and the image
layer that carries it. Pure: no database, no registry."""

from __future__ import annotations

import re
import tarfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.utils.translation import gettext_lazy as _

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

MAX_ENTRIES = 200_000
MAX_SMALL_FILE = 64 * 1024


class NotAnArchive(Failure):
    """The upload is not a Java archive this can build; the sentence says why."""


@dataclass(frozen=True)
class Template:
    label: object
    target: str  # where the archive goes
    entrypoint: tuple[str, ...]
    jvm_env: str  # the variable the JVM options go in (read by the JVM or the server's start script)
    workdir: str
    user: str
    war: bool


TEMPLATES: dict[str, Template] = {
    "java-jar": Template(
        label=_("Executable jar: java -jar (Spring Boot and others)"),
        target="/app/app.jar",
        entrypoint=("java", "-jar", "/app/app.jar"),
        jvm_env="JAVA_TOOL_OPTIONS",
        workdir="/app",
        user="10001:10001",
        war=False,
    ),
    "tomcat-war": Template(
        label=_("Web archive on Tomcat: catalina.sh run"),
        target="/usr/local/tomcat/webapps/ROOT.war",
        entrypoint=("catalina.sh", "run"),
        jvm_env="CATALINA_OPTS",
        workdir="/usr/local/tomcat",
        user="",
        war=True,
    ),
}


@dataclass(frozen=True)
class Facts:
    kind: str  # "jar" or "war"
    entries: int
    version: str
    main_class: str


def safe_name(filename: str) -> str:
    name = PurePosixPath(str(filename).replace("\\", "/")).name
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    return name[:255] or "upload.jar"


def _small(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    if info.file_size > MAX_SMALL_FILE:
        return ""
    with archive.open(info) as f:
        return f.read(MAX_SMALL_FILE).decode("utf-8", "replace")


def _properties(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _manifest(text: str) -> dict[str, str]:
    values, last = {}, ""
    for line in text.splitlines():
        if line.startswith(" ") and last:
            values[last] += line[1:]
        elif ":" in line:
            last, _, value = line.partition(":")
            values[last.strip()] = value.strip()
    return values


def inspect(path: Path) -> Facts:
    """What the archive at ``path`` is: NotAnArchive unless it is a zip holding a jar's manifest or classes, or a
    war's WEB-INF; reads only the zip directory and two small files (the manifest, the archive's own
    pom.properties), never decompressing the rest."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ENTRIES:
                raise NotAnArchive(D(N_("The archive holds more than %(count)s files."), count=MAX_ENTRIES))
            names = {i.filename for i in infos}
            war = any(n.startswith("WEB-INF/") for n in names)
            jar = "META-INF/MANIFEST.MF" in names or any(n.endswith(".class") for n in names)
            if not (war or jar):
                raise NotAnArchive(D(N_("This zip is neither a jar (no manifest, no classes) nor a war (no WEB-INF).")))
            manifest = {}
            if "META-INF/MANIFEST.MF" in names:
                manifest = _manifest(_small(archive, archive.getinfo("META-INF/MANIFEST.MF")))
            version = manifest.get("Implementation-Version", "")
            own = [i for i in infos if re.fullmatch(r"META-INF/maven/[^/]+/[^/]+/pom\.properties", i.filename)]
            if len(own) == 1:
                version = _properties(_small(archive, own[0])).get("version", version)
            return Facts(
                kind="war" if war else "jar",
                entries=len(infos),
                version=version[:100],
                main_class=manifest.get("Main-Class", "")[:200],
            )
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise NotAnArchive(D(N_("The file is not a jar or war (not a zip archive)."))) from None


def layer(archive: Path, template: Template, output: Path, mtime: int) -> None:
    """An image layer (a tar file) holding ``archive`` at the template's place, owned by root and readable by
    all, with its folders; times set to ``mtime`` so the same upload gives the same layer."""
    target = PurePosixPath(template.target)
    with tarfile.open(output, "w", format=tarfile.PAX_FORMAT) as tar:
        parts = target.parent.parts[1:]
        for n in range(1, len(parts) + 1):
            info = tarfile.TarInfo("/".join(parts[:n]))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(info)
        info = tarfile.TarInfo(str(target).lstrip("/"))
        info.size, info.mode, info.mtime = archive.stat().st_size, 0o644, mtime
        with archive.open("rb") as f:
            tar.addfile(info, f)


def entrypoint(template: Template) -> list[str]:
    return list(template.entrypoint)


def environment(template: Template, jvm_options: str, env: list[dict]) -> dict[str, str]:
    values = {item["name"]: str(item.get("value", "")) for item in env if item.get("name")}
    if jvm_options.strip():
        values[template.jvm_env] = jvm_options.strip()
    return values
