"""Canary pages without a cluster: who may reach each view, the form's sentences, the live split from inventory."""

import pytest
from django.urls import reverse

from apps.releases import render
from apps.releases.models import Canary
from tests.factories import ResourceFactory, UserFactory
from tests.helpers import login
from tests.releases.helpers import NEW, member

pytestmark = pytest.mark.django_db
VIEWS = [
    "releases:canary_start",
    "releases:canary_step",
    "releases:canary_promote",
    "releases:canary_abort",
    "releases:canary_pause",
    "releases:canary_resume",
]


@pytest.fixture
def running(release):
    spec = {**release.spec, "image": NEW}
    return Canary.objects.create(release=release, spec=spec, mode=Canary.Mode.WEIGHT, weight=10)


def routed(release):
    release.spec["route"] = {**release.spec["route"], "enabled": True, "gateway_name": "public"}
    release.save()
    return release


@pytest.mark.parametrize("name", VIEWS)
def test_anonymous_is_sent_to_sign_in(client, running, name):
    response = client.post(reverse(name, args=[running.release.pk]), {"weight": 50})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", VIEWS)
def test_a_user_without_any_grant_gets_404(client, running, name):
    response = login(client, UserFactory()).post(reverse(name, args=[running.release.pk]), {"weight": 50})
    assert response.status_code == 404


@pytest.mark.parametrize("name", VIEWS)
def test_a_developer_without_the_canary_capability_gets_404(client, running, name):
    response = login(client, member(running.release)).post(reverse(name, args=[running.release.pk]), {"weight": 50})
    assert response.status_code == 404
    assert running.steps.count() == 0


@pytest.mark.parametrize("name", [name for name in VIEWS if name != "releases:canary_start"])
def test_a_project_owner_without_a_running_canary_gets_404(client, release, name):
    response = login(client, member(release, "project-owner")).post(reverse(name, args=[release.pk]), {"weight": 50})
    assert response.status_code == 404


