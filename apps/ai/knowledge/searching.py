"""The search page's search: ``retrieval.search`` over the knowledge bases a person may read (with ai.view, or
ai.ask where they only ask), each hit with its document's link and where the chunk came from (offsets, page).
Milvus or the embedding model down is a sentence, never an error page."""

from __future__ import annotations

from dataclasses import dataclass, field

from apps.accounts.capabilities import AI_ASK, AI_VIEW
from apps.ai import embeddings, milvus, retrieval
from apps.ai.knowledge.services import document_url
from apps.ai.models import Document


@dataclass
class Hit:
    passage: retrieval.Passage
    url: str
    start: int | None = None
    end: int | None = None
    page: int | None = None


@dataclass
class Results:
    hits: list[Hit] = field(default_factory=list)
    searched: int = 0  # how many knowledge bases were searched
    milliseconds: int = 0
    sentence: str = ""  # why there are no results: Milvus or the model down


def search(user, question: str, knowledge_base_ids: list[int], *, top_k: int, documents=None) -> Results:
    """The ``top_k`` nearest chunks among ``knowledge_base_ids`` that ``user`` may read (others are dropped)."""
    viewed = retrieval.allowed_ids(user, knowledge_base_ids, code=AI_VIEW)
    asked = set(retrieval.allowed_ids(user, set(knowledge_base_ids) - set(viewed), code=AI_ASK))
    found: list[retrieval.Passage] = []
    milliseconds = 0
    try:
        for code, ids in ((AI_VIEW, set(viewed)), (AI_ASK, asked)):
            if not ids:
                continue
            done = retrieval.search(user, question, ids, code=code, top_k=top_k, documents=documents)
            found.extend(done.passages)
            milliseconds += done.milliseconds
    except (milvus.MilvusError, embeddings.EmbeddingError) as exc:
        return Results(searched=len(viewed) + len(asked), sentence=str(exc.sentence))
    found.sort(key=lambda p: p.score, reverse=True)
    found = found[:top_k]
    positions = dict(Document.objects.filter(pk__in={p.document_id for p in found}).values_list("pk", "positions"))
    hits = []
    for passage in found:
        hit = Hit(passage, document_url(passage.document_id))
        where = positions.get(passage.document_id) or []
        if 0 <= passage.position < len(where):
            hit.start, hit.end, hit.page = where[passage.position]
        hits.append(hit)
    return Results(hits, len(viewed) + len(asked), milliseconds)
