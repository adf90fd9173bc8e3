"""Upgrading from the previous release (docs/upgrade.md): a database made by the previous tagged schema is upgraded
by this checkout, and the previous code keeps working on it during a rolling upgrade.

The previous release is the first line of deploy/upgrade/RELEASES (its commit on main; CI's clone may lack the tag).
Its code is extracted with ``git archive`` and run with this .venv when its requirements are the same, else with a
virtualenv built once from PyPI under ~/.cache/kubemate/venvs. On a fresh database of the project-local PostgreSQL:

1. the previous code migrates it and writes rows (users, a cluster with encrypted credentials, a project, a binding,
   a release and its revision, a job, an inspection template, a knowledge base, audit events);
2. this checkout migrates it (every migration applied), reads every row back, decrypts the credentials and
   verifies the audit chain;
3. both versions serve it at once, as during a rolling upgrade: each one's gunicorn signs in over HTTP and shows
   the dashboard and the clusters list, a session made by one is honoured by the other, the previous code's ORM
   selects a row of each of its models, rewrites it (rolled back) and writes new rows that this checkout reads,
   and both versions' ``audit_verify`` pass on the chain both wrote.

``test_migrations_since_the_previous_release_are_expand_only`` reads the migrations added since the release
(Django's MigrationLoader) and refuses any operation the previous code would not survive unless
deploy/upgrade/contract.txt lists it with the release whose code is safe with it. The seconds are printed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from hashlib import sha256
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.postgres.operations import CreateExtension
from django.db import connection, migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.models import IndexOperation, ModelOperation
from django.db.migrations.state import ProjectState
from django.db.models.fields import NOT_PROVIDED

from tests.deploy.services import scratch_database
from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[2]
UPGRADE = REPO / "deploy" / "upgrade"
RELEASES = UPGRADE / "RELEASES"
CONTRACT = UPGRADE / "contract.txt"
PASSWORD = "Upgrade-passw0rd-" + secrets.token_hex(4)
TIMINGS: dict[str, float] = {}


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def previous_release() -> tuple[str, str]:
    """The newest released version and its commit (the first line of deploy/upgrade/RELEASES)."""
    for line in RELEASES.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            version, commit = line.split()[:2]
            return version, commit
    raise AssertionError(f"{RELEASES} names no release")


def git(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, check=False, **kwargs)


def require_commit(version: str, commit: str) -> None:
    if git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        pytest.fail(
            f"The commit of release {version} ({commit}, deploy/upgrade/RELEASES) is not in this clone: "
            "a shallow clone? Fetch the history (git fetch --unshallow) so the previous release can be extracted."
        )


# --- the expand-only check -----------------------------------------------------------------------------------
#
# During a rolling upgrade the previous release's code runs on the migrated schema. It survives only "expand"
# steps: new tables, new nullable (or database-defaulted) columns, new indexes, relaxed columns. Anything else (a
# "contract" step) may ship only once the previous release no longer depends on what it changes: it is then
# listed in deploy/upgrade/contract.txt with that release.

ALWAYS_SAFE = (
    migrations.CreateModel,
    migrations.AddIndex,
    migrations.RemoveIndex,
    migrations.RenameIndex,
    migrations.RemoveConstraint,
    migrations.AlterModelOptions,
    migrations.AlterModelManagers,
    migrations.AlterModelTableComment,
    migrations.AlterIndexTogether,
    CreateExtension,
)
# Integer columns widen in this order; a varchar widens to a longer varchar or to text.
INTEGER_WIDTHS = {"smallint": 0, "integer": 1, "bigint": 2}


def model_of(operation) -> str | None:
    """The (lower-case) name of the model an operation changes; None for RunSQL, RunPython and the like."""
    if isinstance(operation, migrations.operations.fields.FieldOperation | IndexOperation):
        return operation.model_name.lower()
    if isinstance(operation, migrations.RenameModel):
        return operation.old_name.lower()
    if isinstance(operation, ModelOperation):
        return operation.name.lower()
    return None


def target_of(operation) -> str:
    """How contract.txt names what an operation changes: ``model.field``, ``model`` or ``-``."""
    if isinstance(operation, migrations.RenameField):
        return f"{operation.model_name.lower()}.{operation.old_name}"
    if isinstance(operation, migrations.operations.fields.FieldOperation):
        return f"{operation.model_name.lower()}.{operation.name}"
    if isinstance(operation, migrations.RenameModel):
        return operation.old_name.lower()
    return model_of(operation) or "-"


def widens(old_type: str | None, new_type: str | None) -> bool:
    if old_type == new_type:
        return True
    if old_type in INTEGER_WIDTHS and new_type in INTEGER_WIDTHS:
        return INTEGER_WIDTHS[new_type] >= INTEGER_WIDTHS[old_type]
    old_varchar = re.fullmatch(r"varchar\((\d+)\)", old_type or "")
    if old_varchar and new_type == "text":
        return True
    new_varchar = re.fullmatch(r"varchar\((\d+)\)", new_type or "")
    return bool(old_varchar and new_varchar and int(new_varchar[1]) >= int(old_varchar[1]))


def rendered_field(state: ProjectState, app_label: str, model: str, name: str):
    return state.apps.get_model(app_label, model)._meta.get_field(name)


def altered_field_problem(operation: migrations.AlterField, app_label: str, state: ProjectState) -> str | None:
    """None when the new column accepts everything the previous code writes and reads back what it expects."""
    after = state.clone()
    operation.state_forwards(app_label, after)
    old = rendered_field(state, app_label, operation.model_name, operation.name)
    new = rendered_field(after, app_label, operation.model_name, operation.name)
    if old.many_to_many or new.many_to_many:
        return "changes a many-to-many field"
    old_type, new_type = old.db_parameters(connection)["type"], new.db_parameters(connection)["type"]
    if not widens(old_type, new_type):
        return f"changes the column from {old_type} to {new_type}, which is not a widening"
    if old.null and not new.null:
        return "makes the column NOT NULL: the previous code may write NULL"
    if new.unique and not old.unique and not new.primary_key:
        return "adds a unique constraint the previous code does not respect"
    if old.primary_key != new.primary_key:
        return "changes the primary key"
    if (old.related_model and old.related_model._meta.label_lower) != (
        new.related_model and new.related_model._meta.label_lower
    ):
        return "points the foreign key at another table"
    if new.db_check(connection) and new.db_check(connection) != old.db_check(connection):
        return f"adds the check {new.db_check(connection)!r} the previous code does not respect"
    if old.db_default is not NOT_PROVIDED and new.db_default is NOT_PROVIDED and not new.null:
        return "drops the database default the previous code's INSERTs rely on"
    return None


def operation_problem(operation, app_label: str, state: ProjectState, previous_models: set) -> str | None:
    """Why the previous release's code would not survive ``operation`` on the table it already has; None if it would."""
    if isinstance(operation, migrations.RunSQL):
        return "runs SQL the check cannot read"
    if isinstance(operation, migrations.RunPython):
        return None if operation.reversible else "is an irreversible data migration: a rollback cannot undo it"
    model = model_of(operation)
    if model and (app_label, model) not in previous_models:
        return None  # a table the previous release does not have: its code never touches it
    if isinstance(operation, ALWAYS_SAFE):
        return None
    if isinstance(operation, migrations.AddField):
        field = operation.field
        if field.many_to_many or field.null or field.db_default is not NOT_PROVIDED or field.generated:
            return None
        return (
            "adds a NOT NULL column without db_default: the previous code's INSERTs omit it "
            "(a Python default is not enough)"
        )
    if isinstance(operation, migrations.AlterField):
        return altered_field_problem(operation, app_label, state)
    if isinstance(operation, migrations.AddConstraint):
        kind = type(operation.constraint).__name__
        return f"adds a {kind} to a table the previous code writes without knowing it"
    if isinstance(operation, migrations.AlterUniqueTogether):
        before = state.models[app_label, model].options.get("unique_together", set())
        added = {tuple(t) for t in operation.unique_together or ()} - {tuple(t) for t in before}
        return f"adds unique_together {sorted(added)}" if added else None
    if isinstance(operation, migrations.RemoveField):
        return "drops a column the previous code selects and inserts"
    if isinstance(operation, migrations.RenameField):
        return "renames a column the previous code selects and inserts"
    if isinstance(operation, migrations.DeleteModel):
        return "drops a table the previous code uses"
    if isinstance(operation, migrations.RenameModel | migrations.AlterModelTable):
        return "renames a table the previous code uses"
    return f"is a {type(operation).__name__}, which the check does not know to be safe"


