"""The built-in operations knowledge base: Kubemate's own runbooks, one document per inspection check (its title,
why it matters and how to fix it), in English and in Simplified Chinese, so a question in either language finds
it. It has no project (``builtin``): everyone who may ask reads it; nobody edits it through the pages.

``refresh`` makes it match the inspection's catalogue and is idempotent: each document's SHA-256 is that of its
text, so a check whose advice (or translation) is unchanged is left alone, a changed one is written and indexed
again, a new one added, and a check that left the catalogue loses its document. It runs synchronously (the texts
are short) from ``manage.py ai_operations_kb``, and from the ``ai.refresh_operations_kb`` task the lead may
schedule or queue after a migration (``refresh_later``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from apps.ai import milvus
from apps.ai.knowledge import chunking, indexing, storage
from apps.ai.models import Document, KnowledgeBase
from apps.core import audit
from apps.core.deferred import N_, sentence_of
from apps.core.deferred import text as D
from apps.inspection import catalogue
from apps.inspection.checks.base import Domain, Severity

logger = logging.getLogger(__name__)

NAME = "Kubemate operations"
DESCRIPTION = D(N_("Kubemate's own runbooks: what each inspection check looks at, why it matters and how to fix it."))
LANGUAGES = ("en", "zh-hans")


@dataclass
class Runbook:
    check_id: str
    name: str
    text: str
    sections: list[tuple[int, str]]  # (offset, text) of each language's part

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass
class Outcome:
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0

    @property
    def touched(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def _section(check) -> str:
    return "\n\n".join(
        [
            f"# {check.title}",
            _("Inspection check %(id)s · %(domain)s · %(severity)s")
            % {
                "id": check.id,
                "domain": Domain(check.domain).label,
                "severity": Severity(check.severity).label,
            },
            _("Why it matters: %(why)s") % {"why": check.why},
            _("How to fix it: %(fix)s") % {"fix": check.fix},
        ]
    )


def runbooks() -> list[Runbook]:
    """One runbook per check of the inspection's catalogue, in both languages."""
    found = []
    for check in sorted(catalogue.CATALOGUE.values(), key=lambda c: c.id):
        parts: list[str] = []
        for language in LANGUAGES:
            with translation.override(language):
                parts.append(_section(check))
        sections, offset = [], 0
        for part in parts:
            sections.append((offset, part))
            offset += len(part) + 2
        with translation.override("en"):
            title = str(check.title)
        name = f"{title} ({check.id})"[:255]
        found.append(Runbook(check.id, name, "\n\n".join(parts), sections))
    return found


def knowledge_base() -> KnowledgeBase:
    kb = KnowledgeBase.objects.filter(builtin=True).first()
    if kb is None:
        kb, _created = KnowledgeBase.objects.get_or_create(
            builtin=True, defaults={"name": NAME, "description": DESCRIPTION, "project": None}
        )
    return kb


def _chunks(book: Runbook, kb: KnowledgeBase) -> list[chunking.Chunk]:
    """Each language's part cut on its own, so no chunk mixes the two."""
    chunks: list[chunking.Chunk] = []
    for offset, part in book.sections:
        for piece in chunking.split(part, size=kb.chunk_size, overlap=kb.chunk_overlap):
            chunks.append(chunking.Chunk(len(chunks), offset + piece.start, offset + piece.end, None, piece.text))
    return chunks


def refresh(*, force: bool = False) -> Outcome:
    """Make the operations knowledge base match the catalogue (see the module docstring); ``force`` indexes every
    runbook again. Raises ``milvus.MilvusError`` or ``embeddings.EmbeddingError`` when they are down: nothing is
    marked indexed that is not."""
    kb = knowledge_base()
    outcome = Outcome()
    books = runbooks()
    existing = {d.name: d for d in kb.documents.all()}
    wanted = {b.name for b in books}
    gone = [d for name, d in existing.items() if name not in wanted]
    if gone:
        milvus.delete_documents([d.pk for d in gone])
        stored = [storage.stored_of(d) for d in gone]
        Document.objects.filter(pk__in=[d.pk for d in gone]).delete()
        for item in stored:
            storage.remove(item)
        outcome.removed = len(gone)
    for book in books:
        document = existing.get(book.name)
        if (
            document is not None
            and not force
            and document.sha256 == book.sha256
            and document.status == Document.Status.INDEXED
        ):
            outcome.unchanged += 1
            continue
        if document is None:
            outcome.added += 1
        else:
            outcome.changed += 1
        document = _write(kb, book, document)
        try:
            indexing.store(document, book.text, _chunks(book, kb), bump_version=False)
        except milvus.MilvusError:
            raise
        except Exception as exc:  # one runbook that cannot be indexed must not stop the others
            logger.exception("an operations runbook was not indexed", extra={"check": book.check_id})
            Document.objects.filter(pk=document.pk).update(status=Document.Status.FAILED, error=sentence_of(exc))
            outcome.failed += 1
    if outcome.touched or force:
        with transaction.atomic():
            indexing.bump(kb.pk)
            audit.record(
                actor=None,
                actor_name="system",
                action="ai.operations.refreshed",
                kind="KnowledgeBase",
                name=kb.name,
                detail={"knowledge_base": kb.pk, **outcome.__dict__},
            )
    return outcome


def _write(kb: KnowledgeBase, book: Runbook, document: Document | None) -> Document:
    """Keep the runbook's text as the document's original (on disk: the built-in base has no target)."""
    data = book.text.encode()
    spooled = storage.spool([data], name=book.name)
    old = storage.stored_of(document) if document is not None else None
    stored = storage.keep(kb, spooled)
    fields = {
        "content_type": "text/markdown",
        "size": len(data),
        "sha256": book.sha256,
        "storage": stored.storage,
        "storage_key": stored.key,
        "target": None,
        "status": Document.Status.INDEXING,
    }
    if document is None:
        document = Document.objects.create(knowledge_base=kb, name=book.name, **fields)
    else:
        for field, value in fields.items():
            setattr(document, field, value)
        document.save()
        if old is not None and old.key != stored.key:
            storage.remove(old)
    document.knowledge_base = kb
    return document


def refresh_later() -> bool:
    """Queue ``ai.refresh_operations_kb`` (for a post-migrate hook): False when the queue is away."""
    from celery import current_app

    try:
        current_app.send_task("ai.refresh_operations_kb")
    except Exception:  # noqa: BLE001 - kombu's errors vary by transport: the command does the same by hand
        logger.warning("the operations knowledge base refresh was not queued")
        return False
    return True
