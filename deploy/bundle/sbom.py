"""Write the offline bundle's software bill of materials as CycloneDX 1.5 JSON (standard library only).

Read from the staged bundle folder, never from the network:
  * wheels/*.whl: every Python package (name, version, purl pkg:pypi/..., licence as the wheel's METADATA states it,
    SHA-256 of the wheel file), marked with the requirements file that pins it;
  * app/package-lock.json: the npm packages the vendored static assets (static/vendor) are copied or bundled from
    (version, licence, the lock's SHA-512 integrity), development-only ones (the esbuild bundler) left out;
  * agent/kubemate-agent: the host agent binary's SHA-256, its Go toolchain and modules (`go version -m`);
  * image/: the OCI image layout's manifest digest and tag;
  * helm/: the chart's name, version and archive SHA-256.
Deterministic: the timestamp is SOURCE_DATE_EPOCH and the serial number a UUID derived from the content.

  python3 deploy/bundle/sbom.py BUNDLE_DIR --version 0.2.0-abc1234 --app-version 0.2.0 --commit <sha> \
      --epoch 1760000000 > BUNDLE_DIR/sbom.cdx.json
"""

from __future__ import annotations

import argparse
import base64
import email
import hashlib
import json
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

# SPDX identifiers a wheel's free-text License field is taken as (anything else is kept as a licence name).
SPDX_IDS = {
    "0BSD",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "CC0-1.0",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "ISC",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MIT",
    "MIT-0",
    "MIT-CMU",
    "MPL-2.0",
    "PSF-2.0",
    "Unlicense",
    "Zlib",
}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def normalize(name: str) -> str:
    """PEP 503 normalised name (what pip compares and the pypi purl uses)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """name (normalised) -> pinned version of a requirements file's `name==version` lines."""
    found = {}
    if not path.is_file():
        return found
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            found[normalize(name)] = version.strip()
    return found


