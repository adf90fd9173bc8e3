"""What the CI/CD tests share: a project team on the sandbox, the real registry registered for the cluster with an
approved base image pushed offline, an imported offline vulnerability database, and pipelines built on them."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from apps.accounts.models import Project
from apps.cicd import services, storage
from apps.cicd.models import Pipeline, Registry, VulnDatabase
from tests.factories import UserFactory
from tests.helpers import bind, create_namespace, delete_namespace, unique
from tests.plugins.registry import cicd_samples


@pytest.fixture
def samples():
    return cicd_samples()


@pytest.fixture
def team(sandbox, registered_cluster, admin_user):
    """A project namespace with a developer (cicd.run, cicd.edit, cicd.deploy, releases.deploy) and its RBAC."""
    namespace = unique("ci")
    create_namespace(sandbox, namespace)
    developer = UserFactory()
    bind(admin_user, registered_cluster, developer, "developer", [namespace])
    project = Project.objects.get(namespaces__contains=[namespace])
    developer = type(developer).objects.get(pk=developer.pk)  # grants are cached per user object: read them anew
    yield {
        "cluster": registered_cluster,
        "namespace": namespace,
        "user": developer,
        "project": project,
        "admin": admin_user,
    }
    delete_namespace(sandbox, namespace)


@pytest.fixture
def registry(team, oci_registry):
    return Registry.objects.create(name=unique("reg"), host=oci_registry.host, insecure=True, cluster=team["cluster"])


@pytest.fixture
def base(team, registry, oci_registry, samples, tmp_path):
    """The sample base image pushed to the registry and approved for the project (digest pinned)."""
    ref = oci_registry.ref(f"base/{unique('jre')}", "1.0")
    samples.push_base_image(str(oci_registry.crane_path), ref, folder=tmp_path / "base")
    return services.approve_base(
        actor=team["user"], project=team["project"], name="Debian JRE", reference=ref, registry=registry
    )


@pytest.fixture
def vulndb(samples, db):
    """The sample OSV database (a planted critical Maven advisory, a high Debian one) as the newest import."""
    folder = uuid.uuid4().hex
    samples.build_osv_db(storage.root() / "vulndb" / folder)
    return VulnDatabase.objects.create(
        data_date=timezone.now(),
        filename="sample.zip",
        sha256="0" * 64,
        size=1,
        folder=folder,
        ecosystems={"Maven": 1, "Debian": 1},
    )


@pytest.fixture
def jar_pipeline(team, registry, base):
    pipeline = Pipeline(
        project=team["project"],
        namespace=team["namespace"],
        name=unique("orders"),
        kind=Pipeline.Kind.JAR,
        base_image=base,
        registry=registry,
        repository=f"team/{unique('orders')}",
        port=8080,
        deploy_mode=Pipeline.DeployMode.DIRECT,
    )
    return services.save_pipeline(actor=team["user"], pipeline=pipeline)


def git(*args, cwd=None) -> str:
    import subprocess

    env = {
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@bank.local",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@bank.local",
        "HOME": "/tmp",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def bare_repository(tmp_path):
    """A local bare git repository whose main branch holds a Dockerfile; yields (url, head commit, work tree)."""
    bare, work = tmp_path / "app.git", tmp_path / "work"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git("clone", "--quiet", str(bare), str(work))
    (work / "Dockerfile").write_text("FROM registry.bank.local/base/jre:17\nCOPY app.jar /app/app.jar\n")
    (work / "app.jar").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "First version of the app", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work).strip()
    return f"file://{bare}", head, work


@pytest.fixture
def repo_pipeline(team, registry, bare_repository):
    url, _head, _work = bare_repository
    pipeline = Pipeline(
        project=team["project"],
        namespace=team["namespace"],
        name=unique("web"),
        kind=Pipeline.Kind.REPOSITORY,
        git_url=url,
        git_branch="main",
        registry=registry,
        repository=f"team/{unique('web')}",
        deploy_mode=Pipeline.DeployMode.NONE,
        webhook_owner=team["user"],
    )
    return services.save_pipeline(actor=team["user"], pipeline=pipeline)