def read_contract(text: str) -> tuple[dict[tuple[str, str, str], str], list[str]]:
    """deploy/upgrade/contract.txt: ``app.migration Operation target release why...`` per line; the entries and
    the lines that do not parse."""
    entries, errors = {}, []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(maxsplit=4)
        if len(parts) < 5 or not re.fullmatch(r"\d+(\.\d+)*", parts[3]):
            errors.append(f"contract.txt line {number} is not 'app.migration Operation target release why': {line!r}")
            continue
        entries[parts[0], parts[1], parts[2]] = parts[3]
    return entries, errors


def expand_problems(
    migration, state: ProjectState, previous_models: set, contract: dict, previous_version: str
) -> list[str]:
    """Every operation of ``migration`` (on the state before it) that the previous release's code does not survive
    and that contract.txt does not allow."""
    problems, state = [], state.clone()
    label = f"{migration.app_label}.{migration.name}"
    for number, operation in enumerate(migration.operations, 1):
        # SeparateDatabaseAndState: only its database operations touch what the previous code uses.
        separate = isinstance(operation, migrations.SeparateDatabaseAndState)
        for step in operation.database_operations if separate else [operation]:
            why = operation_problem(step, migration.app_label, state, previous_models)
            if why is None:
                continue
            name, target = type(step).__name__, target_of(step)
            safe_from = contract.get((label, name, target))
            where = f"{label}, operation {number} ({name} {target})"
            if safe_from is None:
                problems.append(
                    f"{where} {why}. The previous release's code runs on this schema during a rolling upgrade: make "
                    "it an expand step, or list it in deploy/upgrade/contract.txt once a released version no longer "
                    "depends on it."
                )
            elif parse_version(safe_from) > parse_version(previous_version):
                problems.append(
                    f"{where} {why}; contract.txt allows it from release {safe_from}, but the previous release is "
                    f"{previous_version}, whose code still depends on it: ship this step in the release after "
                    f"{safe_from}."
                )
        operation.state_forwards(migration.app_label, state)
    return problems


