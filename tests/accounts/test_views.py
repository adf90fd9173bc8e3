import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from apps.accounts import access, services
from apps.accounts.models import Binding, Project, Role
from apps.clusters.models import Cluster
from apps.core.models import AuditEvent
from tests.factories import ClusterFactory, UserFactory
from tests.helpers import grant, login

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def cluster(db):
    cluster = Cluster(name="prod", api_server="https://10.0.0.1:6443")
    cluster.set_kubeconfig("{}")
    cluster.save()
    return cluster


@pytest.fixture
def project(cluster, admin_user):
    return services.save_project(
        actor=admin_user, project=Project(cluster=cluster, slug="payments", name="Payments", namespaces=["payments"])
    )


@pytest.fixture
def user_manager(db, admin_user):
    manager = UserFactory(username="user-manager")
    role = services.save_role(
        actor=admin_user,
        role=Role(
            slug="user-admins",
            name_en="User admins",
            name_zh="用户管理",
            capabilities=["users.manage", "projects.manage"],
        ),
    )
    services.create_binding(actor=admin_user, role=role, user=manager)
    return manager


GET_PAGES = [
    ("accounts:user_list", {}),
    ("accounts:user_create", {}),
    ("accounts:group_list", {}),
    ("accounts:group_create", {}),
    ("accounts:role_list", {}),
    ("accounts:role_create", {}),
    ("accounts:project_list", {}),
    ("accounts:project_create", {}),
    ("accounts:binding_list", {}),
    ("accounts:audit_list", {}),
]


@pytest.mark.parametrize(("name", "kwargs"), GET_PAGES)
def test_pages_answer_anonymous_forbidden_and_permitted_users(name, kwargs, operator, admin_user):
    url = reverse(name, kwargs=kwargs)
    assert Client().get(url).status_code == 302
    unprivileged = Client()
    unprivileged.force_login(operator)
    assert unprivileged.get(url).status_code == 404
    admin = Client()
    admin.force_login(admin_user)
    assert admin.get(url).status_code == 200


def test_a_user_manager_sees_user_pages_but_not_the_audit_log(user_manager):
    browser = Client()
    browser.force_login(user_manager)
    assert browser.get(reverse("accounts:user_list")).status_code == 200
    assert browser.get(reverse("accounts:audit_list")).status_code == 404
    html = browser.get(reverse("dashboard")).content.decode()
    assert reverse("accounts:user_list") in html
    assert reverse("accounts:audit_list") not in html


def test_sidebar_hides_accounts_from_operators(operator_client):
    html = operator_client.get(reverse("dashboard")).content.decode()
    assert reverse("accounts:user_list") not in html


def test_create_user_validates_and_audits(admin_client_, admin_user):
    bad = admin_client_.post(
        reverse("accounts:user_create"), {"username": "li wei", "password1": "short", "password2": "x"}
    )
    assert bad.status_code == 200
    assert "Use letters, digits" in bad.content.decode()
    assert not User.objects.filter(username__startswith="li").exists()

    good = admin_client_.post(
        reverse("accounts:user_create"),
        {
            "username": "li.wei",
            "full_name": "Li Wei",
            "email": "li.wei@bank.example",
            "password1": "Xk82-plum-harbour",
            "password2": "Xk82-plum-harbour",
        },
    )
    user = User.objects.get(username="li.wei")
    assert good.status_code == 302
    assert user.check_password("Xk82-plum-harbour")
    assert user.first_name == "Li" and user.last_name == "Wei"
    event = AuditEvent.objects.get(action="accounts.user.create", object_name="li.wei")  # once, by the service
    assert event.actor_name == admin_user.username
    assert "Xk82" not in str(event.detail)