def wheel_licenses(meta: email.message.Message) -> list[dict]:
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        return [{"expression": expression}]
    text = (meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 80:
        if text in SPDX_IDS:
            return [{"license": {"id": text}}]
        if re.search(r" (AND|OR) ", text) and all(
            token in SPDX_IDS for token in re.split(r" (?:AND|OR) |[()]", text) if token.strip()
        ):
            return [{"expression": text}]
        return [{"license": {"name": text}}]
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return [{"license": {"name": name}} for name in classifiers]


def python_components(bundle: Path) -> list[dict]:
    app = bundle / "app"
    pinned = {
        "requirements.txt": pins(app / "requirements.txt"),
        "requirements-nodeps.txt": pins(app / "requirements-nodeps.txt"),
        "extra-requirements.txt": pins(bundle / "wheels" / "extra-requirements.txt"),
    }
    components = []
    for wheel in sorted((bundle / "wheels").glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                raise SystemExit(f"{wheel.name}: no single .dist-info/METADATA")
            meta = email.message_from_bytes(archive.read(names[0]))
        name, version = meta["Name"], meta["Version"]
        key = normalize(name)
        properties = [{"name": "kubemate:wheel", "value": wheel.name}]
        source = next((file for file, pinned_here in pinned.items() if key in pinned_here), None)
        if source:
            properties.append({"name": "kubemate:pinned-in", "value": source})
            if pinned[source][key] != version:
                raise SystemExit(f"{wheel.name}: version {version}, but {source} pins {pinned[source][key]}")
        if source == "requirements-nodeps.txt":
            properties.append({"name": "kubemate:installed-with", "value": "pip --no-deps"})
        if source == "extra-requirements.txt":
            marker = (bundle / "wheels" / "extra-requirements.txt").read_text()
            marker = next((line.split(";", 1)[1].strip() for line in marker.splitlines() if key in normalize(line)), "")
            properties.append({"name": "kubemate:installed-when", "value": marker})
        component = {
            "type": "library",
            "bom-ref": f"pkg:pypi/{key}@{version}",
            "name": name,
            "version": version,
            "purl": f"pkg:pypi/{key}@{version}",
            "hashes": [{"alg": "SHA-256", "content": sha256_file(wheel)}],
            "scope": "optional" if source == "extra-requirements.txt" else "required",
            "properties": properties,
        }
        if summary := (meta.get("Summary") or "").strip():
            component["description"] = summary
        if licenses := wheel_licenses(meta):
            component["licenses"] = licenses
        components.append(component)
    missing = [
        f"{name}=={version} ({file})"
        for file, pinned_here in pinned.items()
        for name, version in pinned_here.items()
        if not any(c["purl"] == f"pkg:pypi/{name}@{version}" for c in components)
    ]
    if missing:
        raise SystemExit("no wheel for: " + ", ".join(missing))
    return components


def npm_components(lock_path: Path) -> list[dict]:
    if not lock_path.is_file():
        return []
    lock = json.loads(lock_path.read_text())
    components = []
    for path, entry in sorted(lock.get("packages", {}).items()):
        if not path or entry.get("dev") or entry.get("link") or "version" not in entry:
            continue
        name = entry.get("name") or path.rsplit("node_modules/", 1)[1]
        version = entry["version"]
        purl = f"pkg:npm/{quote(name, safe='/')}@{version}"
        component = {
            "type": "library",
            "bom-ref": purl,
            "name": name,
            "version": version,
            "purl": purl,
            "scope": "required",
            "properties": [{"name": "kubemate:served-from", "value": "app/static/vendor (copied or bundled at build)"}],
        }
        if name.startswith("@"):
            component["group"], component["name"] = name[1:].split("/", 1)[0], name.split("/", 1)[1]
            component["group"] = "@" + component["group"]
        integrity = entry.get("integrity", "")
        if integrity.startswith("sha512-"):
            component["hashes"] = [{"alg": "SHA-512", "content": base64.b64decode(integrity[7:]).hex()}]
        if entry.get("license"):
            lic = entry["license"]
            component["licenses"] = [{"license": {"id": lic}} if lic in SPDX_IDS else {"license": {"name": lic}}]
        components.append(component)
    return components


def go_components(binary: Path, agent_version: str) -> list[dict]:
    if not binary.is_file():
        return []
    main = {
        "type": "application",
        "bom-ref": f"kubemate-agent@{agent_version}",
        "name": "kubemate-agent",
        "version": agent_version,
        "description": "Kubemate host agent (static Go binary, agent/)",
        "hashes": [{"alg": "SHA-256", "content": sha256_file(binary)}],
        "properties": [{"name": "kubemate:path", "value": "agent/kubemate-agent"}],
        "components": [],
    }
    go = shutil.which("go")
    if not go:
        main["properties"].append({"name": "kubemate:go-modules", "value": "not listed: no go tool on the build host"})
        return [main]
    out = subprocess.run([go, "version", "-m", str(binary)], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    toolchain = lines[0].split(":", 1)[1].strip() if lines else ""
    if toolchain.startswith("go"):
        version = toolchain[2:]
        main["components"].append(
            {
                "type": "library",
                "bom-ref": f"pkg:golang/stdlib@v{version}",
                "name": "stdlib",
                "version": f"v{version}",
                "purl": f"pkg:golang/stdlib@v{version}",
                "description": "Go standard library and runtime, linked statically",
            }
        )
    for line in lines[1:]:
        fields = line.strip().split("\t")
        if fields[0] == "mod" and len(fields) >= 2:
            main["properties"].append({"name": "kubemate:go-main-module", "value": fields[1]})
        elif fields[0] == "dep" and len(fields) >= 3:
            path, version = fields[1], fields[2]
            purl = f"pkg:golang/{quote(path, safe='/')}@{version}"
            dep = {"type": "library", "bom-ref": purl, "name": path, "version": version, "purl": purl}
            if len(fields) >= 4 and fields[3].startswith("h1:"):
                dep["properties"] = [{"name": "go:module-hash", "value": fields[3]}]
            main["components"].append(dep)
        elif fields[0] == "build" and len(fields) >= 2:
            main["properties"].append({"name": "go:build", "value": fields[1]})
    return [main]


def image_components(layout: Path) -> list[dict]:
    index_path = layout / "index.json"
    if not index_path.is_file():
        return []
    index = json.loads(index_path.read_text())
    manifests = index.get("manifests") or []
    if not manifests:
        raise SystemExit("image/index.json lists no manifest")
    digest = (layout / "DIGEST").read_text().strip() if (layout / "DIGEST").is_file() else manifests[0]["digest"]
    tag = (layout / "TAG").read_text().strip() if (layout / "TAG").is_file() else ""
    tag = tag or manifests[0].get("annotations", {}).get("org.opencontainers.image.ref.name", "")
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexdigest):
        raise SystemExit(f"image digest {digest!r} is not sha256:<64 hex>")
    purl = f"pkg:oci/kubemate@{quote(digest, safe='')}" + (f"?tag={quote(tag, safe='')}" if tag else "")
    # The image build lists the Debian packages of its base layer (deploy/image/build: debian-packages.txt).
    debs = []
    listing = layout / "debian-packages.txt"
    if listing.is_file():
        for line in listing.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2:
                name, version = fields[0], fields[1]
                arch = fields[2] if len(fields) > 2 else ""
                deb = f"pkg:deb/debian/{quote(name)}@{quote(version)}" + (f"?arch={arch}" if arch else "")
                debs.append({"type": "library", "bom-ref": deb, "name": name, "version": version, "purl": deb})
    container = {
        "type": "container",
        "bom-ref": purl,
        "name": "kubemate",
        "version": tag or digest,
        "purl": purl,
        "description": "The console's OCI image (image/, an OCI image layout); its Python packages are the wheels "
        "listed here",
        "hashes": [{"alg": "SHA-256", "content": hexdigest}],
        "properties": [{"name": "oci:manifest-digest", "value": digest}],
    }
    if debs:
        container["components"] = debs
    return [container]


def chart_components(helm: Path) -> list[dict]:
    archives = sorted(helm.glob("*.tgz"))
    chart_yaml = next(iter(sorted(helm.glob("*/Chart.yaml"))), None)
    if archives:
        archive = archives[0]
        match = re.fullmatch(r"(.+)-(\d[^-]*(?:-[^-]+)?)\.tgz", archive.name)
        name, version = (match.group(1), match.group(2)) if match else (archive.stem, "")
        return [
            {
                "type": "application",
                "bom-ref": f"helm-chart:{name}@{version}",
                "name": f"{name} (Helm chart)",
                "version": version,
                "hashes": [{"alg": "SHA-256", "content": sha256_file(archive)}],
                "properties": [{"name": "kubemate:path", "value": f"helm/{archive.name}"}],
            }
        ]
    if chart_yaml:
        fields = dict(
            line.split(":", 1) for line in chart_yaml.read_text().splitlines() if re.match(r"^[a-zA-Z]+:\s*\S", line)
        )
        name, version = fields.get("name", "chart").strip().strip('"'), fields.get("version", "").strip().strip('"')
        return [
            {
                "type": "application",
                "bom-ref": f"helm-chart:{name}@{version}",
                "name": f"{name} (Helm chart)",
                "version": version,
                "properties": [{"name": "kubemate:path", "value": f"helm/{chart_yaml.parent.name}/"}],
            }
        ]
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--version", required=True, help="the bundle's version (application version and commit)")
    parser.add_argument("--app-version", required=True)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--epoch", type=int, required=True, help="SOURCE_DATE_EPOCH")
    parser.add_argument("--agent-version", default="")
    args = parser.parse_args()
    bundle = args.bundle

    python = python_components(bundle)
    npm = npm_components(bundle / "app" / "package-lock.json")
    agent = go_components(bundle / "agent" / "kubemate-agent", args.agent_version)
    image = image_components(bundle / "image")
    chart = chart_components(bundle / "helm")
    components = python + npm + agent + image + chart

    root_ref = f"kubemate@{args.version}"
    content = json.dumps(components, sort_keys=True).encode()
    serial = uuid.uuid5(uuid.NAMESPACE_URL, f"kubemate-bundle:{args.version}:{hashlib.sha256(content).hexdigest()}")
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.fromtimestamp(args.epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {
                "components": [
                    {
                        "type": "application",
                        "name": "kubemate-bundle-sbom",
                        "version": args.app_version,
                        "description": "deploy/bundle/sbom.py: reads wheel METADATA, package-lock.json, "
                        "`go version -m`, the OCI layout's index.json",
                    }
                ]
            },
            "component": {
                "type": "application",
                "bom-ref": root_ref,
                "name": "kubemate",
                "version": args.app_version,
                "description": "Kubemate offline install bundle (Kubernetes operations console)",
                "properties": [
                    {"name": "kubemate:bundle-version", "value": args.version},
                    {"name": "kubemate:git-commit", "value": args.commit},
                    {"name": "kubemate:target", "value": "linux x86_64, CPython 3.11"},
                ],
            },
        },
        "components": components,
        "dependencies": [
            {"ref": root_ref, "dependsOn": [c["bom-ref"] for c in components]},
            *(
                {"ref": c["bom-ref"], "dependsOn": [sub["bom-ref"] for sub in c["components"]]}
                for c in agent + image
                if c.get("components")
            ),
        ],
    }
    json.dump(bom, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    print(
        f"sbom: {len(python)} Python packages, {len(npm)} npm packages, "
        f"{sum(len(c.get('components', [])) for c in agent)} Go components, {len(image)} image "
        f"({sum(len(c.get('components', [])) for c in image)} Debian packages), {len(chart)} chart",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
