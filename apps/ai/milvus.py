"""The one door to Milvus, where the chunks of every knowledge base live with their vectors.

pymilvus's ``MilvusClient`` speaks Milvus's gRPC API, so the same code serves Milvus Lite's server mode (tests, the
demo) and a real Milvus cluster (production): ``KUBEMATE_MILVUS_URI`` (``http://host:19530``),
``KUBEMATE_MILVUS_TOKEN`` (``user:password`` or an API key, from the environment, never logged) and
``KUBEMATE_MILVUS_COLLECTION`` (default ``kubemate_chunks``).

One collection holds every knowledge base's chunks: ``kb``, ``project`` (0 for the built-in operations knowledge
base), ``document``, ``position`` and ``text`` beside the 384-float ``vector``; an HNSW index on the cosine. Every
search names the knowledge bases it may read (the caller decides which, ``apps/ai/retrieval.py``), so one project's
chunks never answer another's question. Filter expressions are built here from integers only.

Every failure is a ``MilvusError`` with a sentence naming Milvus and its address; nothing here waits longer than
``KUBEMATE_MILVUS_TIMEOUT`` seconds (default 10).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from apps.ai.embeddings import DIMENSION

TEXT_MAX = 8_000  # characters kept per chunk (Milvus VARCHAR max_length counts bytes: 4 per character at most)
INSERT_BATCH = 256
TOP_K_MAX = 50
FILTER_IDS_MAX = 1_000

logging.getLogger("pymilvus").setLevel(logging.ERROR)


class MilvusError(Exception):
    def __init__(self, sentence):
        super().__init__(str(sentence))
        self.sentence = sentence


@dataclass
class ChunkRow:
    knowledge_base: int
    project: int
    document: int
    position: int
    text: str
    vector: list[float]


@dataclass
class Hit:
    knowledge_base: int
    project: int
    document: int
    position: int
    text: str
    score: float


_lock = threading.Lock()
_clients: dict[tuple[str, str], object] = {}
_ready: set[tuple[str, str, str]] = set()


def uri() -> str:
    return settings.KUBEMATE_MILVUS_URI or ""


def address() -> str:
    """The host and port, for sentences (never the token)."""
    parts = urlsplit(uri())
    return parts.netloc or uri()


def collection() -> str:
    return settings.KUBEMATE_MILVUS_COLLECTION or "kubemate_chunks"


def _timeout() -> float:
    return float(settings.KUBEMATE_MILVUS_TIMEOUT)


def _down(exc: Exception) -> MilvusError:
    detail = getattr(exc, "message", "") or str(exc) or exc.__class__.__name__
    return MilvusError(
        _("Milvus at %(address)s did not answer: %(error)s") % {"address": address(), "error": detail[:300]}
    )


def _client():
    if not uri():
        raise MilvusError(_("No Milvus is configured: set KUBEMATE_MILVUS_URI."))
    token = settings.KUBEMATE_MILVUS_TOKEN or ""
    key = (uri(), token)
    with _lock:
        client = _clients.get(key)
        if client is None:
            try:
                from pymilvus import MilvusClient
            except ImportError as exc:
                raise MilvusError(_("The Milvus client is not installed: run make deps.")) from exc
            try:
                client = MilvusClient(uri=uri(), token=token, timeout=_timeout())
            except Exception as exc:
                raise _down(exc) from exc
            _clients[key] = client
        return client


def _forget() -> None:
    """Drop the cached clients (a Milvus restart, a changed address): the next call connects again."""
    with _lock:
        for client in _clients.values():
            with contextlib.suppress(Exception):  # closing a dead channel
                client.close()
        _clients.clear()
        _ready.clear()


def _prepared():
    """The client, with the collection created, indexed and loaded once per process."""
    client = _client()
    key = (uri(), settings.KUBEMATE_MILVUS_TOKEN or "", collection())
    if key in _ready:
        return client
    from pymilvus import DataType

    name = collection()
    try:
        if not client.has_collection(name, timeout=_timeout()):
            schema = client.create_schema(auto_id=True, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIMENSION)
            schema.add_field("kb", DataType.INT64)
            schema.add_field("project", DataType.INT64)
            schema.add_field("document", DataType.INT64)
            schema.add_field("position", DataType.INT64)
            schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX * 4)
            index = client.prepare_index_params()
            index.add_index(
                field_name="vector", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200}
            )
            client.create_collection(name, schema=schema, index_params=index, timeout=_timeout())
        client.load_collection(name, timeout=_timeout())
    except MilvusError:
        raise
    except Exception as exc:
        _forget()
        raise _down(exc) from exc
    _ready.add(key)
    return client


def _ids(values) -> str:
    ids = sorted({int(v) for v in values})
    if len(ids) > FILTER_IDS_MAX:
        raise MilvusError(_("Too many items to filter on at once (%(count)d).") % {"count": len(ids)})
    return "[" + ",".join(str(i) for i in ids) + "]"


def _not_loaded(exc: Exception) -> bool:
    """Milvus restarted (or another client released the collection) since this process loaded it."""
    text = str(exc).lower()
    return "released" in text or "not loaded" in text


def _call(method: str, *args, **kwargs):
    for attempt in (1, 2):
        client = _prepared()
        try:
            return getattr(client, method)(collection(), *args, timeout=_timeout(), **kwargs)
        except MilvusError:
            raise
        except Exception as exc:
            _forget()
            if attempt == 1 and _not_loaded(exc):
                continue  # load it again, once
            raise _down(exc) from exc
    raise AssertionError("unreachable")


def insert(rows: list[ChunkRow]) -> int:
    """Store ``rows``; returns how many were stored."""
    stored = 0
    for start in range(0, len(rows), INSERT_BATCH):
        data = [
            {
                "vector": [float(x) for x in r.vector],
                "kb": int(r.knowledge_base),
                "project": int(r.project),
                "document": int(r.document),
                "position": int(r.position),
                "text": r.text[:TEXT_MAX],
            }
            for r in rows[start : start + INSERT_BATCH]
        ]
        result = _call("insert", data)
        stored += int(result.get("insert_count", len(data)) if isinstance(result, dict) else len(data))
    return stored


def flush() -> None:
    """Seal what was inserted into a segment, so it is searched through the index: Milvus Lite searches unflushed
    rows by brute force in Python (bench/ai.py: 125 ms p50 over 2,000 unflushed rows, 7.5 ms once flushed). Called
    once a document's chunks are in, not per batch."""
    _call("flush")


