"""The log search in Chromium against a real VictoriaLogs: the volume histogram draws and a click on a bar zooms the
time range; the live tail shows new lines at the bottom, pauses, resumes, clears, and keeps the newest 1,000 lines
(counting the dropped ones); no script error and no CSP refusal on the way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.factories import AdminFactory, ClusterFactory
from tests.helpers import sign_in_page, unique

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def push(victorialogs, ns: str, texts: list[str], *, ago: float = 0, level: str = "info") -> None:
    now = datetime.now(UTC) - timedelta(seconds=ago)
    victorialogs.push(
        {"line": text, "time": now + timedelta(microseconds=i), "namespace": ns, "pod": "web-1", "level": level}
        for i, text in enumerate(texts)
    )


def test_the_histogram_zooms_and_the_live_tail_follows_pauses_clears_and_caps(page, live_server, victorialogs):
    cluster = ClusterFactory(name=unique("logs"), logs_url=victorialogs.url)
    ns = unique("shop")
    push(victorialogs, ns, ["checkout failed"], ago=600, level="error")
    push(victorialogs, ns, ["checkout ok"], ago=300)
    victorialogs.wait_for(f'{{namespace="{ns}"}}', 2)
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    sign_in_page(page, AdminFactory())

    page.goto(f"/observability/logs/?cluster={cluster.pk}&namespace={ns}")
    expect(page.locator("[data-testid=log-line]")).to_have_count(2)
    bars = page.locator("[data-logs-histogram] svg path[fill='#d63939']")
    expect(bars.first).to_be_visible()
    bars.first.click()
    expect(page.locator("[data-testid=logs-window]")).to_have_value("custom")
    expect(page.locator("[data-testid=log-line]")).to_have_count(1)
    expect(page.locator("[data-testid=log-text]")).to_have_text("checkout failed")

    page.goto(f"/observability/logs/?cluster={cluster.pk}&namespace={ns}")
    page.click("[data-testid=logs-live]")
    tail = page.locator("[data-testid=logs-tail-lines] [data-testid=log-line]")
    push(victorialogs, ns, ["first live line", "second live line"])
    expect(tail).to_have_count(2)
    expect(tail.last.locator("[data-testid=log-text]")).to_have_text("second live line")  # newest at the bottom

    page.click("[data-testid=logs-tail-pause]")
    push(victorialogs, ns, ["while paused"])
    page.wait_for_timeout(2500)
    expect(tail).to_have_count(2)
    page.click("[data-testid=logs-tail-pause]")
    expect(tail).to_have_count(3)

    page.click("[data-testid=logs-tail-clear]")
    expect(tail).to_have_count(0)
    push(victorialogs, ns, [f"burst {i:04d}" for i in range(1010)])
    expect(page.locator("[data-tail-dropped]")).to_have_text("10", timeout=30_000)
    expect(tail).to_have_count(1000)
    expect(tail.last.locator("[data-testid=log-text]")).to_have_text("burst 1009")
    assert problems == []
