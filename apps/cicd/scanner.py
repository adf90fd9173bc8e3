"""The one door to the vulnerability scanner: osv-scanner (tools.osv_scanner()), offline.

``scan`` runs ``osv-scanner scan image --archive IMAGE.tar --offline --all-packages --format json`` once against an
imported database (the folder ``OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY`` names, holding
``osv-scalibr/<Ecosystem>/all.zip``). ``--offline`` (not only ``--offline-vulnerabilities``, which still asks
deps.dev about base images) opens no socket; a proxy that answers nothing is set as well, so a scanner that tried
would fail rather than reach out. The report is read with bounds (size, packages, vulnerabilities) into
``Vulnerability`` rows with a severity (CVSS score, else the advisory's own rating) and the fixed versions, and the
SBOM (CycloneDX 1.5) is written from the same package list: osv-scanner's own CycloneDX output leaves out the
Debian packages it has no purl type for.

osv-scanner reports nothing at all, and exits 0, when the database lacks an ecosystem the image holds; its
"could not load db" warning makes the scan fail here instead, naming the ecosystem to import.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from apps.cicd import tools
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

TIMEOUT = 900
MAX_REPORT = 64 * 1024 * 1024
MAX_FINDINGS = 5000
MAX_PACKAGES = 20000
NO_NETWORK = "http://127.0.0.1:9"
# osv-scanner's exit codes: 0 nothing found, 1 vulnerabilities found, 128 no packages found; others are errors.
OK_CODES = {0, 1, 128}


class ScanError(Failure):
    """The scanner could not run; the sentence says why."""


@dataclass
class Vulnerability:
    id: str
    aliases: list[str]
    severity: str
    score: float | None
    ecosystem: str
    package: str
    version: str
    fixed: list[str] = field(default_factory=list)
    source: str = ""
    summary: str = ""


@dataclass(frozen=True)
class Package:
    ecosystem: str
    name: str
    version: str
    source: str


@dataclass
class Report:
    vulnerabilities: list[Vulnerability]
    packages: int
    truncated: bool = False
    inventory: list[Package] = field(default_factory=list)


def _environment(database: Path, home: Path) -> dict:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY": str(database),
        "HTTP_PROXY": NO_NETWORK,
        "HTTPS_PROXY": NO_NETWORK,
        "NO_PROXY": "",
    }


def _run(args: list[str], database: Path, home: Path) -> subprocess.CompletedProcess:
    command = [tools.osv_scanner(), *args]
    try:
        done = subprocess.run(
            command, env=_environment(database, home), capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise ScanError(D(N_("The scan did not finish within %(seconds)s s."), seconds=TIMEOUT)) from None
    if done.returncode not in OK_CODES:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise ScanError(
            D(N_("The scanner failed: %(error)s"), error=(lines[-1] if lines else str(done.returncode))[:400])
        )
    return done


MISSING_DB = re.compile(r"could not load db for ([A-Za-z0-9 .:_+-]{1,50})")


def scan(archive: Path, database: Path, report: Path, sbom: Path, home: Path, name: str = "") -> Report:
    """Scan the image tarball ``archive``; the JSON report is written to ``report`` and the SBOM to ``sbom``."""
    args = ["scan", "image", "--archive", "--offline", "--all-packages", "--format", "json"]
    done = _run([*args, "--output-file", str(report), str(archive)], database, home)
    missing = sorted(set(MISSING_DB.findall(done.stderr)))
    if missing:
        raise ScanError(
            D(
                N_(
                    "The vulnerability database has no data for %(ecosystems)s, which this image holds, so nothing "
                    "could be checked; import a database that covers it."
                ),
                ecosystems=", ".join(m.strip() for m in missing),
            )
        )
    found = read_report(report)
    write_sbom(found, sbom, name)
    return found


def severity_of(score: float | None, rating: str) -> str:
    if score is not None:
        if score >= 9.0:
            return "critical"
        if score >= 7.0:
            return "high"
        if score >= 4.0:
            return "medium"
        if score > 0:
            return "low"
    rating = (rating or "").lower()
    return {"critical": "critical", "high": "high", "moderate": "medium", "medium": "medium", "low": "low"}.get(
        rating, "unknown"
    )


def _score(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if 0 <= value <= 10 else None


def _fixed(vuln: dict, ecosystem: str, name: str) -> list[str]:
    found: list[str] = []
    for affected in vuln.get("affected") or []:
        package = affected.get("package") or {}
        if package.get("name") != name or not str(package.get("ecosystem", "")).startswith(ecosystem.split(":")[0]):
            continue
        for rng in affected.get("ranges") or []:
            for event in rng.get("events") or []:
                if "fixed" in event and str(event["fixed"]) not in found:
                    found.append(str(event["fixed"])[:60])
    return found[:5]


def read_report(path: Path) -> Report:
    """The vulnerabilities of osv-scanner's JSON report at ``path``; ScanError when it is too large or not JSON."""
    if path.stat().st_size > MAX_REPORT:
        raise ScanError(D(N_("The scan report is larger than %(mb)s MB."), mb=MAX_REPORT >> 20))
    try:
        data = json.loads(path.read_text())
    except ValueError:
        raise ScanError(D(N_("The scan report is not JSON."))) from None
    found: list[Vulnerability] = []
    inventory: list[Package] = []
    packages = 0
    truncated = False
    for result in data.get("results") or []:
        source = str(((result.get("source") or {}).get("path")) or "")[:500]
        for entry in result.get("packages") or []:
            packages += 1
            package = entry.get("package") or {}
            name, version = str(package.get("name", ""))[:255], str(package.get("version", ""))[:100]
            ecosystem = str(package.get("ecosystem", ""))[:50]
            binary = str(package.get("os_package_name") or "")[:100]
            where = f"{source} ({binary})" if binary else source
            if len(inventory) < MAX_PACKAGES:
                inventory.append(Package(ecosystem=ecosystem, name=binary or name, version=version, source=where))
            by_id = {v.get("id"): v for v in entry.get("vulnerabilities") or [] if isinstance(v, dict)}
            for group in entry.get("groups") or [{"ids": [i]} for i in by_id]:
                ids = [i for i in group.get("ids") or [] if isinstance(i, str)]
                if not ids:
                    continue
                primary = next((i for i in ids if i in by_id), ids[0])
                vuln = by_id.get(primary, {})
                aliases = sorted({*ids, *(group.get("aliases") or []), *(vuln.get("aliases") or [])} - {primary})
                score = _score(group.get("max_severity"))
                rating = (vuln.get("database_specific") or {}).get("severity", "")
                if len(found) >= MAX_FINDINGS:
                    truncated = True
                    break
                found.append(
                    Vulnerability(
                        id=primary[:100],
                        aliases=[str(a)[:100] for a in aliases][:20],
                        severity=severity_of(score, rating),
                        score=score,
                        ecosystem=ecosystem,
                        package=name,
                        version=version,
                        fixed=_fixed(vuln, ecosystem, name),
                        source=where[:500],
                        summary=str(vuln.get("summary") or "")[:500],
                    )
                )
    return Report(vulnerabilities=found, packages=packages, truncated=truncated, inventory=inventory)


