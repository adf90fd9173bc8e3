"""Demo CI/CD data: the demo's registry registered for the sandbox cluster, the sample base image pushed to it and
approved for each demo project, the sample offline vulnerability database imported, and two pipelines: "orders"
(a jar, in Payments) run once, blocked by the planted critical vulnerability, then run again under a granted
exception, pushed and deployed; and "portal" (a git repository with a Dockerfile, in ERP) with its webhook. Every
change goes through the services as the demo administrator, so it is audited like any other. Idempotent."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Project
from apps.cicd import services, tools
from apps.cicd.catalogue import vulndb
from apps.cicd.models import BaseImage, Pipeline, Registry, Run, ScanException, VulnDatabase
from apps.clusters.models import Cluster
from apps.core.deferred import Failure

SAMPLES = Path(settings.BASE_DIR) / "deploy" / "local" / "cicd_samples.py"
BASE_REPOSITORY = "base/debian-jre"


def samples():
    if "kubemate_cicd_samples" in sys.modules:
        return sys.modules["kubemate_cicd_samples"]
    spec = importlib.util.spec_from_file_location("kubemate_cicd_samples", SAMPLES)
    module = importlib.util.module_from_spec(spec)
    sys.modules["kubemate_cicd_samples"] = module
    spec.loader.exec_module(module)
    return module


class Command(BaseCommand):
    help = "Register the demo registry, a base image, the sample vulnerability database and two pipelines."

    def add_arguments(self, parser):
        parser.add_argument("--cluster", default="sandbox")
        parser.add_argument("--actor", default="admin")
        parser.add_argument("--registry", required=True, help="host:port of the demo's registry (plain HTTP)")
        parser.add_argument("--wait", type=int, default=90, help="seconds to wait for each demo run")

    def handle(self, *args, cluster: str, actor: str, registry: str, wait: int, **options):
        user = get_user_model().objects.filter(username=actor).first()
        target = Cluster.objects.filter(name=cluster).first()
        projects = list(Project.objects.filter(cluster=target, slug__in=["payments", "erp"]).order_by("slug"))
        if user is None or target is None or len(projects) != 2:
            raise CommandError(
                f"run demo_admin, register_sandbox and demo_data first (user {actor}, cluster {cluster})"
            )
        erp, payments = projects
        try:
            reg = self._registry(user, target, registry)
            bases = {p.slug: self._base(user, p, reg) for p in projects}
            self._database(user)
            orders = self._orders(user, payments, reg, bases["payments"])
            self._portal(user, erp, reg)
        except Failure as exc:
            raise CommandError(str(exc)) from exc
        self._runs(user, orders, wait)
        self.stdout.write("CI/CD demo: registry, base image, vulnerability database, pipelines orders and portal.")

    def _registry(self, user, cluster, host: str) -> Registry:
        found = Registry.objects.filter(name="demo-registry").first() or Registry(name="demo-registry")
        found.host, found.insecure, found.cluster = host, True, cluster
        return services.save_registry(actor=user, registry=found)

    def _base(self, user, project, registry) -> BaseImage:
        ref = f"{registry.host}/{BASE_REPOSITORY}:17"
        with tempfile.TemporaryDirectory() as folder:
            samples().push_base_image(tools.crane(), ref, insecure=True, folder=Path(folder))
        return services.approve_base(
            actor=user,
            project=project,
            name="Debian 12 JRE 17",
            reference=ref,
            registry=registry,
            description="The bank's approved Java base (demo: a small Debian root file system built offline).",
        )

    def _database(self, user) -> None:
        if VulnDatabase.objects.exists():
            return
        with tempfile.TemporaryDirectory() as folder:
            bundle = samples().write_osv_bundle(Path(folder) / "osv-sample.zip")
            with bundle.open("rb") as f:
                vulndb.import_bundle(actor=user, filename=bundle.name, chunks=iter(lambda: f.read(1 << 20), b""))

    def _orders(self, user, project, registry, base) -> Pipeline:
        pipeline = Pipeline.objects.filter(project=project, name="orders").first() or Pipeline(
            project=project, namespace=project.namespaces[0], name="orders", kind=Pipeline.Kind.JAR
        )
        pipeline.description = "Orders service: the jar the team hands over, built on the approved JRE."
        pipeline.base_image, pipeline.registry, pipeline.repository = base, registry, "payments/orders"
        pipeline.jvm_options = " ".join(samples().JVM_OPTIONS)
        pipeline.deploy_mode, pipeline.port = Pipeline.DeployMode.DIRECT, 8080
        services.save_policy(
            actor=user, project=project, block_on="critical", max_concurrent_runs=2, keep_days=30, keep_runs=20
        )
        return services.save_pipeline(actor=user, pipeline=pipeline)

    def _portal(self, user, project, registry) -> Pipeline:
        repo = Path(settings.BASE_DIR) / ".run" / "demo" / "git" / "portal.git"
        if not repo.exists():
            self._git_repository(repo)
        pipeline = Pipeline.objects.filter(project=project, name="portal").first() or Pipeline(
            project=project, namespace=project.namespaces[0], name="portal", kind=Pipeline.Kind.REPOSITORY
        )
        pipeline.description = "Customer portal: built from its Dockerfile in the cluster on each push to main."
        pipeline.git_url, pipeline.git_branch = f"file://{repo}", "main"
        pipeline.registry, pipeline.repository = registry, "erp/portal"
        pipeline.deploy_mode, pipeline.webhook_owner, pipeline.schedule = Pipeline.DeployMode.NONE, user, "0 2 * * 1-5"
        return services.save_pipeline(actor=user, pipeline=pipeline)

    def _git_repository(self, bare: Path) -> None:
        import subprocess

        env = {
            "GIT_AUTHOR_NAME": "Demo",
            "GIT_AUTHOR_EMAIL": "demo@bank.local",
            "GIT_COMMITTER_NAME": "Demo",
            "GIT_COMMITTER_EMAIL": "demo@bank.local",
            "HOME": str(bare.parent),
            "PATH": "/usr/bin:/bin",
        }
        bare.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as work:
            for command in (
                ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare)],
                ["git", "clone", "--quiet", str(bare), work],
            ):
                subprocess.run(command, env=env, check=True, capture_output=True)
            (Path(work) / "Dockerfile").write_text(
                "FROM harbor.bank.local/base/nginx:1.26\nCOPY site/ /usr/share/nginx/html/\nEXPOSE 8080\n"
            )
            (Path(work) / "site").mkdir()
            (Path(work) / "site" / "index.html").write_text("<h1>Customer portal</h1>\n")
            for command in (
                ["git", "add", "."],
                ["git", "commit", "--quiet", "-m", "Customer portal, first page"],
                ["git", "push", "--quiet", "origin", "main"],
            ):
                subprocess.run(command, env=env, cwd=work, check=True, capture_output=True)

    def _runs(self, user, pipeline, wait: int) -> None:
        if pipeline.runs.filter(status=Run.Status.SUCCEEDED).exists():
            return
        with tempfile.TemporaryDirectory() as folder:
            jar = samples().build_sample_jar(Path(folder) / "orders-1.4.2.jar")
            with jar.open("rb") as f:
                upload = services.add_upload(
                    actor=user, pipeline=pipeline, filename=jar.name, chunks=iter(lambda: f.read(1 << 20), b"")
                )
        first = services.start_run(actor=user, pipeline=pipeline, upload=upload)
        if not self._wait(first, wait):
            self.stdout.write("The first orders run did not finish in time; is the demo worker running?")
            return
        if not ScanException.objects.filter(project=pipeline.project, vuln_id="CVE-2021-44228").exists():
            services.grant_exception(
                actor=user,
                project=pipeline.project,
                vuln_id="CVE-2021-44228",
                package="org.apache.logging.log4j:log4j-core",
                reason="CHG-2026-1204: the vendor's JNDI lookup hotfix is applied; upgrade in the next release",
                days=30,
            )
        second = services.rerun(actor=user, run=Run.objects.get(pk=first.pk))
        self._wait(second, wait)

    @staticmethod
    def _wait(run: Run, seconds: int) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.is_finished:
                return True
            time.sleep(1)
        return False