def project_app_labels() -> dict[str, str]:
    """The project's apps: the folder of their migrations (relative to the repository) and their label."""
    from django.apps import apps

    found = {}
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.is_relative_to(REPO) and "site-packages" not in path.parts:  # not the .venv's
            found[str(path.relative_to(REPO) / "migrations")] = config.label
    return found


def released_migrations(commit: str) -> set[tuple[str, str]]:
    """(app label, migration name) of every project migration in the release's tree."""
    folders = project_app_labels()
    listing = git("ls-tree", "-r", "--name-only", commit, "--", *folders, text=True)
    assert listing.returncode == 0, listing.stderr
    released = set()
    for path in map(Path, listing.stdout.split()):
        if path.suffix == ".py" and not path.stem.startswith(("_", "~")) and str(path.parent) in folders:
            released.add((folders[str(path.parent)], path.stem))
    return released


def test_migrations_since_the_previous_release_are_expand_only():
    version, commit = previous_release()
    require_commit(version, commit)
    released = released_migrations(commit)
    loader = MigrationLoader(None, ignore_no_migrations=True)
    labels = set(project_app_labels().values())
    added = sorted(key for key in loader.disk_migrations if key[0] in labels and key not in released)
    missing = sorted(released - set(loader.disk_migrations))
    changed = git("diff", "--name-only", "--diff-filter=MR", commit, "--", *project_app_labels(), text=True)
    contract, problems = read_contract(CONTRACT.read_text() if CONTRACT.exists() else "")

    previous_state = loader.project_state(nodes=sorted(released), at_end=True)
    previous_models = set(previous_state.models)
    print(f"\nmigrations since {version}: {', '.join(f'{a}.{n}' for a, n in added) or 'none'}")
    for key in added:
        migration = loader.disk_migrations[key]
        for operation in migration.operations:
            print(f"  {key[0]}.{key[1]}: {operation.describe()}")
        problems += expand_problems(
            migration, loader.project_state(key, at_end=False), previous_models, contract, version
        )
    problems += [f"release {version}'s migration {a}.{n} is gone from this checkout" for a, n in missing]
    problems += [
        f"{path} was changed since release {version}: installations that applied it never apply it again"
        for path in changed.stdout.split()
        if path.endswith(".py") and not Path(path).stem.startswith(("_", "~"))
    ]
    on_disk = {f"{a}.{n}" for a, n in loader.disk_migrations}
    problems += [
        f"contract.txt names {label}, which is no migration here" for label, *_ in contract if label not in on_disk
    ]
    assert not problems, "\n".join(problems)


def fake_migration(app_label: str, *operations):
    migration = migrations.Migration("0999_fake", app_label)
    migration.operations = list(operations)
    return migration


