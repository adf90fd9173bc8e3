"""Browser tests: Playwright drives Debian's Chromium against a live server, with a real Celery worker."""

import os
import shutil
from pathlib import Path

import pytest

from tests.terminal.fixtures import shell_team, terminal_service  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".run" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# Playwright's sync API runs an event loop in this thread; Django's live server
# and the ORM calls in the test body are still synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def chromium_path() -> str:
    path = os.environ.get("KUBEMATE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError("Chromium is not installed; `make test` installs Debian's chromium package.")
    return path


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def celery_worker_thread(transactional_db):
    """A real Celery worker (threads pool) consuming from the test Redis database."""
    from celery.contrib.testing.worker import start_worker

    from kubemate.celery import app

    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING") as worker:
        yield worker
