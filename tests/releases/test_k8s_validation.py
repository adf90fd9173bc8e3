"""What Kubernetes would refuse is refused before a release is saved (issue 11, item 7).

Two layers: the form checks what Kubernetes checks (label values, variable names, sizes) with a sentence
per field; and a server-side dry run of every object, as the user, catches what only the cluster knows
(here an admission policy that refuses images from one registry). Either way no Release row is left
behind and nothing reaches the cluster.
"""

import pytest
from django.urls import reverse
from kubernetes import client as k8s

from apps.releases.forms import ReleaseForm
from apps.releases.models import Release
from tests.helpers import login, unique, wait_for
from tests.releases.helpers import NAME, form_data

pytestmark = pytest.mark.django_db


def create(client, team, **overrides):
    data = form_data(project=team["project"].pk, namespace=team["namespace"], name=NAME, **overrides)
    return login(client, team["user"]).post(reverse("releases:release_create"), data)


@pytest.fixture
def no_images_from_quarantine(sandbox, team):
    """A ValidatingAdmissionPolicy in the team's namespace refusing images from quarantine.bank.example."""
    admission = k8s.AdmissionregistrationV1Api(sandbox.api_client)
    name = unique("no-quarantine")
    rules = [
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}
    ]
    admission.create_validating_admission_policy(
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": rules},
                "validations": [
                    {
                        "expression": "object.spec.template.spec.containers.all(c, "
                        "!c.image.startsWith('quarantine.bank.example/'))",
                        "message": "images from quarantine.bank.example are not allowed here",
                    }
                ],
            },
        }
    )
    admission.create_validating_admission_policy_binding(
        {
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": team["namespace"]}}
                },
            },
        }
    )
    probe = {
        "metadata": {"name": "probe"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "quarantine.bank.example/x:1"}]},
            },
        },
    }

    def refused() -> bool:
        try:
            k8s.AppsV1Api(sandbox.api_client).create_namespaced_deployment(team["namespace"], probe, dry_run="All")
        except k8s.ApiException as exc:
            return "quarantine" in exc.body
        return False

    assert wait_for(refused), "the admission policy never took effect"
    yield
    admission.delete_validating_admission_policy_binding(name)
    admission.delete_validating_admission_policy(name)


@pytest.mark.sandbox
def test_what_only_the_cluster_knows_is_caught_by_the_dry_run_and_nothing_is_saved(
    client, team, sandbox, no_images_from_quarantine
):
    response = create(client, team, image="quarantine.bank.example/payments-api:1.0.0")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Kubernetes would refuse this release, so nothing was saved" in html
    assert "images from quarantine.bank.example are not allowed here" in html
    assert not Release.objects.exists()
    deployments = k8s.AppsV1Api(sandbox.api_client).list_namespaced_deployment(team["namespace"]).items
    assert deployments == []


@pytest.mark.sandbox
def test_an_accepted_release_is_saved_and_deployed_after_the_dry_run(client, team, sandbox):
    response = create(client, team)

    assert response.status_code == 302
    assert Release.objects.filter(name=NAME).exists()
    assert k8s.AppsV1Api(sandbox.api_client).read_namespaced_deployment(NAME, team["namespace"])


SIZE_CASES = {
    "a 40 KB value": ("env", "BIG=" + "x" * 40_000, "is longer than 32 KB"),
    "201 variables": ("env", "\n".join(f"V{n}=1" for n in range(201)), "At most 200 variables"),
    "a 200-character name": ("env", "A" * 200 + "=1", "is longer than 128 characters"),
    "300 KB in all": ("env", "\n".join(f"V{n}=" + "x" * 30_000 for n in range(10)), "add up to more than 256 KB"),
    "a 40 KB sensitive value": ("secret_env", "TOKEN=" + "x" * 40_000, "is longer than 32 KB"),
    "a 10 KB node label value": ("node_selector", "disk=" + "s" * 10_000, "write a node label as key=value"),
    "a 300-character node label key": ("node_selector", "a" * 300 + "=ssd", "write a node label as key=value"),
}


@pytest.mark.parametrize("case", list(SIZE_CASES))
def test_the_form_refuses_what_kubernetes_would_refuse_with_a_sentence(case, admin_user):
    field, value, sentence = SIZE_CASES[case]
    form = ReleaseForm(form_data(**{field: value}), user=admin_user)

    assert not form.is_valid()
    assert sentence in " ".join(form.errors.get(field, []))