def test_the_expand_only_check_reports_what_the_previous_code_would_not_survive():
    """The check is fed a fake migration on the clusters app as released: unsafe operations are reported by name,
    safe ones are not, and contract.txt lets a step through only once the previous release is safe with it."""
    version, commit = previous_release()
    require_commit(version, commit)
    released = released_migrations(commit)
    loader = MigrationLoader(None, ignore_no_migrations=True)
    state = loader.project_state(nodes=sorted(released), at_end=True)
    previous_models = set(state.models)
    assert ("clusters", "cluster") in previous_models

    unsafe = fake_migration(
        "clusters",
        migrations.RemoveField("cluster", "region"),
        migrations.AddField("cluster", "tier", models.CharField(max_length=20, default="gold")),
        migrations.AlterField("cluster", "environment", models.CharField(max_length=8, blank=True)),
        migrations.AlterField("cluster", "kubernetes_version", models.IntegerField(default=0)),
        migrations.RenameField("cluster", "labels", "tags"),
        migrations.AddConstraint(
            "cluster", models.UniqueConstraint(fields=["api_server"], name="clusters_cluster_one_per_server")
        ),
        migrations.RunSQL("UPDATE clusters_cluster SET region = ''"),
        migrations.RunPython(lambda apps, schema_editor: None),
        migrations.DeleteModel("resource"),
        migrations.SeparateDatabaseAndState(database_operations=[migrations.RemoveField("cluster", "jaeger_url")]),
    )
    problems = expand_problems(unsafe, state, previous_models, {}, version)
    text = "\n".join(problems)
    assert len(problems) == 10, text
    for expected in (
        "clusters.0999_fake, operation 1 (RemoveField cluster.region) drops a column",
        "operation 2 (AddField cluster.tier) adds a NOT NULL column without db_default",
        "operation 3 (AlterField cluster.environment) changes the column from varchar(32) to varchar(8)",
        "operation 4 (AlterField cluster.kubernetes_version) changes the column from varchar(32) to integer",
        "operation 5 (RenameField cluster.labels) renames a column",
        "operation 6 (AddConstraint cluster) adds a UniqueConstraint",
        "operation 7 (RunSQL -) runs SQL",
        "operation 8 (RunPython -) is an irreversible data migration",
        "operation 9 (DeleteModel resource) drops a table",
        "operation 10 (RemoveField cluster.jaeger_url) drops a column",
    ):
        assert expected in text, f"{expected!r} not reported:\n{text}"

    safe = fake_migration(
        "clusters",
        migrations.AddField("cluster", "tier", models.CharField(max_length=20, null=True)),
        migrations.AddField("cluster", "weight", models.IntegerField(db_default=1)),
        migrations.AddField("cluster", "paused", models.BooleanField(db_default=False, default=False)),
        migrations.AlterField("cluster", "environment", models.CharField(max_length=64, blank=True)),
        migrations.AlterField("cluster", "region", models.TextField(blank=True)),
        migrations.AlterField("cluster", "kubernetes_version", models.CharField(max_length=32, null=True, blank=True)),
        migrations.AddIndex("cluster", models.Index(fields=["environment"], name="clusters_cluster_env")),
        migrations.CreateModel(
            "Shelf", [("id", models.BigAutoField(primary_key=True)), ("label", models.CharField(max_length=9))]
        ),
        migrations.RemoveField("shelf", "label"),  # a table the previous release does not have
        migrations.RunPython(lambda apps, schema_editor: None, migrations.RunPython.noop),
        # Release N removes a field from the model only; the column goes in N + 1, a contract step.
        migrations.AlterField("cluster", "velero_namespace", models.CharField(max_length=63, null=True)),
        migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField("cluster", "velero_namespace")]),
    )
    assert expand_problems(safe, state, previous_models, {}, version) == []

    narrowing = fake_migration("clusters", migrations.RemoveField("cluster", "region"))
    allowed = {("clusters.0999_fake", "RemoveField", "cluster.region"): version}
    assert expand_problems(narrowing, state, previous_models, allowed, version) == []
    later = ".".join(str(part + 1) if i == 1 else str(part) for i, part in enumerate(parse_version(version)))
    too_soon = expand_problems(
        narrowing, state, previous_models, {("clusters.0999_fake", "RemoveField", "cluster.region"): later}, version
    )
    assert len(too_soon) == 1 and f"allows it from release {later}" in too_soon[0], too_soon

    entries, errors = read_contract(
        "# comment\nclusters.0999_fake RemoveField cluster.region 0.3.0 nothing reads it\nbad line\n"
    )
    assert entries == {("clusters.0999_fake", "RemoveField", "cluster.region"): "0.3.0"}
    assert errors == ["contract.txt line 3 is not 'app.migration Operation target release why': 'bad line'"]


# --- the upgrade of a real database --------------------------------------------------------------------------


def requirement_files(tree: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(tree.glob("requirements*.txt"))}


def python_for(tree: Path) -> Path:
    """This .venv's Python when the tree's requirements are this checkout's, else a virtualenv built from them
    (cached under ~/.cache/kubemate/venvs by their digest)."""
    wanted = requirement_files(tree)
    if wanted == requirement_files(REPO):
        return Path(sys.executable)
    digest = sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:16]
    venv = Path.home() / ".cache" / "kubemate" / "venvs" / digest
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "-r", tree / "requirements.txt"], check=True)
        if (tree / "requirements-nodeps.txt").exists():
            subprocess.run(
                [python, "-m", "pip", "install", "-q", "--no-deps", "-r", tree / "requirements-nodeps.txt"], check=True
            )
        (venv / ".installed").write_text(json.dumps(wanted))
        TIMINGS["previous virtualenv built"] = time.monotonic() - started
    return python


