"""Importing an offline vulnerability database: the bundle an administrator uploads on an air-gapped install.

A bundle is a zip holding one ``<Ecosystem>/all.zip`` per ecosystem (each as OSV publishes it:
https://osv-vulnerabilities.storage.googleapis.com/<Ecosystem>/all.zip, one OSV JSON record per entry) and,
optionally, ``manifest.json``::

    {"date": "2026-12-01", "source": "osv.dev export of 2026-12-01"}

``date`` (or ``created``, as deploy/local/cicd_samples.py writes it beside ``"format": "kubemate-osv-bundle",
"version": 1`` and the ecosystems' record counts) is when the data was taken; without it, the newest record's
time in the zips is. Nothing else may be in the bundle: a directory entry ``<Ecosystem>/`` is tolerated.

Everything is read with bounds before any work: the upload is streamed to the CI/CD storage (at most
KUBEMATE_CICD_MAX_UPLOAD); the zip's own directory is read from its end record (at most ``MAX_ENTRIES`` entries,
a directory of at most ``MAX_DIRECTORY`` bytes) before the zip library reads it; every entry name must match a
strict pattern (no path, no ``..``); declared sizes are bounded, and each ``all.zip`` is copied out in chunks,
refused when the bytes read differ from its declared size (a zip bomb). A record count is the number of ``.json``
entries in the directory of each ``all.zip``, read entry by entry without unpacking anything.

The databases land in ``<storage>/vulndb/<folder>/osv-scalibr/<Ecosystem>/all.zip``, the layout osv-scanner reads
with ``OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY=<storage>/vulndb/<folder>`` (``scanner.py``). They are written in a
temporary folder renamed at the end, so a refusal or a crash halfway leaves neither a folder nor a row. The newest
database is the one scans use; the last ``KEEP`` are kept, older folders removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import struct
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts import access as accounts_access
from apps.accounts.capabilities import CICD_ADMIN
from apps.cicd import storage, uploads
from apps.cicd.models import VulnDatabase
from apps.cicd.services import Refused
from apps.core import audit
from apps.core.deferred import N_
from apps.core.deferred import text as D

KEEP = 3
MAX_ENTRIES = 100  # in a bundle: manifest.json and one all.zip per ecosystem (OSV has about 40)
MAX_DIRECTORY = 1024 * 1024  # bytes of a bundle's zip directory
MAX_MANIFEST = 64 * 1024
MAX_RECORDS = 5_000_000  # .json entries in one ecosystem's all.zip
MAX_RECORD_DIRECTORY = 1024 * 1024 * 1024  # bytes of an all.zip's zip directory
MAX_RECORD_BYTES = 64 * 1024 * 1024  # one OSV record unpacked (they are kilobytes)
CHUNK = 1024 * 1024
MANIFEST = "manifest.json"
SCALIBR = "osv-scalibr"
ROOT = "vulndb"
# OSV's ecosystem names as folders: Maven, PyPI, npm, Go, Debian, Alpine, Ubuntu, crates.io, Rocky Linux, ...
ECOSYSTEM = re.compile(r"[A-Za-z][A-Za-z0-9+_-]*(?:[ .][A-Za-z0-9+_-]+)*")
ECOSYSTEM_MAX = 40
# Stored and deflated only: the zip library bounds what a deflated read returns, not what bzip2 or lzma return.
METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
BUNDLE_FORMAT = "kubemate-osv-bundle"
OLD_TEMP = timedelta(hours=6)
FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")  # a database's folder name: no dot, no slash
TOO_MANY = N_(
    "The bundle holds more than %(count)s entries: a bundle holds manifest.json and one all.zip per ecosystem."
)


def max_unpacked() -> int:
    """The largest a bundle may unpack to, in all (each all.zip is usually stored: about the bundle's size)."""
    return 2 * settings.KUBEMATE_CICD_MAX_UPLOAD


# Reading a zip's directory without trusting it -------------------------------------------------------------


class NotAZip(Exception):
    pass


@dataclass(frozen=True)
class Directory:
    entries: int
    size: int
    offset: int


_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")


def directory_of(path: Path) -> Directory:
    """Where a zip's central directory is and how many entries it says it holds, from its end record (and the
    zip64 one when there is one); NotAZip when there is none."""
    size = path.stat().st_size
    with path.open("rb") as f:
        tail_size = min(size, _EOCD.size + 0xFFFF)
        f.seek(size - tail_size)
        tail = f.read(tail_size)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < _EOCD.size:
            raise NotAZip
        fields = _EOCD.unpack(tail[at : at + _EOCD.size])
        entries, dir_size, dir_offset = fields[4], fields[5], fields[6]
        if entries == 0xFFFF or dir_size == 0xFFFFFFFF or dir_offset == 0xFFFFFFFF:
            end_at = size - tail_size + at
            if end_at < _ZIP64_LOCATOR.size:
                raise NotAZip
            f.seek(end_at - _ZIP64_LOCATOR.size)
            locator = _ZIP64_LOCATOR.unpack(f.read(_ZIP64_LOCATOR.size))
            if locator[0] != b"PK\x06\x07" or locator[2] + _ZIP64_EOCD.size > size:
                raise NotAZip
            f.seek(locator[2])
            record = _ZIP64_EOCD.unpack(f.read(_ZIP64_EOCD.size))
            if record[0] != b"PK\x06\x06":
                raise NotAZip
            entries, dir_size, dir_offset = record[7], record[8], record[9]
    if dir_offset + dir_size > size:
        raise NotAZip
    return Directory(entries=entries, size=dir_size, offset=dir_offset)


def entry_names(path: Path, directory: Directory):
    """The names, DOS times and declared sizes of a zip's entries, read one directory record at a time (never the
    whole directory at once): (name, (year, month, day, hour, minute, second), unpacked size; 0xFFFFFFFF for a
    zip64 size)."""
    with path.open("rb") as f:
        f.seek(directory.offset)
        left = directory.size
        for _n in range(directory.entries):
            head = f.read(_CENTRAL.size)
            if len(head) < _CENTRAL.size or head[:4] != b"PK\x01\x02":
                raise NotAZip
            fields = _CENTRAL.unpack(head)
            dos_time, dos_date = fields[7], fields[8]
            name_len, extra_len, comment_len = fields[12], fields[13], fields[14]
            left -= _CENTRAL.size + name_len + extra_len + comment_len
            if left < 0:
                raise NotAZip
            name = f.read(name_len)
            f.seek(extra_len + comment_len, os.SEEK_CUR)
            stamp = (
                (dos_date >> 9) + 1980,
                (dos_date >> 5) & 0xF,
                dos_date & 0x1F,
                dos_time >> 11,
                (dos_time >> 5) & 0x3F,
                (dos_time & 0x1F) * 2,
            )
            yield name.decode("utf-8", "replace"), stamp, fields[11]


def _dos_time(stamp) -> datetime | None:
    try:
        found = datetime(*stamp, tzinfo=UTC)
    except ValueError:
        return None
    return found if found.year >= 1990 else None


# The import --------------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    ecosystem: str
    info: zipfile.ZipInfo


def _shown(name: str) -> str:
    """An entry name as a sentence may quote it: printable, short."""
    cleaned = "".join(c if c.isprintable() else "?" for c in name)
    return cleaned if len(cleaned) <= 80 else cleaned[:77] + "…"


def _refuse(sentence: str, **params) -> Refused:
    return Refused(D(sentence, **params))


def _check_entries(archive: zipfile.ZipFile) -> tuple[list[_Entry], zipfile.ZipInfo | None]:
    """The bundle's ecosystems and its manifest; Refused for anything else in it, a duplicate, an encrypted
    entry or sizes beyond the bounds."""
    found: list[_Entry] = []
    manifest = None
    seen: set[str] = set()
    total = 0
    for info in archive.infolist():
        name = info.filename
        if name in seen:
            raise _refuse(N_("The bundle holds %(name)s twice."), name=_shown(name))
        seen.add(name)
        if name == MANIFEST:
            manifest = info
        else:
            ecosystem, slash, rest = name.partition("/")
            allowed = slash and ECOSYSTEM.fullmatch(ecosystem) and len(ecosystem) <= ECOSYSTEM_MAX
            if allowed and rest == "" and info.is_dir():
                continue  # a folder entry, as zip -r writes them
            if not allowed or rest != "all.zip":
                raise _refuse(
                    N_(
                        "The bundle holds %(name)s, which a bundle may not: only manifest.json and one "
                        "<Ecosystem>/all.zip per ecosystem, such as Maven/all.zip or Debian/all.zip."
                    ),
                    name=_shown(name),
                )
            found.append(_Entry(ecosystem=ecosystem, info=info))
        if info.flag_bits & 0x1:
            raise _refuse(N_("%(name)s is encrypted; a bundle is not."), name=_shown(name))
        if info.compress_type not in METHODS:
            raise _refuse(N_("%(name)s is compressed in a way Kubemate does not read."), name=_shown(name))
        total += info.file_size
        if info.file_size > max_unpacked() or total > max_unpacked():
            raise _refuse(N_("The bundle unpacks to more than %(mb)s MB."), mb=max_unpacked() >> 20)
    if manifest is not None and manifest.file_size > MAX_MANIFEST:
        raise _refuse(N_("manifest.json is larger than %(kb)s KB."), kb=MAX_MANIFEST >> 10)
    if not found:
        raise _refuse(
            N_(
                "The bundle holds no ecosystem: put one <Ecosystem>/all.zip in it per ecosystem, such as "
                "Maven/all.zip or Debian/all.zip."
            )
        )
    return found, manifest


BOMB = N_(
    "%(name)s does not unpack to the size and checksum it declares: the bundle is damaged, or a zip bomb, and is "
    "refused."
)


def _copy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """Copy one entry out in chunks, never more than its declared size (the zip library stops there and then
    checks the CRC); Refused when the bytes read are not the size and checksum it declares."""
    written = 0
    try:
        with archive.open(info) as source, target.open("wb") as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > info.file_size:
                    raise _refuse(BOMB, name=_shown(info.filename))
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        raise _refuse(BOMB, name=_shown(info.filename)) from None
    if written != info.file_size:
        raise _refuse(BOMB, name=_shown(info.filename))


def _records(path: Path, name: str) -> tuple[int, datetime | None]:
    """The number of OSV records (.json entries) in an ecosystem's all.zip and the newest entry time, from its zip
    directory alone."""
    try:
        directory = directory_of(path)
        if directory.entries > MAX_RECORDS * 2 or directory.size > MAX_RECORD_DIRECTORY:
            raise _refuse(N_("%(name)s holds more than %(count)s records."), name=name, count=MAX_RECORDS)
        count, newest = 0, None
        for entry, stamp, size in entry_names(path, directory):
            if entry.endswith("/"):
                continue
            if size > MAX_RECORD_BYTES:
                # The scanner unpacks every record (Go's zip reader stops at the declared size): none is huge.
                raise _refuse(
                    N_("%(name)s holds %(entry)s, which unpacks to more than %(mb)s MB: no OSV record is that large."),
                    name=name,
                    entry=_shown(entry),
                    mb=MAX_RECORD_BYTES >> 20,
                )
            if entry.lower().endswith(".json"):
                count += 1
                if count > MAX_RECORDS:
                    raise _refuse(N_("%(name)s holds more than %(count)s records."), name=name, count=MAX_RECORDS)
            moment = _dos_time(stamp)
            if moment is not None and (newest is None or moment > newest):
                newest = moment
    except NotAZip:
        raise _refuse(N_("%(name)s is not a zip of OSV records."), name=name) from None
    return count, newest


def _parse_date(value) -> datetime | None:
    if not isinstance(value, str) or not value.strip() or len(value) > 40:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0, 0), tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _manifest(archive: zipfile.ZipFile, info: zipfile.ZipInfo | None) -> tuple[dict, datetime | None]:
    if info is None:
        return {}, None
    with archive.open(info) as f:
        raw = f.read(MAX_MANIFEST + 1)
    if len(raw) > MAX_MANIFEST:
        raise _refuse(N_("manifest.json is larger than %(kb)s KB."), kb=MAX_MANIFEST >> 10)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise _refuse(N_('manifest.json is not a JSON object such as {"date": "2026-12-01", "source": "osv.dev"}.'))
    if "format" in data and (data.get("format") != BUNDLE_FORMAT or data.get("version", 1) != 1):
        raise _refuse(
            N_("manifest.json describes a %(format)s bundle, not a %(expected)s version 1."),
            format=_shown(str(data.get("format"))),
            expected=BUNDLE_FORMAT,
        )
    stated = data.get("date", data.get("created"))
    if stated is None:
        return data, None
    found = _parse_date(stated)
    if found is None or not (datetime(1990, 1, 1, tzinfo=UTC) <= found <= timezone.now() + timedelta(days=2)):
        raise _refuse(
            N_("The date in manifest.json, %(value)s, is not a past ISO date such as 2026-12-01."),
            value=_shown(str(stated)),
        )
    return data, found


