"""The envelope a sealed field carries in the cluster, and the only code that seals and opens it.

``kmenc:v1:<key version>:<base64url(nonce 12 bytes || AES-256-GCM ciphertext and tag)>``. The additional data
is the field's name, so a ciphertext moved to another field does not open. deploy/decrypt/main.go opens the
same format inside the app's pod; keep the two in step.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.utils.translation import gettext as _

PREFIX = "kmenc:v1:"
MAX_PLAINTEXT = 1024 * 1024  # a Secret holds at most 1 MiB in all
KEY_BYTES = 32


class EnvelopeError(ValueError):
    """The value cannot be sealed or opened; the message is the sentence."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def is_sealed(value: str) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(key: bytes, version: int, field: str, plaintext: str) -> str:
    data = plaintext.encode()
    if len(data) > MAX_PLAINTEXT:
        raise EnvelopeError(_("A value to encrypt may hold at most 1 MiB; %(field)s holds more.") % {"field": field})
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, data, field.encode())
    return f"{PREFIX}{int(version)}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"


def version_of(token: str) -> int:
    if not is_sealed(token):
        raise EnvelopeError(_("This value is not encrypted by Kubemate."))
    number = token[len(PREFIX) :].split(":", 1)[0]
    if not number.isdigit() or len(number) > 9:
        raise EnvelopeError(_("This encrypted value is damaged: its key version is not a number."))
    return int(number)


def open_(keys: dict[int, bytes], field: str, token: str) -> str:
    """The plaintext of ``token`` sealed for ``field`` with one of ``keys`` (by version)."""
    if len(token) > MAX_PLAINTEXT * 2:
        raise EnvelopeError(_("This encrypted value is larger than any value Kubemate seals."))
    version = version_of(token)
    key = keys.get(version)
    if key is None:
        raise EnvelopeError(
            _("This value was encrypted with key version %(version)s, which is gone.") % {"version": version}
        )
    body = token[len(PREFIX) :].split(":", 1)[1] if ":" in token[len(PREFIX) :] else ""
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return AESGCM(key).decrypt(raw[:12], raw[12:], field.encode()).decode()
    except (ValueError, InvalidTag, UnicodeDecodeError):
        raise EnvelopeError(
            _("This encrypted value does not open: it was altered, or sealed for another field.")
        ) from None
