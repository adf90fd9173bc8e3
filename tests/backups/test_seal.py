"""Sealed backup files (apps/backups/seal.py): what is sealed opens to the same bytes, with and without compression;
whatever was altered, cut off or extended does not open; the key set decides which files open; a file that would
open to more than the limit stops there."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from apps.backups import seal
from apps.backups.seal import CHUNK, MAGIC, SealError

MiB = 1024 * 1024
HEADER = len(MAGIC) + 8 + 16 + 1


@pytest.fixture
def plain(tmp_path) -> Path:
    """A few MiB: random bytes (which do not compress) then text (which does), not a multiple of a record."""
    path = tmp_path / "plain.bin"
    text = b"".join(b"event %08d: backups.database.restored by admin\n" % i for i in range(60_000))
    path.write_bytes(os.urandom(2 * MiB + 12_345) + text)
    return path


def records(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of each record of a sealed file."""
    data = path.read_bytes()
    found, offset = [], HEADER
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        found.append((offset, 4 + length))
        offset += 4 + length
    return found


def flip(path: Path, at: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(at)
        byte = handle.read(1)
        handle.seek(at)
        handle.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize("compress", [False, True])
def test_a_sealed_file_opens_to_the_same_bytes(plain, tmp_path, compress):
    sealed, opened = tmp_path / "f.sealed", tmp_path / "f.opened"

    size = seal.seal(plain, sealed, compress=compress)

    assert size == sealed.stat().st_size
    assert sealed.read_bytes().startswith(MAGIC)
    assert b"backups.database.restored" not in sealed.read_bytes()
    if compress:
        assert size < plain.stat().st_size - 2 * MiB  # the text shrank; the random part did not
    else:
        assert size > plain.stat().st_size
    assert len(records(sealed)) >= 3
    written = seal.open_sealed(sealed, opened, max_bytes=64 * MiB)
    assert written == plain.stat().st_size
    assert opened.read_bytes() == plain.read_bytes()


def test_an_empty_file_seals_and_opens(tmp_path):
    empty, sealed, opened = tmp_path / "empty", tmp_path / "e.sealed", tmp_path / "e.opened"
    empty.write_bytes(b"")

    seal.seal(empty, sealed, compress=True)

    assert seal.open_sealed(sealed, opened, max_bytes=MiB) == 0
    assert opened.read_bytes() == b""


@pytest.mark.parametrize("where", ["first record", "middle of a record", "last byte"])
def test_a_flipped_byte_does_not_open(plain, tmp_path, where):
    sealed = tmp_path / "f.sealed"
    seal.seal(plain, sealed, compress=False)
    first_offset, first_length = records(sealed)[0]
    at = {
        "first record": first_offset + 4,
        "middle of a record": first_offset + first_length // 2,
        "last byte": sealed.stat().st_size - 1,
    }[where]
    flip(sealed, at)

    with pytest.raises(SealError, match="altered or damaged"):
        seal.open_sealed(sealed, tmp_path / "out", max_bytes=64 * MiB)


def test_a_cut_off_file_does_not_open(plain, tmp_path):
    sealed, out = tmp_path / "f.sealed", tmp_path / "out"
    seal.seal(plain, sealed, compress=True)
    data = sealed.read_bytes()
    last_offset, _ = records(sealed)[-1]

    sealed.write_bytes(data[:last_offset])  # whole records, the last one missing
    with pytest.raises(SealError, match="cut off"):
        seal.open_sealed(sealed, out, max_bytes=64 * MiB)
    assert not out.exists()

    sealed.write_bytes(data[: last_offset + 10])  # inside the last record
    with pytest.raises(SealError):
        seal.open_sealed(sealed, out, max_bytes=64 * MiB)


def test_a_record_after_the_last_does_not_open(plain, tmp_path):
    sealed = tmp_path / "f.sealed"
    seal.seal(plain, sealed, compress=False)
    offset, length = records(sealed)[0]
    data = sealed.read_bytes()

    sealed.write_bytes(data + data[offset : offset + length])  # a real record of this file, appended

    with pytest.raises(SealError, match="data after its end"):
        seal.open_sealed(sealed, tmp_path / "out", max_bytes=64 * MiB)


def test_records_swapped_do_not_open(plain, tmp_path):
    sealed = tmp_path / "f.sealed"
    seal.seal(plain, sealed, compress=False)
    (a, la), (b, lb) = records(sealed)[:2]
    data = sealed.read_bytes()

    sealed.write_bytes(data[:a] + data[b : b + lb] + data[a : a + la] + data[b + lb :])

    with pytest.raises(SealError, match="altered or damaged"):
        seal.open_sealed(sealed, tmp_path / "out", max_bytes=64 * MiB)


def test_a_file_that_is_not_sealed_does_not_open(tmp_path):
    other = tmp_path / "dump"
    other.write_bytes(b"PGDMP" + os.urandom(100))

    with pytest.raises(SealError, match="header is missing"):
        seal.open_sealed(other, tmp_path / "out", max_bytes=MiB)


def test_the_key_set_decides_what_opens(plain, tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = tmp_path / "f.sealed"
    with override_settings(ENCRYPTION_KEYS=[old]):
        seal.seal(plain, sealed, compress=True)

    with override_settings(ENCRYPTION_KEYS=[new, old]):  # rotated: the old key second still opens it
        assert seal.open_sealed(sealed, tmp_path / "rotated", max_bytes=64 * MiB) == plain.stat().st_size
        assert (tmp_path / "rotated").read_bytes() == plain.read_bytes()
        rotated = tmp_path / "new.sealed"
        seal.seal(plain, rotated, compress=False)  # new files take the first key

    with override_settings(ENCRYPTION_KEYS=[new]), pytest.raises(SealError, match="not in KUBEMATE_ENCRYPTION_KEYS"):
        seal.open_sealed(sealed, tmp_path / "gone", max_bytes=64 * MiB)
    with override_settings(ENCRYPTION_KEYS=[old]), pytest.raises(SealError, match="not in KUBEMATE_ENCRYPTION_KEYS"):
        seal.open_sealed(rotated, tmp_path / "gone", max_bytes=64 * MiB)
    with override_settings(ENCRYPTION_KEYS=[new]):
        assert seal.open_sealed(rotated, tmp_path / "new.opened", max_bytes=64 * MiB) == plain.stat().st_size


def test_a_compressed_bomb_stops_at_the_limit(tmp_path):
    zeros, sealed, out = tmp_path / "zeros", tmp_path / "z.sealed", tmp_path / "out"
    with open(zeros, "wb") as handle:
        for _ in range(48):
            handle.write(bytes(MiB))
    seal.seal(zeros, sealed, compress=True)
    assert sealed.stat().st_size < MiB // 4  # 48 MiB of zeros seal to a few dozen KiB

    with pytest.raises(SealError, match="more than 8 MiB"):
        seal.open_sealed(sealed, out, max_bytes=8 * MiB)
    assert not out.exists() or out.stat().st_size <= 8 * MiB + CHUNK

    assert seal.open_sealed(sealed, out, max_bytes=48 * MiB) == 48 * MiB  # exactly the limit opens


def test_an_uncompressed_file_beyond_the_limit_stops_too(plain, tmp_path):
    sealed = tmp_path / "f.sealed"
    seal.seal(plain, sealed, compress=False)

    with pytest.raises(SealError, match="more than 1 MiB"):
        seal.open_sealed(sealed, tmp_path / "out", max_bytes=MiB)


@pytest.mark.parametrize("compress", [False, True])
def test_a_flipped_flags_byte_does_not_open(plain, tmp_path, compress):
    sealed = tmp_path / "f.sealed"
    seal.seal(plain, sealed, compress=compress)
    flip(sealed, HEADER - 1)

    with pytest.raises(SealError):
        seal.open_sealed(sealed, tmp_path / "out", max_bytes=64 * MiB)
