"""The AI components themselves (tests/plugins/ai.py): the local model server streams a chat completion, Milvus Lite's
server stores and searches vectors and keeps them across a restart, and a missing build fails with what to run."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.plugins import ai as plugin


def _stream(llm, content: str, max_tokens: int = 24) -> tuple[list[str], list[str]]:
    """The text pieces of a streamed chat completion, and the finish reasons seen."""
    body = {
        "model": llm.model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0.2,
        "stream": True,
    }
    pieces, reasons, done = [], [], False
    with requests.post(f"{llm.base_url}/chat/completions", json=body, stream=True, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                done = True
                break
            choice = json.loads(data)["choices"][0]
            if choice["delta"].get("content"):
                pieces.append(choice["delta"]["content"])
            if choice.get("finish_reason"):
                reasons.append(choice["finish_reason"])
    assert done, "the stream did not end with data: [DONE]"
    return pieces, reasons


def test_the_local_model_server_lists_its_model_and_streams_a_chat_completion(llm):
    models = requests.get(f"{llm.base_url}/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == ["smollm2-135m-instruct"] == [llm.model]
    pieces, reasons = _stream(llm, "Name one thing a Kubernetes operator checks every morning.")
    assert len(pieces) > 1, pieces  # streamed piece by piece, not in one block
    assert "".join(pieces).strip()
    assert reasons and reasons[-1] in ("stop", "length")


def test_a_stopped_model_server_refuses_and_answers_again_after_start(llm):
    llm.stop()
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{llm.base_url}/models", timeout=5)
    finally:
        llm.start()
    pieces, _ = _stream(llm, "Say hello.", max_tokens=8)
    assert "".join(pieces).strip()


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector]


VECTORS = [_unit([1.0, 0.1, 0.0, 0.2]), _unit([0.0, 1.0, 0.3, 0.0]), _unit([0.1, 0.0, 1.0, 0.9])]


def _collection(client) -> str:
    name = f"components_{uuid.uuid4().hex[:10]}"
    client.create_collection(name, dimension=4, metric_type="COSINE", auto_id=False)
    rows = [{"id": 100 + i, "vector": v, "label": f"row {i}"} for i, v in enumerate(VECTORS)]
    assert client.insert(name, rows)["insert_count"] == 3
    return name


def _nearest(client, name: str, query: list[float]) -> list[tuple[int, float]]:
    (hits,) = client.search(name, data=[query], limit=3, output_fields=["label"])
    return [(hit["id"], hit["distance"]) for hit in hits]


def _cosines(query: list[float]) -> list[tuple[int, float]]:
    """The same ranking computed here: ids by cosine to ``query``, best first."""
    scores = [(100 + i, math.fsum(a * b for a, b in zip(query, v, strict=True))) for i, v in enumerate(VECTORS)]
    return sorted(scores, key=lambda pair: -pair[1])


def test_milvus_stores_three_vectors_and_finds_the_nearest(milvus):
    assert milvus.uri == settings.KUBEMATE_MILVUS_URI
    client = milvus.client()
    try:
        name = _collection(client)
        for query in (_unit([0.9, 0.2, 0.1, 0.1]), _unit([0.1, 0.8, 0.4, 0.0]), _unit([0.0, 0.1, 0.7, 1.0])):
            found = _nearest(client, name, query)
            expected = _cosines(query)
            assert [i for i, _ in found] == [i for i, _ in expected]
            for (_, got), (_, want) in zip(found, expected, strict=True):
                assert math.isclose(got, want, abs_tol=1e-4)
        assert client.query(name, filter="id == 101", output_fields=["label"])[0]["label"] == "row 1"
        client.drop_collection(name)
        assert name not in client.list_collections()
    finally:
        client.close()


def test_milvus_keeps_its_data_when_stopped_and_started(milvus):
    client = milvus.client()
    try:
        name = _collection(client)
    finally:
        client.close()
    milvus.stop()
    try:
        assert not milvus._listening()
    finally:
        milvus.start()
    client = milvus.client()
    try:
        assert name in client.list_collections()
        client.load_collection(name)
        assert client.query(name, filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 3
        assert _nearest(client, name, VECTORS[2])[0][0] == 102
        client.drop_collection(name)
    finally:
        client.close()
    assert any(Path(milvus.data_dir).iterdir())


def test_a_missing_build_fails_with_what_to_run(tmp_path):
    missing = tmp_path / "venv" / "bin" / "python"
    with pytest.raises(pytest.fail.Exception, match=r"Milvus Lite is not built .* run `make ai-build` first"):
        plugin.require_built("Milvus Lite", missing)
    # A file without its cache entry's mark (a build stopped halfway) is missing too.
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(pytest.fail.Exception, match="make ai-build"):
        plugin.require_built("The local model server", model)
    (tmp_path / ".complete").write_text("0.1.2")
    plugin.require_built("The local model server", model)
