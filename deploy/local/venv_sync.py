"""Uninstall from the project virtualenv every distribution no requirements file pins.

``pip install -r`` adds and upgrades but never removes: a pin dropped from requirements-dev.txt would stay installed
in every existing .venv, and a library that imports what it finds (redis-py loads the OpenTelemetry SDK whenever it
is installed) would make the developer's processes differ from an installation's. Run by ``make venv`` after the
installs; pip and setuptools stay.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = ("requirements.txt", "requirements-dev.txt", "requirements-nodeps.txt")
KEEP = {"pip", "setuptools", "wheel"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned() -> set[str]:
    names = set()
    for file in FILES:
        for line in (ROOT / file).read_text().splitlines():
            match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==", line.strip())
            if match:
                names.add(canonical(match.group(1)))
    return names


def main() -> None:
    installed = {canonical(d.metadata["Name"]) for d in importlib.metadata.distributions()}
    extra = sorted(installed - pinned() - KEEP)
    if extra:
        print(f"removing what no requirements file pins: {', '.join(extra)}")
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", *extra], check=True)
    # pip removes the files it installed, not the byte code compiled later: a folder left with only __pycache__
    # would still import as an empty namespace package.
    for site in {Path(p) for p in sys.path if p.endswith("site-packages")}:
        for folder in sorted(site.iterdir()):
            files = [f for f in folder.rglob("*") if f.is_file()] if folder.is_dir() else [folder]
            if folder.is_dir() and all(f.suffix == ".pyc" for f in files):
                shutil.rmtree(folder)


if __name__ == "__main__":
    main()
