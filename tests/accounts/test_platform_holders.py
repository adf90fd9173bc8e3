"""access.platform_holders answers, in one query, what access.may answers person by person."""

import pytest
from django.contrib.auth.models import Group

from apps.accounts import access
from apps.accounts.models import Binding, Project, Role
from tests.factories import AdminFactory, ClusterFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_it_names_exactly_the_people_may_says_hold_the_capability():
    role = Role.objects.create(slug="cab", name_en="CAB", name_zh="变更委员会", capabilities=["changes.approve"])
    direct, through_group, project_only, inactive, nobody = (UserFactory() for _ in range(5))
    superuser = AdminFactory()
    board = Group.objects.create(name="cab-members")
    board.user_set.add(through_group, inactive)
    Binding.objects.create(role=role, user=direct, scope=Binding.Scope.PLATFORM)
    Binding.objects.create(role=role, group=board, scope=Binding.Scope.PLATFORM)
    project = Project.objects.create(cluster=ClusterFactory(), slug="p", name="P", namespaces=["p"])
    Binding.objects.create(role=role, user=project_only, scope=Binding.Scope.PROJECT, project=project)
    inactive.is_active = False
    inactive.save()
    nobody.email = ""
    nobody.save()

    holders = list(access.platform_holders("changes.approve"))

    everyone = [direct, through_group, project_only, inactive, nobody, superuser]
    assert holders == sorted((u for u in everyone if access.may(u, "changes.approve")), key=lambda u: u.pk)
    assert set(holders) == {direct, through_group, superuser}
    with pytest.raises(AssertionError):
        access.platform_holders("workloads.view")  # not a platform capability: may needs a place