def delete_document(document_id: int) -> None:
    _call("delete", filter=f"document == {int(document_id)}")


def delete_documents(document_ids) -> None:
    if document_ids:
        _call("delete", filter=f"document in {_ids(document_ids)}")


def delete_knowledge_base(kb_id: int) -> None:
    _call("delete", filter=f"kb == {int(kb_id)}")


def search(
    vector: list[float], *, knowledge_bases: list[int], top_k: int = 5, documents: list[int] | None = None
) -> list[Hit]:
    """The ``top_k`` chunks nearest to ``vector`` among ``knowledge_bases`` (and ``documents`` when given), best
    first. No knowledge base named: nothing (never every collection's chunks)."""
    if not knowledge_bases:
        return []
    expression = f"kb in {_ids(knowledge_bases)}"
    if documents:
        expression += f" and document in {_ids(documents)}"
    top_k = max(1, min(int(top_k), TOP_K_MAX))
    results = _call(
        "search",
        data=[[float(x) for x in vector]],
        filter=expression,
        limit=top_k,
        output_fields=["kb", "project", "document", "position", "text"],
        search_params={"metric_type": "COSINE", "params": {"ef": max(64, top_k * 2)}},
    )
    hits: list[Hit] = []
    for found in results[0] if results else []:
        entity = found.get("entity") or {}
        hits.append(
            Hit(
                knowledge_base=int(entity.get("kb", 0)),
                project=int(entity.get("project", 0)),
                document=int(entity.get("document", 0)),
                position=int(entity.get("position", 0)),
                text=str(entity.get("text", "")),
                score=float(found.get("distance", 0.0)),
            )
        )
    return hits


def count(*, knowledge_base: int | None = None, document: int | None = None) -> int:
    terms = []
    if knowledge_base is not None:
        terms.append(f"kb == {int(knowledge_base)}")
    if document is not None:
        terms.append(f"document == {int(document)}")
    rows = _call("query", filter=" and ".join(terms) or "id >= 0", output_fields=["count(*)"])
    return int(rows[0]["count(*)"]) if rows else 0


def status() -> dict:
    """Whether Milvus answers, for status pages: never raises."""
    try:
        chunks = count()
    except MilvusError as exc:
        return {"reachable": False, "address": address(), "chunks": None, "error": exc.sentence}
    return {"reachable": True, "address": address(), "chunks": chunks, "error": ""}