def _audit_refusal(actor, filename: str, exc: Refused, request) -> None:
    audit.record(
        actor=actor,
        action="cicd.vulndb.import",
        result=audit.AuditEvent.Result.FAILURE,
        kind="VulnDatabase",
        name=filename,
        detail={"refused": str(exc)[:300]},
        request=request,
    )


def import_bundle(*, actor, filename: str, chunks, request=None) -> VulnDatabase:
    """Import the uploaded bundle ``chunks`` (an iterable of bytes) as the vulnerability database scans use from
    now on; Refused, with a sentence and nothing left behind, when it is not a bundle Kubemate accepts."""
    if not accounts_access.may(actor, CICD_ADMIN):
        raise Refused(D(N_("You may not import vulnerability databases.")))
    filename = uploads.safe_name(filename or "bundle.zip")
    root = storage.root() / ROOT
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root)
    incoming = f"{ROOT}/.incoming-{uuid.uuid4().hex}"
    staging = root / f".importing-{uuid.uuid4().hex}"
    try:
        try:
            stored, size, sha256 = storage.save_stream(chunks, incoming, ".zip", settings.KUBEMATE_CICD_MAX_UPLOAD)
        except storage.TooLarge:
            raise _refuse(
                N_("The bundle is larger than %(mb)s MB."), mb=settings.KUBEMATE_CICD_MAX_UPLOAD >> 20
            ) from None
        bundle = storage.resolve(stored)
        ecosystems, data_date, manifest = _unpack(bundle, filename, staging)
        folder = f"{timezone.now():%Y%m%d-%H%M%S}-{sha256[:12]}-{uuid.uuid4().hex[:6]}"
        final = root / folder
        os.replace(staging, final)
        try:
            with transaction.atomic():
                database = VulnDatabase.objects.create(
                    imported_by=actor,
                    data_date=data_date,
                    filename=filename,
                    sha256=sha256,
                    size=size,
                    ecosystems=ecosystems,
                    folder=folder,
                )
                audit.record(
                    actor=actor,
                    action="cicd.vulndb.import",
                    kind="VulnDatabase",
                    name=filename,
                    detail={
                        "ecosystems": ecosystems,
                        "records": sum(ecosystems.values()),
                        "sha256": sha256,
                        "size": size,
                        "date": data_date.isoformat(),
                        "source": str(manifest.get("source", ""))[:200],
                    },
                    request=request,
                )
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
    except Refused as exc:
        _audit_refusal(actor, filename, exc, request)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(storage.root() / incoming, ignore_errors=True)
    transaction.on_commit(prune)
    return database


