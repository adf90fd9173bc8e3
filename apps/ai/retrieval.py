"""Retrieval: the chunks nearest to a question, from the knowledge bases a person may read, and nothing else.

``retrieve`` is what the search pages and the assistant call. It keeps only the knowledge bases ``access`` allows
``user`` with ``code`` (a project's own, and the built-in operations knowledge base), embeds the question once
(``embeddings.py``) and asks Milvus (``milvus.py``) with those knowledge bases in the filter, so another project's
chunks can never come back, whatever ids a request names. Each passage carries its document's name for the
citation link; chunks whose document was deleted meanwhile are dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from apps.ai import access, embeddings, milvus
from apps.ai.models import Document

QUESTION_MAX = 2_000
TOP_K_MAX = 20


@dataclass
class Passage:
    knowledge_base_id: int
    knowledge_base_name: str
    document_id: int
    document_name: str
    position: int
    score: float
    text: str


@dataclass
class Retrieved:
    passages: list[Passage]
    knowledge_base_ids: list[int]
    milliseconds: int


def allowed_ids(user, knowledge_base_ids, *, code: str) -> dict[int, str]:
    """The asked knowledge bases ``user`` may read with ``code``: {id: name}."""
    wanted = {int(pk) for pk in knowledge_base_ids}
    if not wanted:
        return {}
    rows = access.knowledge_bases(user, code).filter(pk__in=wanted).values_list("pk", "name")
    return dict(rows)


def search(user, question: str, knowledge_base_ids, *, code: str, top_k: int = 5, documents=None) -> Retrieved:
    started = time.monotonic()
    names = allowed_ids(user, knowledge_base_ids, code=code)
    question = (question or "").strip()[:QUESTION_MAX]
    if not names or not question:
        return Retrieved([], sorted(names), 0)
    vector = embeddings.embed_one(question)
    hits = milvus.search(
        vector,
        knowledge_bases=sorted(names),
        top_k=max(1, min(int(top_k), TOP_K_MAX)),
        documents=[int(d) for d in documents] if documents else None,
    )
    docs = dict(
        Document.objects.filter(pk__in={h.document for h in hits}, knowledge_base_id__in=names).values_list(
            "pk", "name"
        )
    )
    passages = [
        Passage(
            knowledge_base_id=h.knowledge_base,
            knowledge_base_name=names[h.knowledge_base],
            document_id=h.document,
            document_name=docs[h.document],
            position=h.position,
            score=round(h.score, 4),
            text=h.text,
        )
        for h in hits
        if h.knowledge_base in names and h.document in docs
    ]
    return Retrieved(passages, sorted(names), round((time.monotonic() - started) * 1000))


def retrieve(user, question: str, knowledge_base_ids, *, code: str, top_k: int = 5, documents=None) -> list[Passage]:
    """The passages only (see ``search`` for the timing and the knowledge bases actually searched)."""
    return search(user, question, knowledge_base_ids, code=code, top_k=top_k, documents=documents).passages
