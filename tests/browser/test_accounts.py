import pytest
from playwright.sync_api import expect

from apps.accounts.models import Binding, Role
from tests.factories import UserFactory
from tests.helpers import sign_in_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.sandbox,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_admin_creates_a_role_in_chinese_binds_a_user_who_then_sees_only_permitted_buttons(
    browser, live_server, page, screenshot, transactional_db, registered_cluster, team_namespaces, celery_worker_thread
):
    from tests.factories import AdminFactory

    admin = AdminFactory()
    member = UserFactory(username="zhang.min")
    sign_in_page(page, admin)
    page.click("[data-testid=lang-zh-hans]")
    expect(page.locator("h2.page-title")).to_have_text("仪表盘")

    page.goto("/accounts/roles/new/")
    page.fill("#id_slug", "release-manager")
    page.fill("#id_name_en", "Release manager")
    page.fill("#id_name_zh", "发布管理员")
    for code in ("workloads.view", "workloads.scale", "releases.deploy"):
        page.check(f"[data-testid='cap-{code}']")
    expect(page.locator("[data-testid=rules-preview]")).to_contain_text("deployments/scale")
    screenshot("role-editor-zh")
    page.click("[data-testid=save]")
    expect(page.locator("[data-testid=role-row]").filter(has_text="发布管理员")).to_have_count(1)

    page.goto("/accounts/projects/new/")
    page.select_option("#id_cluster", str(registered_cluster.pk))
    page.fill("#id_slug", "team-a")
    page.fill("#id_name", "A 组")
    page.fill("#id_namespaces", "team-a")
    page.click("[data-testid=save]")
    expect(page.locator("h2.page-title")).to_have_text("A 组")
    role = Role.objects.get(slug="release-manager")
    page.select_option("#id_role", str(role.pk))
    page.select_option("#id_user", str(member.pk))
    page.click("[data-testid=binding-add]")
    expect(page.locator("[data-testid=binding-row]")).to_contain_text("zhang.min")
    assert Binding.objects.filter(user=member, role=role, project__slug="team-a").exists()

    member_page = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900}).new_page()
    sign_in_page(member_page, member)
    sidebar = member_page.locator(".navbar-vertical")
    expect(sidebar).to_contain_text("Dashboard")
    expect(sidebar).not_to_contain_text("Users")
    expect(sidebar).not_to_contain_text("Audit log")
    expect(member_page.locator("[data-testid=start-demo-job]")).to_have_count(0)
    assert member_page.goto("/accounts/users/").status == 404

    url = f"/accounts/me/access/?cluster={registered_cluster.pk}&namespace=team-a"
    scale = member_page.locator("[data-testid=access-row][data-capability='workloads.scale']")
    for _ in range(30):  # the worker projects the binding into the cluster after commit
        member_page.goto(url)
        if scale.get_attribute("data-cluster") == "allowed":
            break
        member_page.wait_for_timeout(1000)
    expect(scale).to_have_attribute("data-console", "allowed")
    expect(scale).to_have_attribute("data-cluster", "allowed")
    delete = member_page.locator("[data-testid=access-row][data-capability='pods.delete']")
    expect(delete).to_have_attribute("data-console", "denied")
    expect(delete).to_have_attribute("data-cluster", "denied")
    member_page.goto(f"/accounts/me/access/?cluster={registered_cluster.pk}&namespace=team-b")
    expect(member_page.locator("[data-testid=access-row][data-capability='workloads.scale']")).to_have_attribute(
        "data-cluster", "denied"
    )
