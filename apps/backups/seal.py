"""Backup files sealed at rest: compressed (optionally) and encrypted with a key derived from Kubemate's key set
(settings.ENCRYPTION_KEYS, the keys ``core.crypto`` uses), in a streaming format, so a dump of any size is sealed
and opened in bounded memory.

Format (version 1)::

    b"KMSEAL1\\n" | key id (8 bytes) | salt (16) | flags (1: bit 0 = gzip inside)
    then records: length (4 bytes, big-endian) | AES-256-GCM ciphertext of up to 1 MiB

Each file has its own key, HKDF-SHA256(master key, salt); record ``i`` uses nonce ``i`` (96 bits) and the
associated data "more" or "last", so records cannot be reordered, dropped or cut off unnoticed. The key id
(the first 8 bytes of SHA-256 of the master key's derived id) tells which key of the set opens it: a key rotated
out of first place still opens older backups as long as it is listed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import zlib
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from apps.core.deferred import N_, Failure
from apps.core.deferred import text as D

MAGIC = b"KMSEAL1\n"
CHUNK = 1024 * 1024
GZIP = 1
TAG = 16
MORE, LAST = b"more", b"last"


class SealError(Failure):
    """A sealed file cannot be opened: not one, cut off, altered, or sealed with a key that is not configured."""


def _master_keys() -> list[bytes]:
    return [base64.urlsafe_b64decode(k) for k in settings.ENCRYPTION_KEYS]


def _key_id(master: bytes) -> bytes:
    return hashlib.sha256(b"kubemate-seal-id" + master).digest()[:8]


def _file_key(master: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"kubemate backup seal v1").derive(master)


def _nonce(index: int) -> bytes:
    return struct.pack(">IQ", 0, index)


def seal(source: Path, dest: Path, *, compress: bool) -> int:
    """Seal ``source`` into ``dest`` with the newest key; returns the sealed size."""
    master = _master_keys()[0]
    salt = os.urandom(16)
    aead = AESGCM(_file_key(master, salt))
    packer = zlib.compressobj(6, zlib.DEFLATED, 31) if compress else None
    index = 0
    pending = b""
    with open(source, "rb") as src, open(dest, "wb") as out:
        header = MAGIC + _key_id(master) + salt + bytes([GZIP if compress else 0])
        out.write(header)

        def emit(plain: bytes, last: bool) -> None:
            nonlocal index
            sealed = aead.encrypt(_nonce(index), plain, header + (LAST if last else MORE))
            out.write(struct.pack(">I", len(sealed)) + sealed)
            index += 1

        while True:
            block = src.read(CHUNK)
            if not block:
                break
            pending += packer.compress(block) if packer else block
            while len(pending) > CHUNK:
                emit(pending[:CHUNK], False)
                pending = pending[CHUNK:]
        if packer:
            pending += packer.flush()
        while len(pending) > CHUNK:
            emit(pending[:CHUNK], False)
            pending = pending[CHUNK:]
        emit(pending, True)
    return dest.stat().st_size


def open_sealed(source: Path, dest: Path, *, max_bytes: int) -> int:
    """Open ``source`` into ``dest`` (at most ``max_bytes`` written: a decompression bomb stops there); returns the
    size written. SealError for anything that is not a whole file sealed with a configured key; ``dest`` is then
    removed (nothing half-opened is left)."""
    try:
        return _open_sealed(source, dest, max_bytes=max_bytes)
    except SealError:
        dest.unlink(missing_ok=True)
        raise


def _open_sealed(source: Path, dest: Path, *, max_bytes: int) -> int:
    with open(source, "rb") as src:
        header = src.read(len(MAGIC) + 8 + 16 + 1)
        if len(header) != len(MAGIC) + 25 or not header.startswith(MAGIC):
            raise SealError(D(N_("This file is not a Kubemate backup (its header is missing).")))
        key_id, salt, flags = header[8:16], header[16:32], header[32]
        master = next((m for m in _master_keys() if _key_id(m) == key_id), None)
        if master is None:
            raise SealError(
                D(N_("This backup was sealed with a key that is not in KUBEMATE_ENCRYPTION_KEYS; add that key."))
            )
        aead = AESGCM(_file_key(master, salt))
        unpacker = zlib.decompressobj(31) if flags & GZIP else None
        written = index = 0
        finished = False
        with open(dest, "wb") as out:
            while True:
                size_bytes = src.read(4)
                if not size_bytes:
                    break
                if finished or len(size_bytes) != 4:
                    raise SealError(D(N_("This backup file is damaged (data after its end).")))
                (length,) = struct.unpack(">I", size_bytes)
                if length > CHUNK + TAG:
                    raise SealError(D(N_("This backup file is damaged (a record is too long).")))
                sealed = src.read(length)
                plain = None
                for ad in (MORE, LAST):
                    try:
                        plain = aead.decrypt(_nonce(index), sealed, header + ad)
                    except InvalidTag:  # not in this position: try the other, then give up
                        continue
                    finished = ad == LAST
                    break
                if plain is None:
                    raise SealError(D(N_("This backup file was altered or damaged; it cannot be opened.")))
                index += 1
                if unpacker is not None:
                    try:
                        plain = unpacker.decompress(plain, max(0, max_bytes - written) + 1)
                    except zlib.error:
                        raise SealError(
                            D(N_("This backup file was altered or damaged; it cannot be opened."))
                        ) from None
                    if unpacker.unconsumed_tail:
                        raise SealError(
                            D(
                                N_("This backup opens to more than %(limit)s MiB; it was not opened."),
                                limit=max_bytes // (1024 * 1024),
                            )
                        )
                written += len(plain)
                if written > max_bytes:
                    raise SealError(
                        D(
                            N_("This backup opens to more than %(limit)s MiB; it was not opened."),
                            limit=max_bytes // (1024 * 1024),
                        )
                    )
                out.write(plain)
        if not finished:
            dest.unlink(missing_ok=True)
            raise SealError(D(N_("This backup file is cut off; it cannot be opened.")))
    return written
