"""The one door to the group robots Chinese teams read alerts in: DingTalk (钉钉) and WeCom (企业微信).

Both take a markdown message posted as JSON to the robot's webhook URL (which carries the robot's token) and
answer ``{"errcode": 0, ...}``. DingTalk robots with "加签" (signing) on also want ``timestamp`` and ``sign`` query
parameters: sign = base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")), URL-encoded. Answers are read up to
``MAX_BYTES`` with a timeout; what goes wrong is a ``RobotError`` sentence that never holds the URL's token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import quote, urlsplit

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

TIMEOUT = 5
MAX_BYTES = 64 * 1024


class RobotError(Failure):
    """The robot did not take the message; the message is the sentence to show."""


def host_of(url: str) -> str:
    """The robot's host, for sentences and pages (the path and query hold its token)."""
    return urlsplit(url).hostname or ""


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote(base64.b64encode(digest).decode(), safe="")


def send_dingtalk(url: str, title: str, text: str, *, sign_secret: str = "") -> None:
    if sign_secret:
        timestamp = int(time.time() * 1000)
        url = f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={dingtalk_sign(sign_secret, timestamp)}"
    _post(url, {"msgtype": "markdown", "markdown": {"title": title, "text": text}})


def send_wecom(url: str, content: str) -> None:
    _post(url, {"msgtype": "markdown", "markdown": {"content": content}})


def _post(url: str, body: dict) -> None:
    import requests

    host = host_of(url)
    try:
        with requests.post(url, json=body, timeout=TIMEOUT, stream=True, allow_redirects=False) as response:
            raw = response.raw.read(MAX_BYTES + 1, decode_content=True)
            status = response.status_code
    except requests.Timeout:
        raise RobotError(D(N_("The robot at %(host)s did not answer in time."), host=host)) from None
    except (requests.RequestException, OSError, ValueError):
        raise RobotError(D(N_("The robot at %(host)s could not be reached."), host=host)) from None
    if status != 200 or len(raw) > MAX_BYTES:
        raise RobotError(
            D(N_("The robot at %(host)s refused the message (HTTP %(status)s)."), host=host, status=status)
        )
    try:
        answer = json.loads(raw)
        code, reason = answer.get("errcode"), str(answer.get("errmsg", ""))[:200]
    except (ValueError, AttributeError, RecursionError):
        raise RobotError(D(N_("The robot at %(host)s gave an answer Kubemate cannot read."), host=host)) from None
    if code != 0:
        raise RobotError(
            D(
                N_("The robot at %(host)s refused the message: %(reason)s (%(code)s)."),
                host=host,
                reason=reason,
                code=code,
            )
        )
