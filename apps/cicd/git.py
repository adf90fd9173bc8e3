"""The one door to git repositories: resolve a branch to its commit, and fetch that commit shallowly to read the
Dockerfile and the commit's subject. Runs the ``git`` command with no terminal, no system or user configuration,
no hooks and a time limit; a token travels in the child's environment to an askpass helper, never in its
arguments, a log line or a task argument.

Allowed addresses: https:// (and http:// for a server on a trusted network); file:// and local paths only when
settings.KUBEMATE_CICD_LOCAL_GIT is on (tests and the demo: a bare repository on this machine), since a local path
would let a person read the server's files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

TIMEOUT = 120
MAX_CHECKOUT = 200 * 1024 * 1024
SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
BRANCH = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")
ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s' "$KUBEMATE_GIT_USERNAME" ;;
  *) printf '%s' "$KUBEMATE_GIT_TOKEN" ;;
esac
"""


class GitError(Failure):
    """The repository could not be read; the sentence says why."""


@dataclass(frozen=True)
class Source:
    url: str
    branch: str
    username: str = ""
    token: str = ""  # in clear only in memory, for the child's environment


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str


def check_url(url: str) -> None:
    """GitError unless ``url`` is an address pipelines may read."""
    url = (url or "").strip()
    if not url or len(url) > 500 or any(c.isspace() for c in url) or url.startswith("-"):
        raise GitError(D(N_("Enter the repository's address, e.g. https://git.bank.local/team/app.git.")))
    if url.startswith(("https://", "http://")):
        return
    if url.startswith("file://") or url.startswith("/"):
        if getattr(settings, "KUBEMATE_CICD_LOCAL_GIT", False):
            return
        raise GitError(D(N_("Repositories on the console's own server are not allowed; use an https:// address.")))
    raise GitError(D(N_("Only https:// repository addresses are supported (with a user name and a token).")))


def check_branch(branch: str) -> None:
    if not BRANCH.fullmatch(branch or "") or ".." in branch or branch.startswith(("-", "/")):
        raise GitError(D(N_("%(branch)s is not a branch name."), branch=branch))


@contextmanager
def _env(source: Source):
    home = tempfile.mkdtemp(prefix="kubemate-git-")
    try:
        askpass = Path(home) / "askpass"
        askpass.write_text(ASKPASS)
        askpass.chmod(0o700)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_ASKPASS": str(askpass),
            "KUBEMATE_GIT_USERNAME": source.username or "git",
            "KUBEMATE_GIT_TOKEN": source.token,
            "LC_ALL": "C",
        }
        yield env, home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _git(args: list[str], env: dict, cwd: str | None = None, timeout: int = TIMEOUT) -> str:
    command = ["git", "-c", "core.hooksPath=/dev/null", "-c", "protocol.ext.allow=never", *args]
    try:
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise GitError(D(N_("The repository did not answer within %(seconds)s s."), seconds=timeout)) from None
    except FileNotFoundError:
        raise GitError(D(N_("git is not installed on this server; ask the platform team."))) from None
    if done.returncode != 0:
        raise GitError(D(N_("git refused: %(error)s"), error=_first_line(done.stderr)))
    return done.stdout


def _first_line(stderr: str) -> str:
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    # "fatal: ..." says what went wrong; keep it short, and never echo an address carrying credentials.
    picked = next((line for line in lines if line.startswith("fatal:")), lines[-1] if lines else "")
    return re.sub(r"//[^/@\s]+@", "//", picked)[:300]


def head(source: Source) -> str:
    """The commit the branch points at now."""
    check_url(source.url)
    check_branch(source.branch)
    with _env(source) as (env, _home):
        out = _git(["ls-remote", "--heads", "--", source.url, f"refs/heads/{source.branch}"], env)
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.strip() == f"refs/heads/{source.branch}" and SHA.fullmatch(sha):
            return sha
    raise GitError(D(N_("Branch %(branch)s is not in the repository."), branch=source.branch))


def checkout(source: Source, dest: Path, sha: str = "") -> Commit:
    """The branch's last commit (or ``sha`` when the branch still holds it nearby) checked out in ``dest``,
    shallowly; GitError when the checkout is larger than MAX_CHECKOUT."""
    check_url(source.url)
    check_branch(source.branch)
    dest = Path(dest)
    with _env(source) as (env, _home):
        _git(
            [
                "clone",
                "--quiet",
                "--depth",
                "20",
                "--single-branch",
                "--branch",
                source.branch,
                "--",
                source.url,
                str(dest),
            ],
            env,
        )
        if sha:
            if not SHA.fullmatch(sha):
                raise GitError(D(N_("%(sha)s is not a commit."), sha=sha))
            try:
                _git(["checkout", "--quiet", "--detach", sha], env, cwd=str(dest))
            except GitError:
                sentence = N_("Commit %(sha)s is no longer near the head of %(branch)s.")
                raise GitError(D(sentence, sha=sha[:12], branch=source.branch)) from None
        line = _git(["log", "-1", "--format=%H%x00%s%x00%an"], env, cwd=str(dest)).strip()
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file() and ".git" not in f.parts)
    if size > MAX_CHECKOUT:
        sentence = N_("The repository holds more than %(mb)s MB; it is too large to build here.")
        raise GitError(D(sentence, mb=MAX_CHECKOUT >> 20))
    found_sha, subject, author = ([*line.split("\x00"), "", "", ""])[:3]
    return Commit(sha=found_sha, subject=subject[:300], author=author[:200])
