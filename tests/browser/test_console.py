import re

import pytest
from playwright.sync_api import expect

from tests.factories import AdminFactory
from tests.helpers import sign_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_login_switch_to_chinese_and_back(page, screenshot, transactional_db):
    admin = AdminFactory()
    page.goto("/login/")
    screenshot("login")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", "wrong password")
    page.click("[data-testid=login-submit]")
    expect(page.locator("[data-testid=login-error]")).to_contain_text("Please enter a correct username and password")

    sign_in_page(page, admin)
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
