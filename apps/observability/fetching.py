"""One bounded HTTP request for the doors that read JSON APIs themselves (alertmanager.py, jaeger.py).

``fetch`` sends the request without following redirects and reads the answer by what has arrived (``read1``), up to
``limit`` + 1 bytes (one more tells an answer that is too large) and within ``timeout`` for the whole answer, not
only for each wait on the socket: a server (or something in between) trickling bytes cannot hold a page. It raises
``Late`` when time runs out and ``Failed`` when there is no answer at all; each door turns those, the status and
the body into its own sentences.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import urllib3

CHUNK = 64 * 1024


class Late(Exception):
    """The answer did not arrive whole before the deadline."""


class Failed(Exception):
    """No answer: refused connection, TLS, protocol or an unreadable stream."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # at most ``limit`` + 1 bytes


def _read(response, limit: int, deadline: float) -> bytes:
    chunks, size = [], 0
    while size <= limit:
        if time.monotonic() > deadline:
            raise Late
        chunk = response.raw.read1(min(CHUNK, limit + 1 - size), decode_content=True)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def fetch(
    method: str,
    url: str,
    *,
    limit: int,
    timeout: float,
    params: dict | None = None,
    json=None,
    headers: dict | None = None,
    auth=None,
    verify=True,
) -> Answer:
    import requests

    deadline = time.monotonic() + timeout
    try:
        with requests.Session() as session:
            response = session.request(
                method,
                url,
                params=params,
                json=json,
                headers=headers,
                auth=auth,
                timeout=timeout,
                stream=True,
                allow_redirects=False,
                verify=verify,
            )
            with response:
                return Answer(response.status_code, _read(response, limit, deadline))
    except requests.Timeout:
        raise Late from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
        raise Failed from None
