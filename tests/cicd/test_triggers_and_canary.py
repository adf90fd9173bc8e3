"""The rest of a pipeline's reach: a schedule runs it as the person who set it (refused, and audited, once they may
no longer); a run deploys only when its actor holds cicd.deploy; and a pipeline set to deploy as a canary starts a
canary of its release (traffic split by the release's HTTPRoute) with the run's image, by digest."""

from __future__ import annotations

import pytest

from apps.accounts.models import Binding, Role
from apps.cicd import services, tasks
from apps.cicd.models import Pipeline, Run
from apps.core.deferred import render as R
from apps.core.models import AuditEvent
from apps.releases import services as releases
from apps.releases.models import Canary, Release
from tests.cicd.test_jar_pipeline import upload
from tests.factories import UserFactory
from tests.releases.helpers import roll_out

pytestmark = [pytest.mark.sandbox, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def execute(run: Run) -> Run:
    run.refresh_from_db()
    tasks.execute_run(str(run.job_id), run.pk)
    run.refresh_from_db()
    return run


def test_a_schedule_runs_as_its_owner_and_is_refused_once_they_lose_the_right(team, jar_pipeline, samples, tmp_path):
    upload(jar_pipeline, team["user"], samples, tmp_path)
    jar_pipeline.schedule = "0 2 * * 1-5"
    services.save_pipeline(actor=team["user"], pipeline=jar_pipeline)
    jar_pipeline.refresh_from_db()
    assert jar_pipeline.schedule_owner == team["user"]

    run = services.run_scheduled(jar_pipeline.pk)
    assert run.trigger == Run.Trigger.SCHEDULE and run.actor == team["user"]
    assert services.run_scheduled(jar_pipeline.pk) is None, "not while the last scheduled run is unfinished"

    Run.objects.filter(pk=run.pk).update(status=Run.Status.SUCCEEDED)
    Binding.objects.filter(user=team["user"]).delete()
    assert services.run_scheduled(jar_pipeline.pk) is None
    refused = AuditEvent.objects.get(action="cicd.run.refused", object_name=jar_pipeline.name)
    assert refused.result == "denied" and refused.detail["trigger"] == "schedule"


def test_a_run_deploys_only_when_its_actor_may_deploy_from_pipelines(team, jar_pipeline, vulndb, samples, tmp_path):
    services.save_policy(
        actor=team["admin"], project=team["project"], block_on="none", max_concurrent_runs=2, keep_days=30, keep_runs=10
    )
    builder = UserFactory()
    role = Role.objects.create(
        slug="builder", name_en="Builder", name_zh="构建者", capabilities=["cicd.view", "cicd.run", "releases.deploy"]
    )
    Binding.objects.create(user=builder, role=role, scope=Binding.Scope.PROJECT, project=team["project"])
    upload(jar_pipeline, team["user"], samples, tmp_path)

    run = execute(services.start_run(actor=builder, pipeline=jar_pipeline))
    assert run.status == Run.Status.FAILED
    assert dict(run.stages.values_list("key", "status"))["push"] == "succeeded"
    assert "may not deploy from pipelines" in R(run.stages.get(key="deploy").message)
    assert not Release.objects.filter(project=team["project"]).exists()


def test_a_canary_pipeline_starts_a_canary_of_its_release_with_the_new_image(
    team, jar_pipeline, vulndb, samples, tmp_path
):
    services.save_policy(
        actor=team["admin"], project=team["project"], block_on="none", max_concurrent_runs=2, keep_days=30, keep_runs=10
    )
    upload(jar_pipeline, team["user"], samples, tmp_path)
    first = execute(services.start_run(actor=team["user"], pipeline=jar_pipeline))
    assert first.status == Run.Status.SUCCEEDED, first.message
    release = Release.objects.get(pk=first.release_id)
    # Publish the release through the sandbox's Gateway: a canary needs a route to split traffic.
    route = {
        "enabled": True,
        "hostname": "orders.bank.example",
        "path": "/",
        "gateway_namespace": "gateway-system",
        "gateway_name": "public",
    }
    outcome = releases.deploy_release(actor=team["user"], release=release, spec={**release.spec, "route": route})
    assert roll_out(outcome.revision).status == "succeeded"

    jar_pipeline.deploy_mode, jar_pipeline.canary_weight = Pipeline.DeployMode.CANARY, 20
    services.save_pipeline(actor=team["user"], pipeline=jar_pipeline)
    upload(jar_pipeline, team["user"], samples, tmp_path)
    second = execute(services.start_run(actor=team["user"], pipeline=jar_pipeline))
    assert second.status == Run.Status.SUCCEEDED, second.message
    canary = Canary.objects.get(release=release, state=Canary.State.ACTIVE)
    assert canary.weight == 20 and canary.started_by == team["user"]
    assert canary.spec["image"] == f"{second.image}@{second.digest}"
    assert "Canary of" in R(second.stages.get(key="deploy").message)
