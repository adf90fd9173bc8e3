import pytest

from apps.accounts import capabilities
from apps.accounts.models import Role
from apps.accounts.projection import desired_state
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db


def role_rules(state, slug):
    owned = next(o for o in state if o.owner["kind"] == "PlatformRole" and o.owner["metadata"]["name"] == slug)
    return owned.dependents[0]["rules"]


def test_superusers_are_bound_to_every_capability_even_without_the_role_row(admin_user):
    Role.objects.filter(slug="platform-admin").delete()

    state = desired_state(ClusterFactory())

    assert role_rules(state, "platform-admin") == capabilities.rules_for(capabilities.BY_CODE)
    binding = next(o for o in state if o.owner["metadata"]["name"] == "kubemate-superusers")
    assert [s["name"] for s in binding.dependents[0]["subjects"]] == [f"kubemate-u{admin_user.pk}"]