class Code:
    """One version of Kubemate (a source tree and its Python) pointed at one database."""

    def __init__(self, name: str, tree: Path, python: Path, database_url: str):
        self.name, self.tree, self.python, self.database_url = name, tree, python, database_url

    def env(self, **extra: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTHON"))}
        return {
            **inherited,
            "DJANGO_SETTINGS_MODULE": "kubemate.settings.test",
            "DATABASE_URL": self.database_url,
            "KUBEMATE_TEST_REDIS_URL": settings.CELERY_BROKER_URL,
            "PYTHONPATH": str(self.tree),
            **extra,
        }

    def manage(self, *args: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(self.python), "manage.py", *args],
            cwd=self.tree,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and result.returncode != 0:
            what = "shell -c <script>" if args[:2] == ("shell", "-c") else " ".join(args)
            pytest.fail(
                f"{self.name}: manage.py {what} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}",
                pytrace=False,
            )
        return result

    def script(self, code: str, **extra: str):
        """Run ``code`` in ``manage.py shell -c``; it prints ``RESULT <json>``, which is returned."""
        output = self.manage("shell", "-c", code, **extra).stdout
        lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
        assert lines, f"{self.name}: the script printed no result:\n{output[-3000:]}"
        return json.loads(lines[-1][len("RESULT ") :])

    def web(self, log: Path) -> Web:
        return Web(self, log)


class Web:
    """The code's gunicorn (one worker, two threads) on its database; ``url`` and the seconds it took to answer."""

    def __init__(self, code: Code, log: Path):
        self.code, self.log = code, log
        self.url = f"http://127.0.0.1:{free_port()}"

    def __enter__(self) -> Web:
        started = time.monotonic()
        command = [
            str(self.code.python.with_name("gunicorn")),
            "kubemate.wsgi:application",
            f"--bind={self.url.removeprefix('http://')}",
            "--workers=1",
            "--threads=2",
            "--timeout=120",
        ]
        with self.log.open("w") as log:
            self.master = subprocess.Popen(
                command, cwd=self.code.tree, env=self.code.env(), stdout=subprocess.DEVNULL, stderr=log
            )
        deadline = started + 90
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or the master listens before its worker answers
            assert self.master.poll() is None, f"{self.code.name} gunicorn exited:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{self.code.name} gunicorn did not answer within 90 s"
            time.sleep(0.2)
        self.seconds = time.monotonic() - started
        return self

    def __exit__(self, *exc) -> None:
        self.master.terminate()
        try:
            self.master.wait(30)
        except subprocess.TimeoutExpired:
            self.master.kill()
            self.master.wait(10)

    def sign_in(self, username: str) -> requests.Session:
        """Sign in through the login form, as a browser does (CSRF token, password, redirect)."""
        browser = requests.Session()
        form = browser.get(f"{self.url}/login/", timeout=30)
        assert form.status_code == 200, (self.code.name, form.status_code)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token, f"{self.code.name}: no CSRF token in the login form"
        answer = browser.post(
            f"{self.url}/login/",
            data={"csrfmiddlewaretoken": token[1], "username": username, "password": PASSWORD, "next": "/"},
            headers={"Referer": f"{self.url}/login/"},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 302 and answer.headers["Location"] == "/", (
            f"{self.code.name}: signing in as {username} answered {answer.status_code} "
            f"{answer.headers.get('Location')}\n{answer.text[-2000:]}"
        )
        return browser

    def page(self, browser: requests.Session, path: str, *texts: str) -> str:
        answer = browser.get(f"{self.url}{path}", allow_redirects=False, timeout=60)
        assert answer.status_code == 200, (
            f"{self.code.name} {path}: {answer.status_code} {answer.headers.get('Location', '')}\n"
            f"{answer.text[-2000:]}\n{self.log.read_text()[-3000:]}"
        )
        for text in texts:
            assert text in answer.text, f"{self.code.name} {path} does not show {text!r}"
        return answer.text


# Written with the PREVIOUS release's code (and again with it after the upgrade, during the rolling upgrade).
SEED = r"""
import json, os
from django.contrib.auth import get_user_model
from apps.accounts.models import Binding, Project, Role
from apps.ai.models import KnowledgeBase
from apps.clusters.models import Cluster
from apps.core import audit
from apps.core.models import AuditEvent, AuditHead, Job
from apps.inspection.models import Template
from apps.releases.models import Release, Revision

tag, password = os.environ["UPGRADE_TAG"], os.environ["UPGRADE_PASSWORD"]
User = get_user_model()
first_seq = AuditHead.objects.get(pk=1).seq + 1
admin = User.objects.create_superuser(f"admin-{tag}", f"admin-{tag}@bank.example", password)
operator = User.objects.create_user(f"operator-{tag}", f"operator-{tag}@bank.example", password)
cluster = Cluster(
    name=f"prod-{tag}", api_server="https://10.20.0.1:6443", environment="production", region="shanghai",
    labels={"tier": "gold"}, prometheus_url="http://prometheus.bank.example:9090",
)
cluster.set_kubeconfig(os.environ["UPGRADE_KUBECONFIG"])
cluster.set_endpoint_auth("prometheus", token=os.environ["UPGRADE_TOKEN"])
cluster.save()
audit.record(actor=admin, action="clusters.cluster.create", cluster=cluster.name, kind="Cluster", name=cluster.name)
project = Project.objects.create(
    cluster=cluster, slug=f"payments-{tag}", name="Payments", namespaces=[f"payments-{tag}", f"payments-{tag}-batch"]
)
binding = Binding.objects.create(
    role=Role.objects.get(slug="developer"), user=operator, scope=Binding.Scope.PROJECT, project=project
)
spec = {"image": "registry.bank.example/payments/api:1.4.2", "replicas": 3, "env": {"MODE": "upgrade-" + tag}}
release = Release.objects.create(project=project, namespace=f"payments-{tag}", name=f"api-{tag}", spec=spec,
                                 created_by=admin)
job = Job.objects.create(kind="releases.deploy", title=f"Deploy api-{tag}", actor=admin, status="succeeded",
                         progress=100, target=f"cluster/{cluster.name}/release/api-{tag}")
revision = Revision.objects.create(release=release, number=1, spec=spec, spec_hash="a" * 64, actor=admin,
                                   result="succeeded", job=job)
audit.record(actor=admin, action="releases.deploy", cluster=cluster.name, namespace=release.namespace,
             kind="Release", name=release.name, detail={"revision": 1}, reason="upgrade test " + tag)
builtin = Template.objects.filter(builtin=True).order_by("slug").first()
template = Template.objects.create(slug=f"nightly-{tag}", name=f"Nightly {tag}", checks=builtin.checks[:3],
                                   thresholds={"pvc.full_percent": 85}, created_by=admin)
template.clusters.add(cluster)
kb = KnowledgeBase.objects.create(name=f"Runbooks {tag}", description="How we run payments", project=project,
                                  created_by=admin)
event = audit.record(actor=operator, action="ai.knowledge_base.create", kind="KnowledgeBase", name=kb.name)
print("RESULT " + json.dumps({
    "admin": admin.pk, "operator": operator.pk, "cluster": cluster.pk, "project": project.pk,
    "binding": binding.pk, "release": release.pk, "revision": revision.pk, "job": str(job.pk),
    "template": template.pk, "builtin_checks": builtin.checks[:3], "kb": kb.pk,
    "events": [list(e) for e in AuditEvent.objects.filter(seq__gte=first_seq).order_by("seq").values_list(
        "seq", "action", "actor_name", "hash")],
}))
"""

# Read with THIS checkout's code: what the seeded rows hold now.
READ_BACK = r"""
import json, os
from django.apps import apps
from django.contrib.auth import get_user_model
from apps.accounts.models import Binding, Project
from apps.ai.models import KnowledgeBase
from apps.clusters.models import Cluster
from apps.core.audit import verify
from apps.core.models import AuditEvent, Job
from apps.inspection.models import Template
from apps.releases.models import Release, Revision

User = get_user_model()
password = os.environ["UPGRADE_PASSWORD"]
seen = {}
for tag, ids in json.loads(os.environ["UPGRADE_SEEDS"]).items():
    admin, operator = User.objects.get(pk=ids["admin"]), User.objects.get(pk=ids["operator"])
    cluster = Cluster.objects.get(pk=ids["cluster"])
    project, binding = Project.objects.get(pk=ids["project"]), Binding.objects.get(pk=ids["binding"])
    release, revision = Release.objects.get(pk=ids["release"]), Revision.objects.get(pk=ids["revision"])
    template, kb = Template.objects.get(pk=ids["template"]), KnowledgeBase.objects.get(pk=ids["kb"])
    job = Job.objects.get(pk=ids["job"])
    seen[tag] = {
        "admin": [admin.username, admin.is_superuser, admin.check_password(password)],
        "operator": [operator.username, operator.is_superuser, operator.check_password(password)],
        "cluster": [cluster.name, cluster.environment, cluster.labels, cluster.kubeconfig(),
                    cluster.endpoint_auth("prometheus")],
        "project": [project.slug, project.cluster_id, project.namespaces],
        "binding": [binding.role.slug, binding.user_id, binding.project_id, binding.scope],
        "release": [release.name, release.project_id, release.spec, release.created_by_id],
        "revision": [revision.release_id, revision.number, revision.result, str(revision.job_id)],
        "job": [job.title, job.status, job.progress, job.actor_id],
        "template": [template.slug, template.checks, [c.pk for c in template.clusters.all()], template.thresholds],
        "kb": [kb.name, kb.project_id, kb.created_by_id],
        "events": [list(e) for e in AuditEvent.objects.filter(seq__in=[e[0] for e in ids["events"]]).order_by(
            "seq").values_list("seq", "action", "actor_name", "hash")],
    }
counts = {model._meta.label: model.objects.count() for model in apps.get_models()}
print("RESULT " + json.dumps({"seen": seen, "counts": counts, "problems": [p.sentence for p in verify()]}))
"""

# Run with the PREVIOUS release's code on the upgraded schema: every model of it selects a row (all the columns it
# knows) and rewrites it (an UPDATE of every column, rolled back); the tables changed since the release also take
# a copy of a row (an INSERT, rolled back).
OLD_ORM = r"""
import json, os
from django.apps import apps
from django.db import transaction

changed = set(json.loads(os.environ["UPGRADE_CHANGED"]))
append_only = {"core.AuditEvent"}


class Undo(Exception):
    pass


report = {"models": 0, "selected": [], "updated": [], "inserted": [], "failures": []}
for model in apps.get_models():
    label = model._meta.label
    report["models"] += 1
    try:
        model._default_manager.count()
        row = model._default_manager.order_by("pk").first()
    except Exception as error:
        report["failures"].append(f"{label}: select: {error}")
        continue
    if row is None:
        if label.lower() in changed:
            report["failures"].append(f"{label} changed since the release but the seed wrote no row of it")
        continue
    report["selected"].append(label)
    if label in append_only:
        continue
    values = {f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields if not f.primary_key}
    try:
        with transaction.atomic():
            model._default_manager.filter(pk=row.pk).update(**values)
            report["updated"].append(label)
            raise Undo
    except Undo:
        pass
    except Exception as error:
        report["failures"].append(f"{label}: UPDATE of every column: {type(error).__name__}: {error}")
    if label.lower() not in changed:
        continue
    # A copy of the row, its unique values made new (strings get a suffix, numbers grow): an INSERT of the old code.
    unique = {name for names in model._meta.unique_together for name in names}
    unique |= {name for c in model._meta.total_unique_constraints for name in c.fields}
    copy = model._default_manager.get(pk=row.pk)
    copy.pk = None
    for field in model._meta.concrete_fields:
        value = getattr(copy, field.attname)
        if field.primary_key or field.is_relation or not (field.unique or field.name in unique):
            continue
        if isinstance(value, str):
            setattr(copy, field.attname, value[: max(len(value) - 4, 1)] + "-cpy")
        elif isinstance(value, int) and not isinstance(value, bool):
            setattr(copy, field.attname, value + 100000)
    try:
        with transaction.atomic():
            copy.save(force_insert=True)
            report["inserted"].append(label)
            raise Undo
    except Undo:
        pass
    except Exception as error:
        report["failures"].append(f"{label}: INSERT of a copy: {type(error).__name__}: {error}")
print("RESULT " + json.dumps(report))
"""


# The models SEED writes rows of (or the previous release's migrations do): the previous code must select them all.
SEEDED = {
    "auth.User",
    "accounts.Role",
    "accounts.Project",
    "accounts.Binding",
    "clusters.Cluster",
    "releases.Release",
    "releases.Revision",
    "core.Job",
    "core.AuditEvent",
    "core.AuditHead",
    "inspection.Template",
    "ai.KnowledgeBase",
    "django_celery_beat.PeriodicTask",
}


def expected_reading(tag: str, ids: dict, secrets_of: dict) -> dict:
    """What this checkout must read back of a seed."""
    spec = {"image": "registry.bank.example/payments/api:1.4.2", "replicas": 3, "env": {"MODE": "upgrade-" + tag}}
    return {
        "admin": [f"admin-{tag}", True, True],
        "operator": [f"operator-{tag}", False, True],
        "cluster": [
            f"prod-{tag}",
            "production",
            {"tier": "gold"},
            secrets_of["UPGRADE_KUBECONFIG"],
            {"token": secrets_of["UPGRADE_TOKEN"]},
        ],
        "project": [f"payments-{tag}", ids["cluster"], [f"payments-{tag}", f"payments-{tag}-batch"]],
        "binding": ["developer", ids["operator"], ids["project"], "project"],
        "release": [f"api-{tag}", ids["project"], spec, ids["admin"]],
        "revision": [ids["release"], 1, "succeeded", ids["job"]],
        "job": [f"Deploy api-{tag}", "succeeded", 100, ids["admin"]],
        "template": [f"nightly-{tag}", ids["builtin_checks"], [ids["cluster"]], {"pvc.full_percent": 85}],
        "kb": [f"Runbooks {tag}", ids["project"], ids["admin"]],
        "events": ids["events"],  # as the previous code wrote them, hashes included
    }


def seed_secrets(tag: str) -> dict[str, str]:
    server = "https://10.20.0.1:6443"
    kubeconfig = (
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: prod-{tag}, cluster: {{server: '{server}'}}}}]\n"
        f"users: [{{name: kubemate, user: {{token: {secrets.token_urlsafe(24)}}}}}]\n"
        f"contexts: [{{name: prod-{tag}, context: {{cluster: prod-{tag}, user: kubemate}}}}]\n"
        f"current-context: prod-{tag}\n"
    )
    return {"UPGRADE_KUBECONFIG": kubeconfig, "UPGRADE_TOKEN": secrets.token_urlsafe(16)}


