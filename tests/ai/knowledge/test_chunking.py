"""Chunks of at most the chunk size, sharing about the overlap, ending at paragraph and sentence ends when one is
near, each with its ordinal, offsets and page."""

from __future__ import annotations

import itertools

from apps.ai.knowledge import chunking


def _text(paragraphs: int = 6, sentences: int = 8) -> str:
    return "\n\n".join(
        " ".join(f"Sentence {p}.{s} is about the payments service." for s in range(sentences))
        for p in range(paragraphs)
    )


def test_chunks_are_bounded_overlap_and_end_at_sentences_and_paragraphs():
    text = _text()
    chunks = chunking.split(text, size=300, overlap=60)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert len(chunks) > 8
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert 0 < len(chunk.text) <= 300
        assert chunk.text.endswith(".") and chunk.text.startswith("Sentence")
        assert chunk.page is None
    for before, after in itertools.pairwise(chunks):
        shared = before.end - after.start
        assert 0 < shared <= 60, (before, after)
    # Every character is in some chunk (whitespace between them aside).
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered or text[i].isspace() for i in range(len(text)))


def test_a_paragraph_break_is_preferred_to_a_sentence_end():
    text = "A" * 150 + ". " + "B" * 20 + ".\n\n" + "C" * 200 + "."
    first = chunking.split(text, size=300, overlap=0)[0]
    assert first.text.endswith("B.")


def test_text_without_spaces_or_punctuation_is_cut_at_the_size_and_chinese_sentences_end_at_their_marks():
    plain = "x" * 1000
    chunks = chunking.split(plain, size=200, overlap=50)
    assert [(c.start, c.end) for c in chunks[:3]] == [(0, 200), (150, 350), (300, 500)]
    chinese = "支付服务在内存超过两个吉字节时会重启。" * 20
    parts = chunking.split(chinese, size=200, overlap=40)
    assert all(p.text.endswith("。") for p in parts)
    assert all(len(p.text) <= 200 for p in parts)


def test_pages_follow_the_chunk_starts():
    text = "First page sentence. " * 20 + "\n\n" + "Second page sentence. " * 20
    second = text.index("Second")
    chunks = chunking.split(text, size=150, overlap=30, pages=[(0, 1), (second, 2)])
    assert {c.page for c in chunks if c.start < second} == {1}
    assert {c.page for c in chunks if c.start >= second} == {2}


def test_the_size_and_overlap_are_kept_within_their_bounds():
    chunks = chunking.split("word " * 400, size=10, overlap=999)
    assert max(len(c.text) for c in chunks) <= chunking.SIZE_MIN
    assert chunking.split("   \n\n  ", size=300, overlap=0) == []
