"""Asking a log store over HTTP: one request builder for both backends, with timeouts, bounded reads, and what
goes wrong as the door's sentences.

Answers are outside input: a whole answer is read up to ``MAX_ANSWER_BYTES`` before it is parsed (``get_json``), a
streamed one (VictoriaLogs' JSON lines, ``get_rows``) row by row, a row longer than ``MAX_ROW_BYTES`` skipped.
Credentials travel in headers and basic auth only; sentences name the store by its address without them
(``Endpoint.shown``), and no exception raised here carries a request (whose headers hold them).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING

import urllib3

from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.observability.endpoints import Endpoint
from apps.observability.logstore.errors import LogStoreError, NotConfigured, Unreachable

if TYPE_CHECKING:
    import requests

TIMEOUT = 10  # seconds to connect and between bytes of an answer
MAX_ANSWER_BYTES = 16 * 1024 * 1024
MAX_ROW_BYTES = 1024 * 1024  # one JSON row of a streamed answer (a 64 KiB line with its fields fits easily)
MAX_ERROR_CHARS = 500  # of the store's own error text, quoted in a sentence

_local = threading.local()


def _session() -> requests.Session:
    """This thread's session: its connections stay open between requests (keep-alive), so a search does not pay a
    new TCP connection each time. One per thread, since a ``requests.Session`` is not promised to be thread-safe;
    a connection goes back to the pool only when its answer was read to the end (an answer left half-read closes
    its connection). It keeps no cookie: one cluster's store (or the proxy before it) must not hand another
    request of this thread, for another person or tenant, anything but what that request carries itself."""
    session = getattr(_local, "session", None)
    if session is None:
        import requests

        session = requests.Session()
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        _local.session = session
    return session


class Store:
    """Where one request goes: the endpoint, the store's name for sentences, and the headers it takes."""

    def __init__(self, endpoint: Endpoint, name: str, headers: dict[str, str]) -> None:
        if not endpoint.url:
            raise NotConfigured(D(N_("No log store URL is set for this cluster.")))
        self.endpoint = endpoint
        self.name = name
        self.headers = {**endpoint.headers, **headers}

    def _values(self) -> dict:
        return {"store": self.name, "url": self.endpoint.shown}

    @contextlib.contextmanager
    def _open(self, path: str, params: dict, *, timeout: float):
        """The answer to GET ``path``, streamed, closed afterwards; every failure as a sentence."""
        import requests

        try:
            response = _session().get(
                f"{self.endpoint.base}{path}",
                params=params,
                headers=self.headers,
                auth=self.endpoint.auth,
                timeout=timeout,
                stream=True,
            )
            try:
                self._check_status(response, path)
                yield response
            finally:
                response.close()
        except LogStoreError:
            raise
        except requests.Timeout:
            raise Unreachable(
                D(
                    N_(
                        "%(store)s at %(url)s did not answer within %(seconds)s seconds; narrow the search or try "
                        "again."
                    ),
                    seconds=timeout,
                    **self._values(),
                )
            ) from None
        except (requests.RequestException, OSError):
            raise Unreachable(
                D(
                    N_(
                        "%(store)s at %(url)s could not be reached; check that it runs and that the address in the "
                        "cluster's settings is right."
                    ),
                    **self._values(),
                )
            ) from None

    def _check_status(self, response: requests.Response, path: str) -> None:
        status = response.status_code
        if status < 300:
            return
        error = _error_text(response)
        if status in (401, 403):
            if self.endpoint.auth or self.endpoint.token:
                sentence = N_(
                    "%(store)s at %(url)s refused Kubemate's credentials (HTTP %(status)s); check them in the "
                    "cluster's settings."
                )
            else:
                sentence = N_(
                    "%(store)s at %(url)s asks for credentials (HTTP %(status)s); set them in the cluster's settings."
                )
            raise Unreachable(D(sentence, status=status, **self._values()))
        if status == 404:
            raise Unreachable(
                D(
                    N_(
                        "%(store)s at %(url)s does not serve %(path)s; check the address and the kind of log store in "
                        "the cluster's settings."
                    ),
                    path=path,
                    **self._values(),
                )
            )
        if status in (400, 422):
            raise LogStoreError(D(N_("%(store)s refused the query: %(error)s"), error=error, **self._values()))
        raise Unreachable(
            D(
                N_("%(store)s at %(url)s answered HTTP %(status)s: %(error)s"),
                status=status,
                error=error,
                **self._values(),
            )
        )

    def too_large(self, mib: int) -> LogStoreError:
        return LogStoreError(
            D(
                N_("%(store)s at %(url)s answered more than %(mib)s MiB; narrow the search or ask for fewer lines."),
                mib=mib,
                **self._values(),
            )
        )

    def unreadable(self) -> LogStoreError:
        return LogStoreError(
            D(N_("%(store)s at %(url)s answered something Kubemate could not read."), **self._values())
        )

    def get_bytes(self, path: str, params: dict, *, timeout: float = TIMEOUT, limit: int | None = None) -> bytes:
        import requests

        limit = limit or MAX_ANSWER_BYTES
        with self._open(path, params, timeout=timeout) as response:
            try:
                body = response.raw.read(limit + 1, decode_content=True)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
                raise self.unreadable() from None
        if len(body) > limit:
            raise self.too_large(limit // 2**20 or 1)
        return body

    def get_json(self, path: str, params: dict, *, timeout: float = TIMEOUT, limit: int | None = None):
        body = self.get_bytes(path, params, timeout=timeout, limit=limit)
        try:
            return json.loads(body or b"null")
        except (ValueError, RecursionError):
            raise self.unreadable() from None

    def get_rows(
        self, path: str, params: dict, *, timeout: float = TIMEOUT, limit: int | None = None
    ) -> Iterator[dict]:
        """The JSON objects of a JSON-lines answer, one at a time; at most ``limit`` bytes in all when given."""
        import requests

        read = 0
        with self._open(path, params, timeout=timeout) as response:
            pending = b""
            skipping = False
            try:
                chunks = response.raw.stream(64 * 1024, decode_content=True)
                for chunk in chunks:
                    read += len(chunk)
                    if limit is not None and read > limit:
                        raise self.too_large(limit // 2**20 or 1)
                    pending += chunk
                    if b"\n" in chunk:  # ``pending`` held no newline before: the chunk's rows split once
                        *complete, pending = pending.split(b"\n")
                        for row in complete:
                            if skipping:
                                skipping = False
                                continue
                            if row.strip():
                                yield self._row(row)
                    if len(pending) > MAX_ROW_BYTES:
                        pending, skipping = b"", True
                if pending.strip() and not skipping:
                    yield self._row(pending)
            except LogStoreError:
                raise
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
                raise self.unreadable() from None

    def _row(self, row: bytes) -> dict:
        try:
            data = json.loads(row)
        except (ValueError, RecursionError):
            raise self.unreadable() from None
        if not isinstance(data, dict):
            raise self.unreadable()
        return data


def _error_text(response: requests.Response) -> str:
    """The store's own reason (both stores answer errors as plain text), cut; "" when it cannot be read."""
    import requests

    try:
        body = response.raw.read(8192, decode_content=True)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
        return ""
    text = body.decode("utf-8", errors="replace").strip()
    with contextlib.suppress(ValueError, AttributeError):
        data = json.loads(text)
        text = str(data.get("error") or data.get("message") or text)
    return text[:MAX_ERROR_CHARS]
