import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, AdminFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def login(page, user) -> None:
    page.goto("/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("[data-testid=login-submit]")
    expect(page.locator("h2.page-title")).to_have_text("Dashboard")


def test_login_switch_to_chinese_and_back(page, screenshot, transactional_db):
    admin = AdminFactory()
    page.goto("/login/")
    screenshot("login")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", "wrong password")
    page.click("[data-testid=login-submit]")
    expect(page.locator("[data-testid=login-error]")).to_contain_text("Please enter a correct username and password")

    login(page, admin)
    expect(page.locator("[data-testid=fact-database]")).to_have_attribute("data-ok", "true")
    expect(page.locator("[data-testid=fact-redis]")).to_have_attribute("data-ok", "true")
    screenshot("dashboard-en")

    page.click("[data-testid=lang-zh-hans]")
    expect(page.locator("h2.page-title")).to_have_text("仪表盘")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator(".navbar-vertical")).to_contain_text("作业")
    screenshot("dashboard-zh")

    page.click("[data-testid=lang-en]")
    expect(page.locator("h2.page-title")).to_have_text("Dashboard")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.click("[data-testid=user-menu]")
    page.click("[data-testid=logout]")
    expect(page).to_have_url(re.compile(r"/login/$"))


def test_demo_job_progress_bar_moves_until_done(page, screenshot, celery_worker_thread):
    admin = AdminFactory()
    login(page, admin)
    expect(page.locator("[data-testid=fact-worker]")).to_have_attribute("data-ok", "true", timeout=20_000)

    page.click("[data-testid=start-demo-job]")
    status = page.locator("[data-testid=job-status]").first
    seen = set()
    for _ in range(40):
        progress = int(status.get_attribute("data-progress"))
        seen.add(progress)
        if status.get_attribute("data-status") == "succeeded":
            break
        page.wait_for_timeout(500)
    screenshot("dashboard-job-done")

    expect(status).to_have_attribute("data-status", "succeeded")
    expect(status).to_have_attribute("data-progress", "100")
    # The bar was seen part-way, not only at 0 and at 100.
    assert any(0 < p < 100 for p in seen), seen
    expect(status.locator(".progress-bar")).to_have_attribute("style", "width: 100%")
