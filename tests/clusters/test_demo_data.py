"""``manage.py demo_data``: the demo projects on the sandbox cluster row (no cluster is called)."""

import pytest
from django.core.management import call_command

from apps.accounts.models import Project
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db


def test_demo_data_creates_the_demo_projects_once(admin_user):
    cluster = ClusterFactory(name="sandbox")
    call_command("demo_data", cluster="sandbox", actor=admin_user.username)
    call_command("demo_data", cluster="sandbox", actor=admin_user.username)
    assert sorted(Project.objects.filter(cluster=cluster).values_list("slug", "namespaces")) == [
        ("erp", ["erp"]),
        ("payments", ["payments"]),
    ]
