"""The one door to OCI registries: go-containerregistry's ``crane`` (tools.crane()), run as a child process.

Each call gets its own short-lived folder holding a Docker ``config.json`` with the registry's credentials (file
mode 600, deleted after the call) and, for a registry with its own certificate authority, a CA bundle (the
system's plus the registry's) named by ``SSL_CERT_FILE``. Secrets never appear in arguments or logs; crane's
error text is shortened and stripped of anything that looks like credentials before a person reads it.

What pipelines do here:
- ``build``: ``crane mutate BASE@DIGEST --append LAYER.tar --entrypoint … --env … --label … -o IMAGE.tar``: the
  approved base plus one layer, written to a local tarball (nothing pushed), so the scan reads what will be
  pushed;
- ``push``: ``crane push IMAGE.tar REF``, then ``crane digest REF`` read back and compared;
- ``pull``: ``crane pull REF IMAGE.tar`` (an image built in the cluster, to scan it);
- reading: ``digest``, ``tags`` (``crane ls``), ``repositories`` (``crane catalog``), ``config``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from apps.cicd import tools
from apps.core import crypto
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

TIMEOUT = 600
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_LIST = 5000
MAX_JSON = 4 * 1024 * 1024
UNREACHABLE = ("connection refused", "no such host", "i/o timeout", "network is unreachable", "no route to host")


class RegistryError(Failure):
    """The registry refused or could not be reached; the sentence says why."""


@dataclass(frozen=True)
class Access:
    """How to reach one registry: its host, plain HTTP or not, its CA, and credentials (in clear only here, in
    memory, for the call's config file)."""

    host: str
    insecure: bool = False
    ca_pem: str = ""
    username: str = ""
    password: str = field(default="", repr=False)


def access_for(registry) -> Access:
    """The Access of a Registry row (the password decrypted for the call)."""
    password = crypto.decrypt(registry.password_encrypted) if registry.password_encrypted else ""
    return Access(
        host=registry.host,
        insecure=registry.insecure,
        ca_pem=registry.ca_pem,
        username=registry.username,
        password=password,
    )


@contextmanager
def _environment(access: Access) -> Iterator[dict]:
    folder = tempfile.mkdtemp(prefix="kubemate-oci-")
    try:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": folder, "DOCKER_CONFIG": folder}
        config: dict = {"auths": {}}
        if access.username:
            token = base64.b64encode(f"{access.username}:{access.password}".encode()).decode()
            config["auths"][access.host] = {"auth": token}
        path = Path(folder) / "config.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(config, f)
        if access.ca_pem.strip():
            bundle = Path(folder) / "ca.pem"
            system = SYSTEM_CA.read_text() if SYSTEM_CA.exists() else ""
            bundle.write_text(system + "\n" + access.ca_pem.strip() + "\n")
            env["SSL_CERT_FILE"] = str(bundle)
        yield env
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _clean(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    picked = next((line for line in reversed(lines) if "Error" in line or "error" in line), lines[-1] if lines else "")
    picked = re.sub(r"(?i)(authorization|password|token)[=:]\s*\S+", r"\1=…", picked)
    return picked.removeprefix("Error: ")[:400]


def _crane(access: Access, args: list[str], timeout: int = TIMEOUT) -> str:
    """Run crane; references and paths come from validated rows (a host, then a repository), never from a flag."""
    command = [tools.crane(), *args]
    if access.insecure:
        command.append("--insecure")
    with _environment(access) as env:
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RegistryError(
                D(N_("Registry %(host)s did not answer within %(seconds)s s."), host=access.host, seconds=timeout)
            ) from None
    if done.returncode != 0:
        error = _clean(done.stderr)
        if any(word in error for word in UNREACHABLE):
            raise RegistryError(
                D(N_("Registry %(host)s cannot be reached from the console's server."), host=access.host)
            )
        if "server gave HTTP response to HTTPS client" in error:
            sentence = N_("Registry %(host)s speaks plain HTTP: tick “plain HTTP (insecure)” if that is intended.")
            raise RegistryError(D(sentence, host=access.host))
        if "x509" in error or "certificate" in error:
            sentence = N_("Registry %(host)s's certificate is not trusted: add its certificate authority.")
            raise RegistryError(D(sentence, host=access.host))
        if "MANIFEST_UNKNOWN" in error or "NAME_UNKNOWN" in error or "404" in error:
            raise RegistryError(D(N_("Registry %(host)s does not hold %(what)s."), host=access.host, what=args[-1]))
        if "UNAUTHORIZED" in error or "401" in error or "DENIED" in error or "403" in error:
            sentence = N_("Registry %(host)s refused the credentials: %(error)s")
            raise RegistryError(D(sentence, host=access.host, error=error))
        raise RegistryError(D(N_("Registry %(host)s: %(error)s"), host=access.host, error=error))
    return done.stdout


def _bounded_json(text: str) -> dict | list:
    if len(text) > MAX_JSON:
        raise RegistryError(D(N_("The registry's answer is larger than %(mb)s MB."), mb=MAX_JSON >> 20))
    try:
        return json.loads(text)
    except ValueError:
        raise RegistryError(D(N_("The registry's answer is not JSON."))) from None


def digest(access: Access, ref: str) -> str:
    found = _crane(access, ["digest", ref], timeout=60).strip()
    if not DIGEST.fullmatch(found):
        raise RegistryError(D(N_("The registry answered %(answer)s, not a digest."), answer=found[:80]))
    return found


def tags(access: Access, repository: str) -> list[str]:
    return _crane(access, ["ls", repository], timeout=60).split()[:MAX_LIST]


def repositories(access: Access) -> list[str]:
    return _crane(access, ["catalog", access.host], timeout=60).split()[:MAX_LIST]


def config(access: Access, ref: str) -> dict:
    found = _bounded_json(_crane(access, ["config", ref], timeout=60))
    return found if isinstance(found, dict) else {}


def manifest(access: Access, ref: str) -> dict:
    found = _bounded_json(_crane(access, ["manifest", ref], timeout=60))
    return found if isinstance(found, dict) else {}


def check(access: Access) -> int:
    """The number of repositories the registry lists with these credentials; RegistryError when it refuses or
    cannot be reached (a registry that lists no catalogue to this account answers with its refusal)."""
    return len(repositories(access))


@dataclass(frozen=True)
class Build:
    base: str  # the approved base, pinned by digest
    layer: Path  # a tarball holding the files to add
    tag: str  # the reference the image will have
    entrypoint: list[str]
    env: dict[str, str]
    labels: dict[str, str]
    workdir: str = "/app"
    user: str = ""
    platform: str = "linux/amd64"


def build(access: Access, spec: Build, output: Path) -> None:
    """The base plus the layer, configured, written to ``output`` (a docker-style tarball); nothing is pushed."""
    args = ["mutate", spec.base, "--append", str(spec.layer), "-t", spec.tag, "-o", str(output)]
    args += ["--entrypoint", ",".join(spec.entrypoint), "--cmd", ""]
    for key, value in spec.env.items():
        args += ["--env", f"{key}={value}"]
    for key, value in spec.labels.items():
        args += ["--label", f"{key}={value}"]
    if spec.workdir:
        args += ["--workdir", spec.workdir]
    if spec.user:
        args += ["--user", spec.user]
    args += ["--platform", spec.platform]
    _crane(access, args)


def push(access: Access, tarball: Path, ref: str) -> str:
    """Push ``tarball`` as ``ref``; the digest read back from the registry (RegistryError when it is not what the
    push reported)."""
    out = _crane(access, ["push", str(tarball), ref]).strip()
    reported = out.rsplit("@", 1)[-1] if "@" in out else ""
    found = digest(access, ref)
    if reported and reported != found:
        sentence = N_("The registry holds %(found)s for %(ref)s, not the pushed %(pushed)s.")
        raise RegistryError(D(sentence, found=found, ref=ref, pushed=reported))
    return found


def pull(access: Access, ref: str, output: Path) -> None:
    _crane(access, ["pull", "--platform", "linux/amd64", ref, str(output)])
