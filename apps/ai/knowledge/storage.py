"""Where the original documents are kept: the knowledge base's S3 target when it has one (through the backups app's
S3 door, ``apps/backups/s3.py``), else a private folder on the console's disk (``KUBEMATE_AI_DOCUMENTS_DIR``,
default ``.run/ai-documents``).

Files are named by their SHA-256 inside their knowledge base's folder (``kb-<id>/<sha256>``), never by the name a
person gave them, so no upload names a path. An upload is first spooled to a private file (its size bounded while
it is written, its digest taken on the way), then moved into place (disk: one rename) or uploaded whole (S3: whole
or absent). Reading back is bounded by the largest upload.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from apps.ai.knowledge import extract
from apps.ai.models import Document, KnowledgeBase
from apps.backups import s3
from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

logger = logging.getLogger(__name__)

S3_FOLDER = "kubemate-ai"


class StorageFailure(Failure):
    """The original could not be kept, read or removed; the sentence says where and what to check."""


@dataclass
class Spooled:
    path: Path
    sha256: str
    size: int
    head: bytes

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class Stored:
    storage: str
    key: str
    target_id: int | None


def root() -> Path:
    configured = settings.KUBEMATE_AI_DOCUMENTS_DIR or Path(settings.BASE_DIR) / ".run" / "ai-documents"
    path = Path(configured)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _incoming() -> Path:
    path = root() / ".incoming"
    path.mkdir(exist_ok=True, mode=0o700)
    return path


def _disk_path(key: str) -> Path:
    base = root().resolve()
    path = (base / key).resolve()
    if base not in path.parents:
        raise StorageFailure(D(N_("A stored document's name leaves the documents folder; it was not touched.")))
    return path


def spool(chunks: Iterable[bytes], *, name: str) -> Spooled:
    """Write an upload to a private file, refusing it as soon as it passes the largest size."""
    limit = extract.max_bytes()
    path = _incoming() / uuid.uuid4().hex
    digest, size, head = hashlib.sha256(), 0, b""
    try:
        with open(path, "xb") as handle:
            os.chmod(path, 0o600)
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise extract.ExtractError(
                        D(
                            N_("%(name)s is larger than %(limit)s MiB: split it, or upload its text."),
                            name=name,
                            limit=limit // extract.MiB,
                        )
                    )
                if len(head) < 1024:
                    head += chunk[: 1024 - len(head)]
                digest.update(chunk)
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Spooled(path, digest.hexdigest(), size, head)


def _s3_key(kb: KnowledgeBase, sha256: str) -> str:
    return kb.target.key(S3_FOLDER, f"kb-{kb.pk}", sha256)


def keep(kb: KnowledgeBase, spooled: Spooled) -> Stored:
    """Put the spooled file where ``kb`` keeps its documents; the spool file is gone afterwards either way."""
    try:
        if kb.target_id:
            key = _s3_key(kb, spooled.sha256)
            try:
                s3.upload(s3.access_for(kb.target), key, spooled.path)
            except s3.StorageError as exc:
                raise StorageFailure(exc.stored) from None
            return Stored(Document.Storage.S3, key, kb.target_id)
        key = f"kb-{kb.pk}/{spooled.sha256}"
        path = _disk_path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(spooled.path, path)
        return Stored(Document.Storage.DISK, key, None)
    finally:
        spooled.discard()


@contextmanager
def local_copy(document: Document):
    """A path to the document's original on this machine for the block (a download from S3 is removed after)."""
    if document.storage == Document.Storage.DISK:
        path = _disk_path(document.storage_key)
        if not path.is_file():
            raise StorageFailure(
                D(
                    N_("The original of %(name)s is missing from the console's disk: upload it again."),
                    name=document.name,
                )
            )
        yield path
        return
    with tempfile.TemporaryDirectory(dir=_incoming()) as folder:
        path = Path(folder) / "original"
        try:
            s3.download(_access(document), document.storage_key, path, max_bytes=extract.max_bytes())
        except s3.StorageError as exc:
            raise StorageFailure(exc.stored) from None
        yield path


