"""Text cut into overlapping chunks, each knowing where it came from.

A chunk is at most ``size`` characters. It ends, by preference, at a paragraph break, else at the end of a sentence
(Latin or Chinese punctuation), else at a line end or a space, found in the second half of its allowed length; only
a run of text with none of these (a long Chinese paragraph without punctuation) is cut at ``size``. The next chunk
starts ``overlap`` characters before the previous one ended, moved forward to the start of a sentence or a word
when one is near, so both chunks share that context. Each chunk keeps its ordinal (from 0), its start and end
offsets in the extracted text, and its page when the text has pages (PDF).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

SIZE_MIN = 100
SIZE_MAX = 4_000  # Milvus keeps 8,000 characters a chunk; the embedding model reads the first 256 word pieces
# The end of a sentence: Latin punctuation followed by a space, or Chinese full-width punctuation.
SENTENCE_END = re.compile(r"[.!?;:](?=\s)|[。！？；…]")


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    start: int
    end: int
    page: int | None
    text: str


def overlap_max(size: int) -> int:
    return size // 2


def _cut(text: str, low: int, high: int) -> int:
    """Where to end a chunk that may end anywhere in [low, high]: after the last paragraph break, sentence end, line
    end or space there, in that order; ``high`` when there is none."""
    window = text[low:high]
    found = window.rfind("\n\n")
    if found >= 0:
        return low + found + 2
    last = None
    for last in SENTENCE_END.finditer(window):  # noqa: B007 - the last one is wanted
        pass
    if last is not None:
        return low + last.end()
    for mark in ("\n", " ", "\t"):
        found = window.rfind(mark)
        if found >= 0:
            return low + found + 1
    return high


def _align(text: str, position: int, limit: int) -> int:
    """A start at or after ``position`` (before ``limit``) that begins a sentence or a word, when one is near."""
    if position == 0 or text[position - 1].isspace():
        return position
    window = text[position:limit]
    sentence = SENTENCE_END.search(window)
    if sentence is not None:
        return position + sentence.end()
    space = re.search(r"\s", window)
    if space is not None:
        return position + space.end()
    return position


def split(text: str, *, size: int, overlap: int, pages: list[tuple[int, int]] | None = None) -> list[Chunk]:
    """``text`` as chunks of at most ``size`` characters sharing about ``overlap`` characters with the previous one.
    ``pages``: (offset, page number) where each page starts, ascending."""
    size = max(SIZE_MIN, min(int(size), SIZE_MAX))
    overlap = max(0, min(int(overlap), overlap_max(size)))
    starts = [offset for offset, _number in pages or []]
    numbers = [number for _offset, number in pages or []]
    chunks: list[Chunk] = []
    length = len(text)
    start = _skip_space(text, 0)
    while start < length:
        end = length if start + size >= length else _cut(text, start + size // 2, start + size)
        stop = end
        while stop > start and text[stop - 1].isspace():
            stop -= 1
        if stop > start:
            page = None
            if starts:
                index = bisect.bisect_right(starts, start) - 1
                page = numbers[max(index, 0)]
            chunks.append(Chunk(len(chunks), start, stop, page, text[start:stop]))
        if end >= length:
            break
        following = max(end - overlap, start + 1)
        following = _align(text, following, min(following + overlap // 2 + 1, end))
        start = _skip_space(text, max(following, start + 1))
    return chunks


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position
