"""The prompt stays within its budget as the local model's own tokenizer counts it, in English and in Chinese (whose
characters cost one or two tokens each), whatever the question, the earlier turns and the passages weigh."""

from __future__ import annotations

import pytest
import requests

from apps.ai.assistant import prompt

EN = "When the settlement batch fails, rerun it with the job pay-settle-rerun and tell the treasury desk. " * 12
ZH = "结算批处理失败时，请在支付命名空间中重新运行作业，并通知资金部门。证书过期前请用 kubeadm 续期。" * 20


def counted(llm, messages: list[dict]) -> int:
    """The tokens the model server counts in the messages, with the chat template's tokens around each."""
    root = llm.base_url.removesuffix("/v1")
    total = 0
    for m in messages:
        response = requests.post(f"{root}/extras/tokenize/count", json={"input": m["content"]}, timeout=10)
        response.raise_for_status()
        total += response.json()["count"] + prompt.MESSAGE_TOKENS
    return total


def citations(text: str) -> list[dict]:
    return [{"n": n, "name": f"runbook-{n}.md", "excerpt": text[n * 50 :]} for n in range(1, 6)]


@pytest.mark.parametrize("text", [EN, ZH], ids=["english", "chinese"])
def test_the_heaviest_prompt_fits_the_budget_as_the_model_counts_it(llm, settings, text):
    settings.KUBEMATE_AI_PROMPT_TOKENS = 1500
    earlier = [("user", text[:300]), ("assistant", text[:400]), ("user", text[:100]), ("assistant", text[:200])]
    messages = prompt.build(text[:1000], earlier, citations(text))
    tokens = counted(llm, messages)
    assert 1000 < tokens <= 1500
    body = messages[-1]["content"]
    assert messages[0]["content"] == prompt.SYSTEM and body.startswith("Context:\n[1] (runbook-1.md) ")
    assert "\n\nQuestion: " + text[:20] in body


def test_whole_recent_turns_are_kept_and_the_question_keeps_its_beginning(settings):
    settings.KUBEMATE_AI_PROMPT_TOKENS = 600
    earlier = [("user", "old " * 200), ("assistant", "old answer"), ("user", "Which job?"), ("assistant", "pay [1]")]
    messages = prompt.build("How? " + "x" * 3000, earlier, citations(EN))
    assert [m["content"] for m in messages[1:-1]] == ["old answer", "Which job?", "pay [1]"]
    body = messages[-1]["content"]
    assert "\n\nQuestion: How? xxx" in body and len(body.split("Question: ")[1]) < 600
    assert "[1] (runbook-1.md)" in body and "[5]" not in body
    assert sum(prompt.estimate(m["content"]) + prompt.MESSAGE_TOKENS for m in messages) <= 600


def test_no_passage_is_said_so():
    body = prompt.build("Anything?", [], [])[-1]["content"]
    assert body == "Context:\n(no passage was found)\n\nQuestion: Anything?"
    assert prompt.cut("ab证书", 2) == "ab" and prompt.estimate("ab证书") == 5
