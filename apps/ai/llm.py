"""The one door to model servers: OpenAI-compatible APIs (vLLM, llama.cpp's server, a bank's gateway) and Ollama.

- ``list_models``: ``GET {base}/models`` (OpenAI: ``{"data": [{"id": ...}]}``) or ``GET {base}/api/tags``
  (Ollama: ``{"models": [{"name", "size", "modified_at", "details": {"family"}}]}``), bounded in size and time.
- ``chat``: a streamed chat completion, yielding the text as it arrives: ``POST {base}/chat/completions`` with
  ``stream: true`` (server-sent events, ``data: {...}`` lines, ``data: [DONE]``) or Ollama's ``POST /api/chat``
  (one JSON object per line, ``done: true`` at the end). Each line, the whole answer and the time to the first and
  between pieces are bounded.
- ``check``: lists the models and records the answer (or the sentence) on the ``Endpoint`` row.

The API key (``Endpoint.api_key``, decrypted only here) travels as ``Authorization: Bearer`` and is never logged. An
endpoint's own CA is written to a private temporary file for the request's verification. Every failure is an
``LLMError`` whose sentence names the server and what went wrong.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.deferred import N_
from apps.core.deferred import text as deferred_text
from apps.observability import fetching

MODELS_LIMIT = 1024 * 1024
MODELS_MAX = 500
LINE_LIMIT = 256 * 1024
ANSWER_LIMIT = 200_000  # characters of one streamed answer


class LLMError(Exception):
    def __init__(self, sentence, *, deferred: str = ""):
        super().__init__(str(sentence))
        self.sentence = sentence
        self.deferred = deferred  # the same sentence as core.deferred text, for rows read later


@dataclass
class ModelInfo:
    name: str
    size: int | None = None
    family: str = ""
    modified: str = ""


def _timeout() -> float:
    return float(settings.KUBEMATE_AI_LLM_TIMEOUT)


def _answer_seconds() -> float:
    return float(settings.KUBEMATE_AI_ANSWER_SECONDS)


def is_ollama(endpoint) -> bool:
    return endpoint.kind == "ollama"


def _base(endpoint) -> str:
    base = (endpoint.base_url or "").rstrip("/")
    if not base:
        raise _fail(endpoint, N_("%(server)s has no address."))
    if is_ollama(endpoint) and base.endswith("/v1"):
        base = base[: -len("/v1")]
    return base


def server_name(endpoint) -> str:
    parts = urlsplit(endpoint.base_url or "")
    return f"{endpoint.name} ({parts.netloc})" if parts.netloc else endpoint.name


def _fail(endpoint, message: str, **params) -> LLMError:
    """An ``LLMError`` whose sentence is in the current language and whose ``deferred`` form is stored for readers."""
    params = {"server": server_name(endpoint), **params}
    return LLMError(_(message) % params, deferred=deferred_text(message, **params))


def _headers(endpoint) -> dict:
    headers = {"Accept": "application/json", "User-Agent": "kubemate"}
    key = endpoint.api_key()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


@contextmanager
def _verify(endpoint):
    """``requests``' ``verify``: the endpoint's own CA in a private temporary file, else the system's."""
    if not endpoint.ca_pem:
        yield True
        return
    fd, path = tempfile.mkstemp(prefix="kubemate-ca-", suffix=".pem")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(endpoint.ca_pem)
        yield path
    finally:
        os.unlink(path)


def _json(endpoint, body: bytes):
    try:
        return json.loads(body)
    except ValueError as exc:
        raise _fail(endpoint, N_("%(server)s answered something that is not JSON.")) from exc


def list_models(endpoint) -> list[ModelInfo]:
    base = _base(endpoint)
    url = f"{base}/api/tags" if is_ollama(endpoint) else f"{base}/models"
    with _verify(endpoint) as verify:
        try:
            answer = fetching.fetch(
                "GET", url, limit=MODELS_LIMIT, timeout=_timeout(), headers=_headers(endpoint), verify=verify
            )
        except fetching.Late as exc:
            raise _fail(
                endpoint, N_("%(server)s did not answer within %(seconds)d seconds."), seconds=_timeout()
            ) from exc
        except fetching.Failed as exc:
            raise _fail(endpoint, N_("%(server)s cannot be reached.")) from exc
    if answer.status in (401, 403):
        raise _fail(endpoint, N_("%(server)s refused the API key (HTTP %(status)d)."), status=answer.status)
    if answer.status != 200:
        raise _fail(endpoint, N_("%(server)s answered HTTP %(status)d."), status=answer.status)
    if len(answer.body) > MODELS_LIMIT:
        raise _fail(endpoint, N_("%(server)s answered more than %(limit)d bytes."), limit=MODELS_LIMIT)
    data = _json(endpoint, answer.body)
    if not isinstance(data, dict):
        raise _fail(endpoint, N_("%(server)s answered something that is not a model list."))
    models: list[ModelInfo] = []
    if is_ollama(endpoint):
        for item in (data.get("models") or [])[:MODELS_MAX]:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                details = item.get("details") if isinstance(item.get("details"), dict) else {}
                size = item.get("size")
                models.append(
                    ModelInfo(
                        name=item["name"][:200],
                        size=size if isinstance(size, int) else None,
                        family=str(details.get("family") or "")[:100],
                        modified=str(item.get("modified_at") or "")[:40],
                    )
                )
    else:
        for item in (data.get("data") or [])[:MODELS_MAX]:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                models.append(ModelInfo(name=item["id"][:200], family=str(item.get("owned_by") or "")[:100]))
    return models