def changed_models(previous_models: set, added: list, loader: MigrationLoader) -> list[str]:
    """``app.model`` of the previous release's models that a migration since then touches."""
    touched = set()
    for key in added:
        for operation in loader.disk_migrations[key].operations:
            model = model_of(operation)
            if model and (key[0], model) in previous_models:
                touched.add(f"{key[0]}.{model}")
    return sorted(touched)


def timed(name: str, started: float) -> None:
    TIMINGS[name] = time.monotonic() - started
    print(f"{name}: {TIMINGS[name]:.1f} s")


@pytest.fixture(scope="module")
def upgrade(tmp_path_factory):
    """A database migrated and filled by the previous release, then migrated by this checkout."""
    version, commit = previous_release()
    require_commit(version, commit)
    here = tmp_path_factory.mktemp("upgrade")
    tree = here / f"kubemate-{version}"
    tree.mkdir()
    started = time.monotonic()
    archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    print()
    timed(f"extract {version}", started)
    old_python = python_for(tree)

    try:
        with scratch_database(f"kubemate_upgrade_{secrets.token_hex(4)}") as database:
            old = Code(f"kubemate {version}", tree, old_python, database)
            new = Code("this checkout", REPO, Path(sys.executable), database)
            started = time.monotonic()
            old.manage("migrate", "--noinput")
            timed(f"migrate a new database with {version}", started)

            started = time.monotonic()
            secrets_before = seed_secrets("before")
            ids = old.script(SEED, UPGRADE_TAG="before", UPGRADE_PASSWORD=PASSWORD, **secrets_before)
            timed(f"write rows with {version}", started)

            started = time.monotonic()
            migrated = new.manage("migrate", "--noinput")
            timed("upgrade: migrate with this checkout", started)
            print("  " + "\n  ".join(line for line in migrated.stdout.splitlines() if "Applying" in line))
            yield {
                "version": version,
                "commit": commit,
                "old": old,
                "new": new,
                "seeds": {"before": (ids, secrets_before)},
                "logs": here,
            }
    finally:
        print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items()))