def read(document: Document) -> bytes:
    """The original's bytes, at most the largest upload."""
    with local_copy(document) as path:
        if path.stat().st_size > extract.max_bytes():
            raise extract.ExtractError(
                D(
                    N_("%(name)s is larger than %(limit)s MiB: split it, or upload its text."),
                    name=document.name,
                    limit=extract.max_bytes() // extract.MiB,
                )
            )
        return path.read_bytes()


def open_original(document: Document):
    """An open binary file of the original, for a download; the caller closes it (a copy from S3 has no name left
    on disk once it is open)."""
    if document.storage == Document.Storage.DISK:
        with local_copy(document) as path:
            return open(path, "rb")  # handed to the response, which closes it
    folder = Path(tempfile.mkdtemp(dir=_incoming()))
    path = folder / "original"
    try:
        s3.download(_access(document), document.storage_key, path, max_bytes=extract.max_bytes())
        return open(path, "rb")  # handed to the response, which closes it
    except s3.StorageError as exc:
        raise StorageFailure(exc.stored) from None
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()


def _access(document: Document) -> s3.Access:
    if document.target is None:
        raise StorageFailure(
            D(N_("The storage target of %(name)s was removed: upload the document again."), name=document.name)
        )
    return s3.access_for(document.target)


def check_reachable(documents: Iterable[Document]) -> None:
    """StorageFailure unless the storage of each of ``documents`` answers (asked once per target), so a removal
    that would fail halfway is refused before anything changes."""
    asked: set[int] = set()
    for document in documents:
        if document.storage != Document.Storage.S3 or document.target_id in asked:
            continue
        asked.add(document.target_id)
        try:
            s3.exists(_access(document), document.storage_key)
        except s3.StorageError as exc:
            raise StorageFailure(exc.stored) from None


def shared(storage: str, key: str, target_id: int | None, *, but: int | None = None) -> bool:
    """Whether another document row still names this stored file."""
    rows = Document.objects.filter(storage=storage, storage_key=key, target_id=target_id)
    if but is not None:
        rows = rows.exclude(pk=but)
    return rows.exists()


def remove(stored: Stored) -> bool:
    """Remove a stored original no row names any more; False (logged) when the storage refused: the file is left
    behind for ``sweep`` and nobody can reach it through the console."""
    if not stored.key or shared(stored.storage, stored.key, stored.target_id):
        return True
    try:
        if stored.storage == Document.Storage.DISK:
            _disk_path(stored.key).unlink(missing_ok=True)
        else:
            from apps.backups.models import Target

            target = Target.objects.filter(pk=stored.target_id).first()
            if target is None:
                return True
            s3.delete(s3.access_for(target), stored.key)
    except (OSError, s3.StorageError, StorageFailure) as exc:
        logger.warning("a document's original was not removed", extra={"key": stored.key, "error": str(exc)[:200]})
        return False
    return True


def stored_of(document: Document) -> Stored:
    return Stored(document.storage, document.storage_key, document.target_id)


def sweep(kb_id: int) -> int:
    """Remove the disk files of knowledge base ``kb_id`` that no document names (a removal the disk refused);
    returns how many. Objects on S3 are listed and removed the same way when the knowledge base still has its
    target."""
    removed = 0
    folder = root() / f"kb-{int(kb_id)}"
    if folder.is_dir():
        named = set(
            Document.objects.filter(knowledge_base_id=kb_id, storage=Document.Storage.DISK).values_list(
                "storage_key", flat=True
            )
        )
        for path in folder.iterdir():
            if f"kb-{int(kb_id)}/{path.name}" not in named and path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
        if not any(folder.iterdir()):
            folder.rmdir()
    kb = KnowledgeBase.objects.filter(pk=kb_id).select_related("target").first()
    if kb is not None and kb.target_id:
        access = s3.access_for(kb.target)
        prefix = kb.target.key(S3_FOLDER, f"kb-{kb.pk}") + "/"
        named = set(kb.documents.filter(storage=Document.Storage.S3).values_list("storage_key", flat=True))
        try:
            for item in list(s3.objects(access, prefix, limit=10_000)):
                if item.key not in named:
                    s3.delete(access, item.key)
                    removed += 1
        except s3.StorageError as exc:
            raise StorageFailure(exc.stored) from None
    return removed