def _unpack(bundle: Path, filename: str, staging: Path) -> tuple[dict[str, int], datetime, dict]:
    """Check the bundle and write its databases under ``staging``: ({ecosystem: records}, data date, manifest)."""
    try:
        directory = directory_of(bundle)
    except NotAZip:
        raise _refuse(
            N_(
                "%(file)s is not a zip file: upload the bundle as it was exported, a .zip of <Ecosystem>/all.zip files."
            ),
            file=_shown(filename),
        ) from None
    if directory.entries > MAX_ENTRIES or directory.size > MAX_DIRECTORY:
        raise _refuse(TOO_MANY, count=MAX_ENTRIES)
    try:
        with zipfile.ZipFile(bundle) as archive:
            if len(archive.infolist()) > MAX_ENTRIES:
                raise _refuse(TOO_MANY, count=MAX_ENTRIES)
            entries, manifest_info = _check_entries(archive)
            manifest, data_date = _manifest(archive, manifest_info)
            staging.mkdir(mode=0o700)
            ecosystems: dict[str, int] = {}
            newest = None
            for entry in sorted(entries, key=lambda e: e.ecosystem):
                target = staging / SCALIBR / entry.ecosystem / "all.zip"
                target.parent.mkdir(parents=True, exist_ok=True)
                _copy(archive, entry.info, target)
                count, latest = _records(target, entry.info.filename)
                ecosystems[entry.ecosystem] = count
                if latest is not None and (newest is None or latest > newest):
                    newest = latest
            if manifest_info is not None:
                (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False))
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise _refuse(N_("The bundle is damaged: %(error)s"), error=str(exc)[:200]) from None
    except NotAZip:
        raise _refuse(N_("The bundle is damaged: its zip directory cannot be read.")) from None
    return ecosystems, data_date or newest or timezone.now(), manifest


