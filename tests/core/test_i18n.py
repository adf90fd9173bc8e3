"""Every string the console shows has a Simplified Chinese translation."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def parse_po(path: Path) -> list[tuple[str, str, bool]]:
    """(msgid, msgstr, fuzzy) for each entry; plural forms count as translated when all forms are."""
    entries = []
    for block in path.read_text().split("\n\n"):
        if "msgid" not in block:
            continue
        fuzzy = "#, fuzzy" in block
        msgid = "".join(re.findall(r'^(?:msgid|msgid_plural)? ?"(.*)"$', block.split("msgstr")[0], re.M))
        msgstrs = re.split(r"^msgstr(?:\[\d\])? ", block, flags=re.M)[1:]
        values = ["".join(re.findall(r'"(.*)"', s)) for s in msgstrs]
        entries.append((msgid, "" if not values or not all(values) else values[0], fuzzy))
    return [e for e in entries if e[0]]


def test_every_string_in_code_and_templates_is_translated(tmp_path):
    work = tmp_path / "src"
    for name in ("apps", "kubemate", "templates", "locale"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("*.mo", "__pycache__"))
    shutil.copy(ROOT / "manage.py", work / "manage.py")
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete", "--no-location"],
        cwd=work,
        check=True,
        capture_output=True,
        env={
            "DJANGO_SETTINGS_MODULE": "kubemate.settings",
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": "postgres://x@127.0.0.1/x",
        },
    )
    entries = parse_po(work / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")
    untranslated = [msgid for msgid, msgstr, fuzzy in entries if not msgstr or fuzzy]
    assert len(entries) > 50
    assert untranslated == []


def test_compiled_catalog_is_current():
    po = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    mo = po.with_suffix(".mo")
    assert mo.exists(), "run `make messages` (compilemessages) first"
    assert mo.stat().st_mtime >= po.stat().st_mtime