def assert_read_back(new: Code, seeds: dict) -> dict:
    reading = new.script(
        READ_BACK,
        UPGRADE_PASSWORD=PASSWORD,
        UPGRADE_SEEDS=json.dumps({tag: ids for tag, (ids, _) in seeds.items()}),
    )
    for tag, (ids, secrets_of) in seeds.items():
        actions = {action for _seq, action, _actor, _hash in ids["events"]}
        assert {"clusters.cluster.create", "releases.deploy", "ai.knowledge_base.create"} <= actions, actions
        expected = expected_reading(tag, ids, secrets_of)
        for key, value in expected.items():
            assert reading["seen"][tag][key] == value, f"{tag} {key}: {reading['seen'][tag][key]!r} != {value!r}"
    assert reading["problems"] == [], reading["problems"]
    return reading


@pytest.mark.timeout(1800)
def test_this_checkout_migrates_and_reads_a_database_of_the_previous_release(upgrade):
    new = upgrade["new"]
    plan = new.manage("showmigrations", "--plan").stdout.splitlines()
    assert len(plan) > 50, plan
    unapplied = [line for line in plan if not line.startswith("[X]")]
    assert not unapplied, f"not applied after the upgrade: {unapplied}"
    assert any("core.0007_lease" in line for line in plan)
    assert new.manage("migrate", "--check").returncode == 0  # nothing left to apply

    reading = assert_read_back(new, upgrade["seeds"])
    counts, seeds = reading["counts"], len(upgrade["seeds"])  # "rolling" too when the other test ran first
    assert counts["clusters.Cluster"] == seeds and counts["auth.User"] == 2 * seeds, counts
    assert counts["core.Lease"] == 0 and counts["core.AuditEvent"] >= 4 * seeds, counts
    verified = new.manage("audit_verify").stdout
    assert f"The audit log is intact: {counts['core.AuditEvent']} events verified." in verified, verified