def source_of(database: VulnDatabase) -> str:
    """The source the bundle's manifest names, if any (kept beside the databases)."""
    with contextlib.suppress(OSError, ValueError, TypeError):
        path = storage.resolve(f"{ROOT}/{database.folder}/{MANIFEST}")
        if path.stat().st_size <= MAX_MANIFEST:
            return str(json.loads(path.read_text()).get("source", ""))[:200]
    return ""


def in_use() -> VulnDatabase | None:
    """The database scans use: the newest imported (as runner.stage_scan picks it)."""
    return VulnDatabase.objects.order_by("-imported_at").first()


def prune(keep: int = KEEP) -> int:
    """Remove the databases beyond the newest ``keep``, rows and folders; how many were removed."""
    removed = 0
    old = list(VulnDatabase.objects.order_by("-imported_at", "-pk")[keep:])
    for database in old:
        folder = database.folder
        database.delete()
        # One folder right under vulndb/, never anything above it, whatever the row says.
        if FOLDER.fullmatch(folder or ""):
            shutil.rmtree(storage.root() / ROOT / folder, ignore_errors=True)
        removed += 1
    return removed


def _sweep(root: Path) -> None:
    """Remove what an import killed halfway left (its process died before its own cleanup ran)."""
    cutoff = timezone.now().timestamp() - OLD_TEMP.total_seconds()
    for path in [*root.glob(".importing-*"), *root.glob(".incoming-*")]:
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