def test_user_creation_error_is_translated(admin_client_):
    response = admin_client_.post(
        reverse("accounts:user_create"),
        {"username": "wang", "password1": "a", "password2": "b"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "两次输入的密码不一致" in response.content.decode()


def test_disable_user_ends_sessions_and_cannot_disable_self(admin_client_, admin_user):
    victim = UserFactory()
    session_client = Client()
    session_client.force_login(victim)
    admin_client_.post(reverse("accounts:user_set_active", args=[victim.pk]), {"active": "0"})
    victim.refresh_from_db()
    assert not victim.is_active
    assert session_client.get(reverse("dashboard")).status_code == 302

    admin_client_.post(reverse("accounts:user_set_active", args=[admin_user.pk]), {"active": "0"})
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_reset_password_is_shown_once_and_works(admin_client_):
    target = UserFactory()
    response = admin_client_.post(reverse("accounts:user_reset_password", args=[target.pk]))
    html = response.content.decode()
    password = html.split('data-testid="new-password">')[1].split("<")[0]
    target.refresh_from_db()
    assert target.check_password(password)
    assert password not in str(list(AuditEvent.objects.values_list("detail", flat=True)))


def test_builtin_roles_cannot_be_changed_or_deleted(admin_client_):
    viewer = Role.objects.get(slug="viewer")
    admin_client_.post(
        reverse("accounts:role_edit", args=[viewer.pk]),
        {
            "slug": "viewer",
            "name_en": "Viewer",
            "name_zh": "只读",
            "capabilities": ["pods.delete"],
        },
    )
    admin_client_.post(reverse("accounts:role_delete", args=[viewer.pk]))
    viewer.refresh_from_db()
    assert "pods.delete" not in viewer.capabilities


def test_custom_role_with_bad_slug_is_refused_and_preview_shows_rules(admin_client_):
    response = admin_client_.post(
        reverse("accounts:role_create"),
        {
            "slug": "Ops_Team",
            "name_en": "Ops",
            "name_zh": "运维",
            "capabilities": ["workloads.scale"],
        },
    )
    assert "Use lower-case letters" in response.content.decode()
    assert not Role.objects.filter(name_en="Ops").exists()

    preview = admin_client_.post(
        reverse("accounts:role_rules_preview"), {"capabilities": ["pods.logs"]}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "pods/log" in preview
    assert "<html" not in preview


def test_project_namespaces_must_be_valid_and_not_shared(admin_client_, project, cluster):
    bad = admin_client_.post(
        reverse("accounts:project_create"),
        {
            "cluster": cluster.pk,
            "slug": "erp",
            "name": "ERP",
            "namespaces": "erp, Bad_Name",
        },
    )
    assert "These are not valid namespace names: Bad_Name" in bad.content.decode()
    taken = admin_client_.post(
        reverse("accounts:project_create"),
        {
            "cluster": cluster.pk,
            "slug": "erp",
            "name": "ERP",
            "namespaces": "erp payments",
        },
    )
    assert "already belong to project Payments" in taken.content.decode()
    assert Project.objects.count() == 1


def test_binding_a_group_to_a_project_grants_its_members(admin_client_, project, cluster):
    member = UserFactory()
    group = Group.objects.create(name="payments-devs")
    group.user_set.add(member)
    admin_client_.post(
        reverse("accounts:project_detail", args=[project.pk]),
        {
            "role": Role.objects.get(slug="developer").pk,
            "group": group.pk,
        },
    )
    assert Binding.objects.filter(group=group, project=project).exists()
    seen = Project.objects.filter(access.q(member, "workloads.view", namespace="namespaces__overlap"))
    assert list(seen) == [project]
    assert access.may(member, "workloads.scale", cluster=cluster, namespace="payments")
    assert not access.may(member, "workloads.scale", cluster=cluster, namespace="erp")


def test_binding_needs_exactly_one_subject(admin_client_, project):
    response = admin_client_.post(
        reverse("accounts:project_detail", args=[project.pk]),
        {
            "role": Role.objects.get(slug="viewer").pk,
        },
    )
    assert "Choose either a user or a group." in response.content.decode()
    assert Binding.objects.count() == 0


def test_user_list_query_count_does_not_grow_with_users(admin_client_, django_assert_max_num_queries):
    UserFactory.create_batch(30)
    with django_assert_max_num_queries(10):
        assert admin_client_.get(reverse("accounts:user_list")).status_code == 200


def test_visible_namespaces_follow_scope(project, cluster, admin_user, operator):
    from apps.accounts.access import visible_namespaces

    services.create_binding(actor=admin_user, role=Role.objects.get(slug="developer"), user=operator, project=project)
    assert visible_namespaces(operator, "workloads.view", cluster=cluster) == {"payments"}
    assert visible_namespaces(operator, "nodes.view", cluster=cluster) == frozenset()
    assert visible_namespaces(admin_user, "workloads.view", cluster=cluster) is None
    other = Cluster(name="dr", api_server="https://10.0.0.2:6443", kubeconfig_encrypted="x")
    other.save()
    assert visible_namespaces(operator, "workloads.view", cluster=other) == frozenset()


def test_what_may_i_do_offers_only_the_clusters_and_projects_the_user_holds_something_in(client):
    user = UserFactory()
    mine, other = ClusterFactory(name="bj-payments"), ClusterFactory(name="sh-secret-cluster")
    own = Project.objects.create(cluster=mine, slug="payments", name="Payments", namespaces=["payments"])
    Project.objects.create(cluster=mine, slug="treasury", name="Treasury desk", namespaces=["treasury"])
    Project.objects.create(cluster=other, slug="hidden", name="Hidden desk", namespaces=["hidden"])
    grant(user, "developer", project=own)
    login(client, user)

    html = client.get(reverse("accounts:my_access")).content.decode()

    assert "bj-payments" in html
    assert "Payments" in html
    assert "sh-secret-cluster" not in html
    assert "Treasury desk" not in html
    assert "Hidden desk" not in html


def test_the_console_deletes_a_user_after_the_name_is_typed_and_audits_it(admin_user, project):
    person = UserFactory(username="leaving.person")
    grant(person, "viewer", project=project)
    Client().force_login(person)  # an open session that must end
    admin = login(Client(), admin_user, recent_auth=True)
    page_url = reverse("accounts:user_delete", args=[person.pk])

    page = admin.get(page_url)
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-testid="confirm-deactivate"' in text and "1 role binding of their own is deleted" in text
    assert "1 open session ends" in text

    wrong = admin.post(page_url, {"confirm_name": "leaving"})
    assert wrong.status_code == 400 and "Type the user name, leaving.person" in wrong.content.decode()
    assert User.objects.filter(pk=person.pk).exists()

    done = admin.post(page_url, {"confirm_name": "leaving.person"})
    assert done.status_code == 302 and done["Location"] == reverse("accounts:user_list")
    assert not User.objects.filter(pk=person.pk).exists()
    assert not Binding.objects.filter(user_id=person.pk).exists()
    events = AuditEvent.objects.filter(action="accounts.user.delete", object_name="leaving.person")
    assert [(e.actor_id, e.detail["sessions"], len(e.detail["bindings"])) for e in events] == [(admin_user.pk, 1, 1)]


def test_nobody_deletes_their_own_account_and_only_a_superuser_deletes_a_superuser(admin_user, user_manager):
    manager = login(Client(), user_manager, recent_auth=True)
    own = manager.post(reverse("accounts:user_delete", args=[user_manager.pk]), {"confirm_name": "user-manager"})
    name = admin_user.username
    superuser = manager.post(reverse("accounts:user_delete", args=[admin_user.pk]), {"confirm_name": name})

    assert own.status_code == 403 and "cannot deactivate or delete your own account" in own.content.decode()
    assert superuser.status_code == 403 and "Only a superuser can" in superuser.content.decode()
    assert User.objects.filter(pk__in=[user_manager.pk, admin_user.pk]).count() == 2
    assert not AuditEvent.objects.filter(action="accounts.user.delete").exists()
