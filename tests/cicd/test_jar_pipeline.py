"""A jar pipeline end to end, on real parts (issue 16, the first "done when"): the uploaded jar is built into an
image on the approved base without a daemon, osv-scanner finds the planted CVE offline, the project's policy blocks
the deploy (nothing pushed); with an exception the run pushes to the registry (the digest read back matches) and
deploys a release whose pods run on kwok with that image."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from apps.cicd import services, tasks
from apps.cicd.models import Finding, Run, Stage
from apps.core.models import AuditEvent
from apps.releases.models import Release
from tests.helpers import wait_for

pytestmark = [pytest.mark.sandbox, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def upload(pipeline, user, samples, tmp_path):
    jar = samples.build_sample_jar(tmp_path / "orders.jar")
    with jar.open("rb") as f:
        return services.add_upload(
            actor=user, pipeline=pipeline, filename="orders.jar", chunks=iter(lambda: f.read(65536), b"")
        )


def run_now(run: Run) -> Run:
    """What the worker does with the run's Job, here in the test's process."""
    run.refresh_from_db()
    assert run.job_id is not None, "the dispatcher gave the run a job"
    tasks.execute_run(str(run.job_id), run.pk)
    run.refresh_from_db()
    return run


def stages(run: Run) -> dict[str, str]:
    return dict(run.stages.values_list("key", "status"))


def test_the_planted_cve_blocks_the_deploy_and_an_exception_lets_it_through(
    team, jar_pipeline, vulndb, oci_registry, samples, sandbox, tmp_path
):
    user = team["user"]
    services.save_policy(
        actor=team["admin"],
        project=team["project"],
        block_on="critical",
        max_concurrent_runs=2,
        keep_days=30,
        keep_runs=10,
    )
    first = upload(jar_pipeline, user, samples, tmp_path)
    assert first.version == "1.4.2"
    run = run_now(services.start_run(actor=user, pipeline=jar_pipeline, upload=first))

    assert run.status == Run.Status.BLOCKED, run.message
    assert stages(run) == {
        "source": "succeeded",
        "build": "succeeded",
        "scan": "failed",
        "push": "skipped",
        "deploy": "skipped",
    }
    planted = Finding.objects.get(run=run, vuln_id=samples.SAMPLE_MAVEN_ID)
    assert planted.severity == "critical" and planted.blocking
    assert planted.package == "org.apache.logging.log4j:log4j-core" and planted.version == "2.14.1"
    assert planted.fixed == "2.17.1"
    assert "CVE-2021-44228" in planted.aliases
    debian = Finding.objects.filter(run=run, vuln_id=samples.SAMPLE_DEBIAN_ID)
    # The openssl source package, installed as two binary packages of the base image.
    assert sorted(f.source for f in debian) == ["/var/lib/dpkg/status (libssl3)", "/var/lib/dpkg/status (openssl)"]
    assert all(f.severity == "high" and not f.blocking for f in debian)  # the policy blocks on critical only
    assert run.artifacts.filter(kind="sbom").exists() and run.artifacts.filter(kind="scan").exists()
    assert jar_pipeline.repository.split("/", 1)[1] not in " ".join(oci_registry.repositories()), "nothing pushed"

    services.grant_exception(
        actor=team["admin"],
        project=team["project"],
        vuln_id="CVE-2021-44228",
        package="org.apache.logging.log4j:log4j-core",
        reason="Patched by the vendor's hotfix",
        days=7,
    )
    again = run_now(services.rerun(actor=user, run=run))
    assert again.status == Run.Status.SUCCEEDED, again.message
    assert stages(again) == {
        "source": "succeeded",
        "build": "succeeded",
        "scan": "warning",
        "push": "succeeded",
        "deploy": "succeeded",
    }
    excepted = Finding.objects.get(run=again, vuln_id=samples.SAMPLE_MAVEN_ID)
    assert excepted.exception is not None and not excepted.blocking
    # The registry holds the image under the run's tag, with the digest the run recorded.
    assert oci_registry.digest(again.image) == again.digest
    config = oci_registry.config(again.image)["config"]
    assert config["Entrypoint"] == ["java", "-jar", "/app/app.jar"]
    assert "JAVA_TOOL_OPTIONS=-XX:MaxRAMPercentage=75.0" in config["Env"]
    # The release runs that image, by digest, on kwok.
    release = Release.objects.get(project=team["project"], namespace=team["namespace"], name=jar_pipeline.name)
    assert release.spec["image"] == f"{again.image}@{again.digest}"
    assert again.release_id == release.pk and again.revision == 1
    core = k8s.CoreV1Api(sandbox.api_client)

    def running():
        pods = core.list_namespaced_pod(team["namespace"], label_selector=f"kubemate.io/release={release.name}").items
        ready = [p for p in pods if p.status.phase == "Running"]
        return ready if ready and all(p.spec.containers[0].image == release.spec["image"] for p in ready) else None

    assert wait_for(running, timeout=60)
    actions = set(AuditEvent.objects.filter(namespace=team["namespace"]).values_list("action", flat=True))
    assert {"cicd.run.start", "releases.release.create", "releases.release.deploy"} <= actions
    deployed_by = AuditEvent.objects.filter(action="releases.release.deploy", namespace=team["namespace"]).first()
    assert deployed_by.actor_id == user.pk, "the deploy acts as the person who started the run"
    assert Stage.objects.get(run=again, key="deploy").detail["revision"] == 1