def test_the_start_form_says_what_to_fix_and_starts_nothing(client, release):
    login(client, member(routed(release), "project-owner"))

    response = client.post(
        reverse("releases:canary_start", args=[release.pk]),
        {"image": "Bad Image!!", "mode": "header", "match_name": "X Canary", "replicas": 1},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "is not an image reference" in page
    assert "“X Canary” is not a header or cookie name" in page
    assert not Canary.objects.exists()


def test_a_developer_sees_the_split_but_no_canary_buttons(client, running):
    routed(running.release)
    response = login(client, member(running.release)).get(reverse("releases:release_detail", args=[running.release.pk]))
    page = response.content.decode()
    assert response.status_code == 200 and 'data-testid="canary"' in page
    assert 'data-testid="canary-promote"' not in page and 'data-testid="canary-start-form"' not in page


def test_the_page_shows_the_live_split_ready_pods_and_the_route_status_from_inventory(
    client, running, django_assert_max_num_queries
):
    release = routed(running.release)
    cluster = release.project.cluster
    route = render.split_route(release.name, release.namespace, release.spec, mode="weight", weight=10, match=("", ""))
    route["status"] = {"parents": [{"conditions": [{"type": "Accepted", "status": "False", "reason": "Pending"}]}]}
    ResourceFactory(cluster=cluster, kind="HTTPRoute", namespace=release.namespace, obj=route)
    for name, image, ready in ((release.name, release.spec["image"], 2), (f"{release.name}-canary", NEW, 1)):
        ResourceFactory(
            cluster=cluster,
            kind="Deployment",
            namespace=release.namespace,
            obj={
                "metadata": {"name": name},
                "spec": {"replicas": 2 if ready == 2 else 1, "template": {"spec": {"containers": [{"image": image}]}}},
                "status": {"readyReplicas": ready, "availableReplicas": ready},
            },
        )
    login(client, member(release, "project-owner"))

    with django_assert_max_num_queries(25):
        response = client.get(reverse("releases:release_detail", args=[release.pk]))

    page = response.content.decode()
    assert 'data-track="stable"' in page and 'data-track="canary"' in page
    assert "90%" in page and "10%" in page
    assert "2/2" in page and "1/1" in page
    assert "NotAccepted" in page and "No gateway has accepted this route" in page
    assert 'data-testid="canary-step-25"' in page and 'data-testid="canary-promote"' in page


def test_the_conflict_offer_is_shown_only_for_an_action_the_user_may_take(client, running):
    release = running.release
    owner = member(release, "project-owner")
    developer = member(release)
    detail = reverse("releases:release_detail", args=[release.pk])

    offered = login(client, owner).get(detail, {"conflict": "promote"}).content.decode()
    not_for_developer = login(client, developer).get(detail, {"conflict": "promote"}).content.decode()
    unknown_revision = login(client, owner).get(detail, {"conflict": "rollback", "revision": "99"}).content.decode()

    assert 'data-testid="force-promote"' in offered
    assert 'name="force" value="1"' in offered
    assert 'data-testid="conflict"' not in not_for_developer
    assert 'data-testid="conflict"' not in unknown_revision


def test_the_canary_card_polls_while_a_canary_runs_and_answers_with_the_card_alone(client, running):
    release = running.release
    login(client, member(release, "project-owner"))
    detail = reverse("releases:release_detail", args=[release.pk])

    page = client.get(detail).content.decode()
    card = client.get(detail, {"part": "canary"}, headers={"HX-Request": "true"}).content.decode()

    assert 'hx-trigger="every 10s"' in page
    assert card.lstrip().startswith('<div class="card mb-3" id="release-canary"')
    assert 'id="release-history"' not in card and "<html" not in card


def test_the_card_does_not_poll_without_a_canary(client, release):
    login(client, member(release, "project-owner"))

    page = client.get(reverse("releases:release_detail", args=[release.pk])).content.decode()

    assert 'id="release-canary"' in page
    assert 'hx-trigger="every 10s"' not in page


def test_a_person_waits_for_a_running_automatic_check_and_is_told_when_it_takes_too_long(client, running, monkeypatch):
    from apps.core.locks import redis_lock
    from apps.releases import analysis

    monkeypatch.setattr(analysis, "LOCK_WAIT", 0.3)
    login(client, member(running.release, "project-owner"))

    with redis_lock(f"canary-analysis-{running.pk}"):
        response = client.post(reverse("releases:canary_abort", args=[running.release.pk]), follow=True)

    assert "An automatic check of this canary is still running; try again in a minute." in response.content.decode()
    running.refresh_from_db()
    assert running.state == Canary.State.ACTIVE
    assert running.steps.count() == 0


def test_a_check_due_within_the_grace_runs_on_this_tick_and_a_later_one_waits(running):
    from datetime import timedelta

    from django.utils import timezone

    from apps.releases import analysis

    cluster = running.release.project.cluster
    cluster.prometheus_url = "http://127.0.0.1:9"
    cluster.save(update_fields=["prometheus_url"])
    running.analysis = Canary.Analysis.RUNNING
    running.analysis_query, running.analysis_max = "vector(0)", 0.1
    running.analysis_by = member(running.release, "project-owner")
    running.next_check_at = timezone.now() + timedelta(milliseconds=900)
    running.save()

    assert analysis.analyse_due() == 1
    running.refresh_from_db()
    assert list(running.checks.values_list("outcome", flat=True)) == ["error"]
    assert running.failures == 1 and running.next_check_at > timezone.now() + timedelta(seconds=50)

    Canary.objects.filter(pk=running.pk).update(next_check_at=timezone.now() + timedelta(seconds=5))
    assert analysis.analyse_due() == 0


def test_an_overdue_check_is_called_out_on_the_page(client, running):
    from datetime import timedelta

    from django.utils import timezone

    running.analysis, running.analysis_query, running.analysis_max = Canary.Analysis.RUNNING, "vector(0)", 0.1
    running.next_check_at = timezone.now() - timedelta(minutes=2)
    running.save()
    login(client, member(running.release, "project-owner"))
    detail = reverse("releases:release_detail", args=[running.release.pk])

    late = client.get(detail).content.decode()
    Canary.objects.filter(pk=running.pk).update(next_check_at=timezone.now() + timedelta(seconds=20))
    on_time = client.get(detail).content.decode()

    assert 'data-testid="analysis-late"' in late and "Celery worker and beat" in late
    assert 'data-testid="analysis-late"' not in on_time and 'data-testid="analysis-state"' in on_time