def check(endpoint) -> list[ModelInfo]:
    """List the models and record the answer on the row (``served_models``, ``checked_at``, ``last_error``)."""
    try:
        models = list_models(endpoint)
    except LLMError as exc:
        endpoint.last_error = exc.deferred
        endpoint.checked_at = timezone.now()
        endpoint.save(update_fields=["last_error", "checked_at"])
        raise
    endpoint.served_models = [m.__dict__ for m in models]
    endpoint.last_error = ""
    endpoint.checked_at = timezone.now()
    endpoint.save(update_fields=["served_models", "last_error", "checked_at"])
    return models


def _lines(endpoint, response, deadline: float) -> Iterator[bytes]:
    buffer = b""
    for piece in response.iter_content(chunk_size=4096):
        if time.monotonic() > deadline:
            raise _fail(endpoint, N_("%(server)s took longer than %(seconds)d seconds."), seconds=_answer_seconds())
        buffer += piece
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.strip()
        if len(buffer) > LINE_LIMIT:
            raise _fail(endpoint, N_("%(server)s sent a line longer than %(limit)d bytes."), limit=LINE_LIMIT)
    if buffer.strip():
        yield buffer.strip()


def _pieces_openai(endpoint, response, deadline) -> Iterator[str]:
    for line in _lines(endpoint, response, deadline):
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return
        event = _json(endpoint, payload)
        if isinstance(event, dict) and isinstance(event.get("error"), dict):
            message = str(event["error"].get("message") or "")[:300]
            raise _fail(endpoint, N_("%(server)s stopped with an error: %(error)s"), error=message)
        choices = event.get("choices") if isinstance(event, dict) else None
        if choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                yield content


def _pieces_ollama(endpoint, response, deadline) -> Iterator[str]:
    for line in _lines(endpoint, response, deadline):
        if not line:
            continue
        event = _json(endpoint, line)
        if not isinstance(event, dict):
            continue
        if event.get("error"):
            raise _fail(endpoint, N_("%(server)s stopped with an error: %(error)s"), error=str(event["error"])[:300])
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        content = message.get("content")
        if isinstance(content, str) and content:
            yield content
        if event.get("done"):
            return


def chat(
    endpoint, model: str, messages: list[dict], *, max_tokens: int = 400, temperature: float = 0.2
) -> Iterator[str]:
    """The answer's text in pieces as the server generates it."""
    import requests

    base = _base(endpoint)
    if is_ollama(endpoint):
        url = f"{base}/api/chat"
        body = {
            "model": model,
            "messages": messages,
            "stream": True,
            "options": {"num_predict": max_tokens, "temperature": temperature},
        }
        pieces = _pieces_ollama
    else:
        url = f"{base}/chat/completions"
        body = {
            "model": model,
            "messages": messages,
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        pieces = _pieces_openai
    deadline = time.monotonic() + _answer_seconds()
    with _verify(endpoint) as verify:
        try:
            response = requests.post(
                url,
                json=body,
                headers={**_headers(endpoint), "Accept": "text/event-stream"},
                timeout=(_timeout(), _answer_seconds()),
                stream=True,
                allow_redirects=False,
                verify=verify,
            )
        except requests.Timeout as exc:
            raise _fail(
                endpoint, N_("%(server)s did not answer within %(seconds)d seconds."), seconds=_timeout()
            ) from exc
        except requests.ConnectionError as exc:
            raise _fail(endpoint, N_("%(server)s cannot be reached.")) from exc
        except requests.RequestException as exc:
            raise _fail(endpoint, N_("%(server)s cannot be reached: %(error)s"), error=str(exc)[:200]) from exc
        with response:
            if response.status_code in (401, 403):
                raise _fail(
                    endpoint, N_("%(server)s refused the API key (HTTP %(status)d)."), status=response.status_code
                )
            if response.status_code == 404:
                raise _fail(endpoint, N_("%(server)s does not serve the model %(model)s."), model=model[:200])
            if response.status_code != 200:
                raise _fail(endpoint, N_("%(server)s answered HTTP %(status)d."), status=response.status_code)
            size = 0
            try:
                for piece in pieces(endpoint, response, deadline):
                    size += len(piece)
                    if size > ANSWER_LIMIT:
                        return
                    yield piece
            except requests.RequestException as exc:
                raise _fail(endpoint, N_("%(server)s broke off the answer: %(error)s"), error=str(exc)[:200]) from exc