@pytest.mark.timeout(1800)
def test_the_previous_code_keeps_working_beside_this_checkout_during_a_rolling_upgrade(upgrade):
    old, new, version = upgrade["old"], upgrade["new"], upgrade["version"]
    ids = upgrade["seeds"]["before"][0]
    with old.web(upgrade["logs"] / "web-old.log") as old_web, new.web(upgrade["logs"] / "web-new.log") as new_web:
        TIMINGS[f"{version} web answers"] = old_web.seconds
        TIMINGS["this checkout's web answers"] = new_web.seconds
        print(f"{version} web answered in {old_web.seconds:.1f} s, this checkout's in {new_web.seconds:.1f} s")
        on_old = old_web.sign_in("admin-before")
        old_web.page(on_old, "/", "Dashboard")
        old_web.page(on_old, "/clusters/", "prod-before")
        on_new = new_web.sign_in("operator-before")
        new_web.page(on_new, "/", "Dashboard")
        on_new_admin = new_web.sign_in("admin-before")
        new_web.page(on_new_admin, "/clusters/", "prod-before")

        # A load balancer sends a person's next request to either version: each honours the other's session.
        cookie = settings.SESSION_COOKIE_NAME
        assert cookie in on_old.cookies and cookie in on_new_admin.cookies
        crossed = requests.Session()
        crossed.cookies.set(cookie, on_old.cookies[cookie])
        new_web.page(crossed, "/clusters/", "prod-before")
        crossed = requests.Session()
        crossed.cookies.set(cookie, on_new_admin.cookies[cookie])
        old_web.page(crossed, "/clusters/", "prod-before")

        # The previous code writes new rows in the main tables, and selects and rewrites a row of each of its models.
        started = time.monotonic()
        secrets_rolling = seed_secrets("rolling")
        rolling = old.script(SEED, UPGRADE_TAG="rolling", UPGRADE_PASSWORD=PASSWORD, **secrets_rolling)
        loader = MigrationLoader(None, ignore_no_migrations=True)
        released = released_migrations(upgrade["commit"])
        previous_models = set(loader.project_state(nodes=sorted(released), at_end=True).models)
        labels = set(project_app_labels().values())
        added = sorted(key for key in loader.disk_migrations if key[0] in labels and key not in released)
        changed = changed_models(previous_models, added, loader)
        print(f"tables of {version} changed since: {changed or 'none'}")
        report = old.script(OLD_ORM, UPGRADE_CHANGED=json.dumps(changed))
        timed(f"{version} writes on the upgraded schema", started)
        print(
            f"{version} ORM: {report['models']} models, {len(report['selected'])} with a row selected, "
            f"{len(report['updated'])} rewritten, copies inserted: {report['inserted'] or 'none'}"
        )
        assert report["failures"] == [], "\n".join(report["failures"])
        assert set(report["selected"]) >= SEEDED, SEEDED - set(report["selected"])
        assert set(report["updated"]) == set(report["selected"]) - {"core.AuditEvent"}, report
        assert sorted(label.lower() for label in report["inserted"]) == changed, report["inserted"]

        # The other version's web shows what the previous code just wrote.
        new_web.page(on_new_admin, "/clusters/", "prod-rolling", "prod-before")
        old_web.page(on_old, "/clusters/", "prod-rolling")
        assert rolling["cluster"] != ids["cluster"]

    # This checkout reads what the previous code wrote on its schema; both versions find the chain both wrote whole.
    upgrade["seeds"]["rolling"] = (rolling, secrets_rolling)
    reading = assert_read_back(new, upgrade["seeds"])
    events = reading["counts"]["core.AuditEvent"]
    for code in (old, new):
        verified = code.manage("audit_verify").stdout
        assert f"The audit log is intact: {events} events verified." in verified, (code.name, verified)
