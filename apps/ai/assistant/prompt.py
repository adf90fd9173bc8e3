"""The prompt the model reads: the rules, the last turns of the conversation and the question with its numbered
passages, all within ``KUBEMATE_AI_PROMPT_TOKENS`` (1,500: the local model reads 2,048 tokens in all, the answer's
``KUBEMATE_AI_ANSWER_TOKENS`` (400) included).

Tokens are estimated from the characters, not counted: counting needs the model's own tokenizer, which the model
server has and Kubemate has not (and it differs from model to model). The estimate is meant to be high: an ASCII
character a third of a token, any other character two. Measured with SmolLM2's tokenizer (byte-level BPE): English
prose 4.3 characters a token, YAML 3.2, Chinese 0.56 to 0.84 (a Chinese character is one or two tokens), so a
context budgeted by characters alone (3,000 characters: 700 tokens of English) would be 5,000 tokens of Chinese and
the model server would refuse it.

The parts share the budget in this order: the rules (fixed), the question (at most a third: a long question keeps
its beginning), the earlier turns (at most a fifth, newest first, whole turns only), then the passages in their
order (the best first) until the budget is spent, the last one cut when a useful part of it still fits.
"""

from __future__ import annotations

import math

from django.conf import settings

SYSTEM = (
    "You are Kubemate's assistant for a bank's operations team. Answer the question from the numbered context "
    "passages only, briefly, in the language of the question, and cite the passages you used as [1], [2]. If the "
    "passages do not hold the answer, say that you do not know."
)
PASSAGE_CHARS = 700  # of each passage given to the model (and kept as the citation's excerpt)
HISTORY_TURNS = 3  # questions and answers before this one
MESSAGE_TOKENS = 8  # the chat template's tokens around each message
PASSAGE_MIN_TOKENS = 40  # a passage cut shorter than this is left out
NO_PASSAGE = "(no passage was found)"


def budget() -> int:
    return int(settings.KUBEMATE_AI_PROMPT_TOKENS)


def _cost(ch: str) -> float:
    return 1 / 3 if ord(ch) < 128 else 2.0


def estimate(text: str) -> int:
    """The tokens ``text`` takes at most (about), for any model."""
    return math.ceil(sum(_cost(ch) for ch in text))


def cut(text: str, tokens: int) -> str:
    """The longest beginning of ``text`` estimated within ``tokens``."""
    used = 0.0
    for i, ch in enumerate(text):
        used += _cost(ch)
        if used > tokens:
            return text[:i]
    return text


def build(question: str, earlier: list[tuple[str, str]], citations: list[dict]) -> list[dict]:
    """The chat messages: ``earlier`` is [(role, text)] oldest first, ``citations`` the answer row's (numbered
    ``n``, with ``name`` and ``excerpt``)."""
    left = budget() - estimate(SYSTEM) - 2 * MESSAGE_TOKENS
    question = cut(question, left // 3)
    body_head, body_tail = "Context:\n", f"\n\nQuestion: {question}"
    left -= estimate(body_head + body_tail)

    history, allowed = [], left // 5
    for role, text in reversed(earlier[-2 * HISTORY_TURNS :]):  # newest first, kept while whole turns fit
        cost = estimate(text) + MESSAGE_TOKENS
        if cost > allowed:
            break
        allowed -= cost
        left -= cost
        history.insert(0, {"role": role, "content": text})

    context = []
    for c in citations:
        piece = f"[{c['n']}] ({c['name']}) {c['excerpt'][:PASSAGE_CHARS]}"
        cost = estimate(piece) + 1  # and the blank line between passages
        if cost > left:
            if left >= PASSAGE_MIN_TOKENS:
                context.append(cut(piece, left - 1))
            break
        left -= cost
        context.append(piece)
    body = body_head + ("\n\n".join(context) if context else NO_PASSAGE) + body_tail
    return [{"role": "system", "content": SYSTEM}, *history, {"role": "user", "content": body}]