def purl(package: Package) -> str:
    """The package URL of a package (pkg:maven/group/artifact@version, pkg:deb/debian/name@version?distro=…)."""
    ecosystem = package.ecosystem.lower()
    version = quote(package.version, safe="")
    if ecosystem == "maven" and ":" in package.name:
        group, artifact = package.name.split(":", 1)
        return f"pkg:maven/{quote(group, safe='.')}/{quote(artifact, safe='.')}@{version}"
    for distro in ("debian", "ubuntu", "alpine"):
        if ecosystem.startswith(distro):
            kind = "apk" if distro == "alpine" else "deb"
            release = ecosystem.split(":", 1)[1] if ":" in ecosystem else ""
            tail = f"?distro={distro}-{quote(release, safe='.')}" if release else ""
            return f"pkg:{kind}/{distro}/{quote(package.name, safe='.+')}@{version}{tail}"
    kinds = {"pypi": "pypi", "npm": "npm", "go": "golang", "crates.io": "cargo", "nuget": "nuget", "rubygems": "gem"}
    return f"pkg:{kinds.get(ecosystem, 'generic')}/{quote(package.name, safe='./')}@{version}"


def write_sbom(report: Report, path: Path, name: str) -> None:
    """A CycloneDX 1.5 JSON SBOM of every package the scan saw (with the vulnerabilities it matched)."""
    components, refs = [], {}
    for package in report.inventory:
        ref = purl(package)
        if ref in refs:
            continue
        refs[ref] = True
        components.append(
            {
                "type": "library",
                "bom-ref": ref,
                "name": package.name,
                "version": package.version,
                "purl": ref,
                "properties": [
                    {"name": "osv:ecosystem", "value": package.ecosystem},
                    {"name": "kubemate:found-in", "value": package.source},
                ],
            }
        )
    vulnerabilities = []
    for v in report.vulnerabilities:
        ref = purl(Package(v.ecosystem, v.package, v.version, v.source))
        entry = {"id": v.id, "source": {"name": "OSV"}, "affects": [{"ref": ref}]}
        if v.score is not None or v.severity != "unknown":
            entry["ratings"] = [{"severity": v.severity, **({"score": v.score} if v.score is not None else {})}]
        if v.aliases:
            entry["references"] = [{"id": a, "source": {"name": "alias"}} for a in v.aliases]
        if v.fixed:
            entry["recommendation"] = "Upgrade to " + ", ".join(v.fixed)
        vulnerabilities.append(entry)
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {
                "components": [
                    {"type": "application", "name": "kubemate"},
                    {"type": "application", "name": "osv-scanner"},
                ]
            },
            "component": {"type": "container", "name": name or "image"},
        },
        "components": components,
        "vulnerabilities": vulnerabilities,
    }
    path.write_text(json.dumps(bom, indent=1))
