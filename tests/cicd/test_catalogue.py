"""The CI/CD catalogue pages (apps/cicd/catalogue/): registries checked against a real registry
(tests/plugins/registry.py) and browsed with their tags and digests; each project's approved base images pinned by
digest; the policy and the time-limited, audited vulnerability exceptions (password asked: a dangerous
capability); the import of an offline vulnerability database bundle, refused with a sentence and nothing left
behind when it is not a bundle (not a zip, a path outside its folders, a zip bomb, a bad manifest)."""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Project
from apps.cicd import services, storage
from apps.cicd.catalogue import vulndb
from apps.cicd.models import BaseImage, Policy, Registry, ScanException, VulnDatabase
from apps.core import crypto
from apps.core.models import AuditEvent
from tests.factories import PASSWORD, AdminFactory, ClusterFactory, UserFactory
from tests.helpers import free_port, grant, login, unique
from tests.plugins.registry import cicd_samples

pytestmark = pytest.mark.django_db

SECRET = "s3cret-registry-pass"


@pytest.fixture(autouse=True)
def _own_storage(settings, tmp_path):
    """Each test its own CI/CD storage folder, so what an import leaves behind (or not) is its own."""
    settings.KUBEMATE_CICD_STORAGE = tmp_path / "cicd"


@pytest.fixture
def place():
    cluster = ClusterFactory(name=unique("prod"))
    project = Project.objects.create(cluster=cluster, slug=unique("pay"), name="Payments", namespaces=["payments"])
    other = Project.objects.create(cluster=cluster, slug=unique("loan"), name="Lending", namespaces=["lending"])
    people = {"admin": AdminFactory()}
    for role in ("project-owner", "developer", "viewer"):
        people[role] = UserFactory()
        grant(people[role], role, project=project)
    people["outsider"] = UserFactory()  # a cluster administrator elsewhere
    grant(people["outsider"], "cluster-admin", cluster=ClusterFactory(name=unique("dev")))
    people["nobody"] = UserFactory()  # no CI/CD capability anywhere
    return {"cluster": cluster, "project": project, "other": other, **people}


def _registry(place, host="127.0.0.1:1", **fields) -> Registry:
    values = {"username": "robot$ci", "password_encrypted": crypto.encrypt(SECRET), **fields}
    return Registry.objects.create(name=unique("harbor"), host=host, insecure=True, cluster=place["cluster"], **values)


def _base(place, registry, name="jre17", active=True) -> BaseImage:
    return BaseImage.objects.create(
        project=place["project"],
        name=name,
        reference=f"{registry.host}/base/{name}:1.0",
        digest="sha256:" + "ab" * 32,
        active=active,
        approved_by=place["admin"],
    )


def _page(client, user, view, *args, recent=False, **params):
    login(client, user, recent_auth=recent)
    return client.get(reverse(view, args=args), params)


def _events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


# Pages: who sees what ----------------------------------------------------------------------------------------


def test_the_registry_page_shows_an_admin_everything_and_a_member_their_project(client, place):
    registry = _registry(place)
    _base(place, registry)
    _base(place, registry, name="jre11", active=False)
    Registry.objects.create(name=unique("lending"), host="10.0.0.9:5000", project=place["other"])

    admin = _page(client, place["admin"], "cicd:registry_list").content.decode()
    assert registry.name in admin and 'data-testid="registry-create"' in admin
    assert 'data-testid="badge-insecure"' in admin and 'data-testid="registry-delete"' in admin
    assert "every project of cluster" in admin and "Lending" in admin  # the admin sees every registry
    assert SECRET not in admin

    viewer = _page(client, place["viewer"], "cicd:registry_list").content.decode()
    assert registry.name in viewer and "10.0.0.9:5000" not in viewer  # not the other project's registry
    assert 'data-base="jre17"' in viewer and 'data-testid="badge-withdrawn"' in viewer
    assert f'title="sha256:{"ab" * 32}"' in viewer and "sha256:abababababab…" in viewer
    for hidden in (
        "registry-create",
        "registry-delete",
        "registry-edit",
        "base-form",
        "base-withdraw",
        "registry-open",
    ):
        assert f'data-testid="{hidden}"' not in viewer, hidden

    developer = _page(client, place["developer"], "cicd:registry_list").content.decode()
    assert 'data-testid="base-form"' in developer and developer.count('data-testid="base-withdraw"') == 1
    assert 'data-testid="registry-open"' in developer and 'data-testid="registry-create"' not in developer


def test_the_policy_page_shows_the_policy_and_exceptions_apart(client, place):
    project = place["project"]
    now = timezone.now()
    ScanException.objects.create(
        project=project, vuln_id="CVE-2021-44228", reason="JNDI lookups are off", expires_at=now + timedelta(days=5)
    )
    ScanException.objects.create(
        project=project, vuln_id="CVE-2020-0001", reason="old and gone away", expires_at=now - timedelta(days=1)
    )
    ScanException.objects.create(
        project=project,
        vuln_id="CVE-2022-0002",
        reason="revoked early, fixed",
        expires_at=now + timedelta(days=20),
        revoked_at=now,
        revoked_by=place["admin"],
    )

    owner = _page(client, place["project-owner"], "cicd:policy_list").content.decode()
    assert 'data-testid="policy-form"' in owner and 'data-testid="exception-form"' in owner
    assert 'data-testid="exception-row" data-vuln="CVE-2021-44228"' in owner
    assert 'data-testid="past-exception-row" data-vuln="CVE-2020-0001"' in owner
    assert 'data-testid="past-exception-row" data-vuln="CVE-2022-0002"' in owner
    assert 'data-testid="exception-row" data-vuln="CVE-2020-0001"' not in owner
    assert "data-confirm-password" in owner  # granting asks for the password (stale proof)

    developer = _page(client, place["developer"], "cicd:policy_list").content.decode()
    assert 'data-testid="policy-summary"' in developer and "Block on high or critical" in developer
    for hidden in ("policy-form", "exception-form", "exception-revoke"):
        assert f'data-testid="{hidden}"' not in developer, hidden
    assert 'data-vuln="CVE-2021-44228"' in developer


def test_outsiders_get_404_everywhere(client, place):
    registry = _registry(place)
    base = _base(place, registry)
    exception = ScanException.objects.create(
        project=place["project"], vuln_id="CVE-2021-44228", reason="accepted for now", expires_at=timezone.now()
    )
    # The lists are every signed-in person's, showing their own projects: none of this one's.
    for stranger in ("nobody", "outsider"):
        login(client, place[stranger], recent_auth=True)
        for view in ("cicd:registry_list", "cicd:policy_list"):
            page = client.get(reverse(view)).content.decode()
            assert registry.name not in page and "Payments" not in page and 'data-testid="projects-empty"' in page
    project = place["project"].pk
    for view, args in [
        ("cicd:vulndb", ()),
        ("cicd:registry_detail", (registry.pk,)),
        ("cicd:registry_edit", (registry.pk,)),
        ("cicd:registry_create", ()),
        ("cicd:base_withdraw", (base.pk,)),  # looked up before the method: 404, not 405
        ("cicd:exception_revoke", (exception.pk,)),
    ]:
        assert client.get(reverse(view, args=args)).status_code == 404, view
    for view, args in [
        ("cicd:base_create", (project,)),
        ("cicd:base_withdraw", (base.pk,)),
        ("cicd:policy_edit", (project,)),
        ("cicd:exception_create", (project,)),
        ("cicd:exception_revoke", (exception.pk,)),
        ("cicd:registry_delete", (registry.pk,)),
        ("cicd:vulndb", ()),
    ]:
        assert client.post(reverse(view, args=args), {"password": PASSWORD}).status_code == 404, view

    # A project member: the platform's pages are not theirs, nor another project's things.
    login(client, place["project-owner"], recent_auth=True)
    assert client.get(reverse("cicd:vulndb")).status_code == 404
    assert client.get(reverse("cicd:registry_create")).status_code == 404
    assert client.post(reverse("cicd:policy_edit", args=[place["other"].pk])).status_code == 404
    assert BaseImage.objects.get(pk=base.pk).active and Registry.objects.filter(pk=registry.pk).exists()


def test_the_registry_form_never_shows_the_password_back(client, place):
    registry = _registry(place)
    page = _page(client, place["admin"], "cicd:registry_edit", registry.pk).content.decode()
    assert SECRET not in page and registry.password_encrypted not in page
    assert "robot$ci" in page and 'data-testid="field-forget_password"' in page


# Registries against a real registry --------------------------------------------------------------------------


def _push(oci_registry, tmp_path, repository, tag, text="hello") -> str:
    layer = tmp_path / f"{tag}.tar"
    with tarfile.open(layer, "w") as tar:
        data = text.encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    ref = oci_registry.ref(repository, tag)
    oci_registry.crane("append", "-f", str(layer), "-t", ref)
    return oci_registry.digest(ref)


def _registry_post(place, host, name):
    return {
        "name": name,
        "host": host,
        "prefix": "team",
        "place": f"cluster:{place['cluster'].pk}",
        "username": "",
        "registry_password": "",
        "insecure": "on",
        "ca_pem": "",
        "reason": "CHG-1",
    }


def test_a_registry_is_saved_once_it_answers_and_refused_with_a_sentence_when_it_does_not(client, place, oci_registry):
    login(client, place["admin"], recent_auth=True)
    name = unique("local")
    response = client.post(reverse("cicd:registry_create"), _registry_post(place, oci_registry.host, name))
    registry = Registry.objects.get(name=name)
    assert response.status_code == 302 and response["Location"] == reverse("cicd:registry_detail", args=[registry.pk])
    assert registry.insecure and registry.prefix == "team" and registry.last_checked_at is not None
    event = _events("cicd.registry.create")[-1]
    assert event.object_name == name and event.detail["host"] == oci_registry.host and event.reason == "CHG-1"

    # A user name and password (the local registry takes any): stored encrypted, kept when left empty.
    edit = {**_registry_post(place, oci_registry.host, name), "username": "robot", "registry_password": SECRET}
    assert client.post(reverse("cicd:registry_edit", args=[registry.pk]), edit).status_code == 302
    registry.refresh_from_db()
    assert crypto.decrypt(registry.password_encrypted) == SECRET
    assert SECRET not in json.dumps([e.detail for e in _events("cicd.registry.update")])
    page = client.get(reverse("cicd:registry_edit", args=[registry.pk])).content.decode()
    assert SECRET not in page and "stored: leave empty to keep it" in page
    client.post(reverse("cicd:registry_edit", args=[registry.pk]), {**edit, "registry_password": ""})
    registry.refresh_from_db()
    assert crypto.decrypt(registry.password_encrypted) == SECRET

    dead = f"127.0.0.1:{free_port()}"
    refused = client.post(reverse("cicd:registry_create"), _registry_post(place, dead, unique("dead")))
    assert refused.status_code == 400
    assert "The registry did not answer as expected, so nothing was saved" in refused.content.decode()
    assert not Registry.objects.filter(host=dead).exists()

    # Without a recent password proof, nothing is saved: the person confirms the password first.
    login(client, place["admin"])
    stale = client.post(reverse("cicd:registry_create"), _registry_post(place, oci_registry.host, unique("late")))
    assert stale.status_code == 302 and reverse("security:reauth") in stale["Location"]
    assert Registry.objects.count() == 1


def test_a_registry_shows_its_repositories_tags_and_digests(client, place, oci_registry, tmp_path):
    repository = f"catalogue/{unique('orders')}"
    digests = {tag: _push(oci_registry, tmp_path, repository, tag, tag) for tag in ("1.9.0", "1.10.0", "latest")}
    registry = _registry(place, host=oci_registry.host, username="", password_encrypted="")

    page = _page(client, place["developer"], "cicd:registry_detail", registry.pk).content.decode()
    assert f'data-repository="{repository}"' in page and 'data-testid="tags-pick"' in page

    page = _page(client, place["developer"], "cicd:registry_detail", registry.pk, repository=repository)
    html = page.content.decode()
    for tag, digest in digests.items():
        assert f'data-tag="{tag}"' in html and f'data-digest="{digest}"' in html
        assert f"{oci_registry.host}/{repository}:{tag}@{digest}" in html
    assert html.index('data-tag="latest"') < html.index('data-tag="1.10.0"') < html.index('data-tag="1.9.0"')

    # A repository the registry did not list is not asked for.
    other = client.get(reverse("cicd:registry_detail", args=[registry.pk]), {"repository": "../../etc"})
    assert 'data-testid="tag-table"' not in other.content.decode()
    # The viewer does not browse the registry's content with its credentials.
    assert _page(client, place["viewer"], "cicd:registry_detail", registry.pk).status_code == 404


def test_a_registry_that_does_not_answer_is_a_sentence_not_an_error(client, place):
    registry = _registry(place, host=f"127.0.0.1:{free_port()}")
    page = _page(client, place["admin"], "cicd:registry_detail", registry.pk)
    assert page.status_code == 200
    assert 'data-testid="registry-error"' in page.content.decode()
    assert f"Registry {registry.host}" in page.content.decode()
    registry.refresh_from_db()
    assert registry.last_error and registry.last_checked_at is not None
    listed = client.get(reverse("cicd:registry_list")).content.decode()
    assert f"Registry {registry.host}" in listed  # the last error, in the reader's language


def test_the_services_refuse_a_registry_of_another_project_a_second_name_and_no_place(place):
    theirs = Registry.objects.create(name=unique("lending"), host="10.0.0.9:5000", project=place["other"])
    with pytest.raises(services.Refused, match="is not one of this project's"):
        services.approve_base(
            actor=place["developer"],
            project=place["project"],
            name="jre17",
            reference="10.0.0.9:5000/base/jre:17",
            registry=theirs,
        )
    with pytest.raises(services.Refused, match="already exists"):
        services.save_registry(
            actor=place["admin"], registry=Registry(name=theirs.name, host="h:1", cluster=place["cluster"])
        )
    with pytest.raises(services.Refused, match="one cluster or on one project"):
        services.save_registry(actor=place["admin"], registry=Registry(name=unique("x"), host="h:1"))
    with pytest.raises(services.Refused, match="You may not manage registries"):
        services.save_registry(actor=place["project-owner"], registry=Registry(name=unique("x"), host="h:1"))
    assert Registry.objects.count() == 1 and not BaseImage.objects.exists()


def test_approving_a_base_pins_the_digest_the_registry_holds(client, place, oci_registry, tmp_path):
    repository = f"base/{unique('jre')}"
    digest = _push(oci_registry, tmp_path, repository, "17")
    registry = _registry(place, host=oci_registry.host, username="", password_encrypted="")
    login(client, place["developer"])
    url = reverse("cicd:base_create", args=[place["project"].pk])
    data = {
        "name": "jre17",
        "registry": registry.pk,
        "reference": oci_registry.ref(repository, "17"),
        "description": "Debian 12 with a JRE",
    }
    response = client.post(url, data)
    assert response.status_code == 302 and response["Location"].endswith(f"#project-{place['project'].pk}")
    base = BaseImage.objects.get(project=place["project"], name="jre17")
    assert base.digest == digest and base.active and base.approved_by == place["developer"]
    assert _events("cicd.base.approve")[-1].detail["digest"] == digest

    missing = client.post(url, {**data, "name": "ghost", "reference": oci_registry.ref(repository, "no-such-tag")})
    assert missing.status_code == 400 and 'data-testid="form-error"' in missing.content.decode()
    assert not BaseImage.objects.filter(name="ghost").exists()

    elsewhere = client.post(url, {**data, "name": "other", "reference": "docker.io/library/debian:12"})
    assert elsewhere.status_code == 400 and "must be in registry" in elsewhere.content.decode()

    # A viewer of the project may not approve: the service refuses with a sentence.
    login(client, place["viewer"])
    assert client.post(url, {**data, "name": "viewer"}).status_code == 400
    assert not BaseImage.objects.filter(name="viewer").exists()

    login(client, place["developer"])
    client.post(reverse("cicd:base_withdraw", args=[base.pk]), {"reason": "replaced by jre21"})
    base.refresh_from_db()
    assert not base.active and _events("cicd.base.withdraw")[-1].reason == "replaced by jre21"

    # The tag moves in the registry; the pinned digest does not, until the base is approved again (the row's
    # button posts its own name, registry and reference).
    moved = _push(oci_registry, tmp_path, repository, "17", "patched")
    assert moved != digest and BaseImage.objects.get(pk=base.pk).digest == digest
    page = client.get(reverse("cicd:registry_list")).content.decode()
    assert 'data-testid="base-repin"' in page and "Approve again" in page
    client.post(url, data)
    base.refresh_from_db()
    assert base.active and base.digest == moved


# Policy and exceptions ---------------------------------------------------------------------------------------


POLICY = {"block_on": "critical", "max_concurrent_runs": 3, "keep_days": 14, "keep_runs": 5}


def test_the_policy_is_saved_by_an_owner_with_the_password_and_refused_to_a_developer(client, place):
    project = place["project"]
    url = reverse("cicd:policy_edit", args=[project.pk])

    login(client, place["project-owner"])  # stale proof: the dialog sends the password
    response = client.post(url, {**POLICY, "password": PASSWORD, "reason": "CHG-7"})
    assert response.status_code == 302
    policy = Policy.objects.get(project=project)
    assert (policy.block_on, policy.max_concurrent_runs, policy.keep_days, policy.keep_runs) == ("critical", 3, 14, 5)
    event = _events("cicd.policy.update")[-1]
    assert event.detail["block_on"] == "critical" and event.detail["before"]["block_on"] == "high"
    assert event.reason == "CHG-7"

    login(client, place["developer"], recent_auth=True)
    refused = client.post(url, {**POLICY, "block_on": "none"})
    assert refused.status_code == 400 and "You may not change the CI/CD policy" in refused.content.decode()
    assert Policy.objects.get(project=project).block_on == "critical"

    login(client, place["project-owner"], recent_auth=True)
    bad = client.post(url, {**POLICY, "max_concurrent_runs": 0})
    assert bad.status_code == 400 and Policy.objects.get(project=project).max_concurrent_runs == 3


GRANT = {"vuln_id": "CVE-2021-44228", "package": "", "justification": "JNDI lookups disabled, CHG-42", "days": 30}


def test_granting_an_exception_asks_for_the_password_and_is_audited(client, place):
    project = place["project"]
    url = reverse("cicd:exception_create", args=[project.pk])
    login(client, place["project-owner"])

    without = client.post(url, GRANT)
    assert without.status_code == 302 and reverse("security:reauth") in without["Location"]
    wrong = client.post(url, {**GRANT, "password": "not-the-password"}, HTTP_REFERER="/cicd/policies/")
    assert wrong.status_code == 302 and wrong["Location"] == "/cicd/policies/"
    assert not ScanException.objects.exists()

    granted = client.post(url, {**GRANT, "password": PASSWORD, "reason": "risk accepted by CISO"})
    assert granted.status_code == 302
    exception = ScanException.objects.get(project=project)
    assert exception.vuln_id == "CVE-2021-44228" and exception.active and exception.created_by == place["project-owner"]
    assert timedelta(days=29, hours=23) < exception.expires_at - timezone.now() <= timedelta(days=30)
    event = _events("cicd.exception.grant")[-1]
    assert event.detail["days"] == 30 and event.detail["reason"] == GRANT["justification"]
    assert event.reason == "risk accepted by CISO" and event.actor_id == place["project-owner"].pk

    too_long = client.post(url, {**GRANT, "days": 181})
    assert too_long.status_code == 400 and ScanException.objects.count() == 1

    login(client, place["developer"], recent_auth=True)
    refused = client.post(url, GRANT)
    assert refused.status_code == 400
    assert "You may not grant vulnerability exceptions" in refused.content.decode()
    assert ScanException.objects.count() == 1


def test_revoking_an_exception_is_audited_and_refused_without_the_capability(client, place):
    exception = ScanException.objects.create(
        project=place["project"],
        vuln_id="GHSA-jfh8-c2jp-5v3q",
        package="org.apache.logging.log4j:log4j-core",
        reason="JNDI lookups disabled",
        expires_at=timezone.now() + timedelta(days=10),
        created_by=place["project-owner"],
    )
    url = reverse("cicd:exception_revoke", args=[exception.pk])

    login(client, place["developer"])
    client.post(url)
    exception.refresh_from_db()
    assert exception.revoked_at is None and not _events("cicd.exception.revoke")

    login(client, place["project-owner"])
    response = client.post(url, {"reason": "fixed in 2.17.1"})
    assert response.status_code == 302
    exception.refresh_from_db()
    assert exception.revoked_at is not None and exception.revoked_by == place["project-owner"]
    assert _events("cicd.exception.revoke")[-1].reason == "fixed in 2.17.1"

    again = client.post(url, follow=True)
    assert "has already ended" in again.content.decode() and len(_events("cicd.exception.revoke")) == 1


# The vulnerability database ----------------------------------------------------------------------------------


def _record(vuln_id: str, ecosystem: str, package: str, fixed: str) -> dict:
    return {
        "schema_version": "1.6.0",
        "id": vuln_id,
        "modified": "2026-11-20T08:00:00Z",
        "summary": f"Sample advisory {vuln_id}",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }


def _all_zip(records: list[dict], when=(2026, 11, 20, 8, 0, 0)) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.writestr(zipfile.ZipInfo(f"{record['id']}.json", when), json.dumps(record))
    return buffer.getvalue()


MAVEN = [
    _record("GHSA-0001-0001-0001", "Maven", "org.apache.logging.log4j:log4j-core", "2.17.1"),
    _record("GHSA-0002-0002-0002", "Maven", "com.fasterxml.jackson.core:jackson-databind", "2.13.4"),
    _record("GHSA-0003-0003-0003", "Maven", "org.yaml:snakeyaml", "2.0"),
]
DEBIAN = [
    _record("DSA-0001-1", "Debian:12", "openssl", "3.0.15-1~deb12u1"),
    _record("DSA-0002-1", "Debian:12", "zlib", "1:1.2.13.dfsg-2"),
]


def _bundle(entries: dict[str, bytes], method=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _good(manifest: dict | None = None) -> bytes:
    entries = {"Maven/all.zip": _all_zip(MAVEN), "Debian/all.zip": _all_zip(DEBIAN, when=(2026, 11, 22, 9, 30, 0))}
    if manifest is not None:
        entries = {"manifest.json": json.dumps(manifest).encode(), **entries}
    return _bundle(entries)


def _chunks(data: bytes, size: int = 4096):
    return (data[i : i + size] for i in range(0, len(data), size))


def _leftovers() -> list[str]:
    folder = storage.root() / "vulndb"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_good_bundle_is_imported_in_the_layout_osv_scanner_reads(client, place, django_capture_on_commit_callbacks):
    data = _good({"date": "2026-12-01", "source": "osv.dev export"})
    login(client, place["admin"], recent_auth=True)
    upload = io.BytesIO(data)
    upload.name = "osv-2026-12-01.zip"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("cicd:vulndb"), {"bundle": upload, "reason": "monthly update"})
    assert response.status_code == 302
    database = VulnDatabase.objects.get()
    assert database.ecosystems == {"Debian": 2, "Maven": 3} and database.records == 5
    assert database.data_date == datetime(2026, 12, 1, tzinfo=UTC)
    assert database.filename == "osv-2026-12-01.zip" and database.size == len(data)
    folder = storage.root() / "vulndb" / database.folder
    assert (folder / "osv-scalibr" / "Maven" / "all.zip").read_bytes() == _all_zip(MAVEN)
    assert zipfile.ZipFile(folder / "osv-scalibr" / "Debian" / "all.zip").namelist() == [
        "DSA-0001-1.json",
        "DSA-0002-1.json",
    ]
    assert _leftovers() == [database.folder]  # the uploaded bundle and the staging folder are gone
    event = _events("cicd.vulndb.import")[-1]
    assert event.detail["ecosystems"] == {"Debian": 2, "Maven": 3} and event.detail["records"] == 5
    assert event.detail["sha256"] == database.sha256 and event.reason == "monthly update"

    page = client.get(reverse("cicd:vulndb")).content.decode()
    assert "Data as of 2026-12-01" in page and 'data-testid="badge-in-use"' in page
    assert 'data-ecosystem="Maven"' in page and "osv.dev export" in page and database.sha256[:16] in page


def test_without_a_manifest_the_data_date_is_the_newest_record(place):
    database = vulndb.import_bundle(actor=place["admin"], filename="b.zip", chunks=_chunks(_good()))
    assert database.data_date == datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def test_folder_entries_and_osv_ecosystem_names_are_accepted(place):
    data = _bundle(
        {
            "Maven/": b"",
            "Maven/all.zip": _all_zip(MAVEN),
            "crates.io/all.zip": _all_zip([]),
            "Rocky Linux/all.zip": _all_zip([]),
        }
    )
    database = vulndb.import_bundle(actor=place["admin"], filename="b.zip", chunks=_chunks(data))
    assert database.ecosystems == {"Maven": 3, "Rocky Linux": 0, "crates.io": 0}
    assert (storage.root() / "vulndb" / database.folder / "osv-scalibr" / "Rocky Linux" / "all.zip").exists()


def test_the_bundle_the_samples_write_is_accepted(place, tmp_path):
    samples = cicd_samples()
    path = samples.write_osv_bundle(tmp_path / "sample.zip", created="2026-11-30T06:00:00Z")
    database = vulndb.import_bundle(actor=place["admin"], filename=path.name, chunks=_chunks(path.read_bytes()))
    assert database.data_date == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert set(database.ecosystems) == {"Maven", "Debian"} and database.records >= 2
    folder = storage.root() / "vulndb" / database.folder
    assert (folder / "osv-scalibr" / "Maven" / "all.zip").exists()


def _patch_declared_size(data: bytes, name: str, size: int) -> bytes:
    """``data`` (a zip) with the central directory's uncompressed size of entry ``name`` set to ``size``."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", out, at + 28)[0]
        if out[at + 46 : at + 46 + name_len].decode() == name:
            struct.pack_into("<L", out, at + 24, size)
            return bytes(out)
        at = out.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{name} not found")


def _bomb() -> bytes:
    # 8 MB of zeros deflate to a few KB; the directory says the entry holds 1000 bytes.
    data = _bundle({"Maven/all.zip": b"\0" * (8 * 1024 * 1024)}, method=zipfile.ZIP_DEFLATED)
    return _patch_declared_size(data, "Maven/all.zip", 1000)


def _huge() -> bytes:
    return _patch_declared_size(_bundle({"Maven/all.zip": _all_zip(MAVEN)}), "Maven/all.zip", 0xFFFFFFF0)


def _record_bomb() -> bytes:
    # The scanner would unpack a record declaring 100 MB.
    inner = _patch_declared_size(_all_zip(MAVEN[:1]), "GHSA-0001-0001-0001.json", 100 * 1024 * 1024)
    return _bundle({"Maven/all.zip": inner})


def _many() -> bytes:
    return _bundle({f"E{n}/all.zip": _all_zip([]) for n in range(vulndb.MAX_ENTRIES + 1)})


REFUSALS = {
    "not a zip": (lambda: b"this is not a zip file at all" * 50, "is not a zip file"),
    "traversal": (lambda: _bundle({"../x/all.zip": _all_zip(MAVEN)}), "which a bundle may not"),
    "absolute": (lambda: _bundle({"/etc/all.zip": _all_zip(MAVEN)}), "which a bundle may not"),
    "unknown layout": (lambda: _bundle({"osv/Maven/all.zip": _all_zip(MAVEN)}), "which a bundle may not"),
    "loose records": (lambda: _bundle({"Maven/GHSA-1.json": b"{}"}), "which a bundle may not"),
    "no ecosystem": (lambda: _bundle({"manifest.json": b'{"date": "2026-12-01"}'}), "holds no ecosystem"),
    "zip bomb": (_bomb, "zip bomb"),
    "huge declared size": (_huge, "unpacks to more than"),
    "too many entries": (_many, "more than 100 entries"),
    "bad manifest date": (lambda: _good({"date": "yesterday"}), "is not a past ISO date"),
    "manifest not an object": (lambda: _good(["date"]), "is not a JSON object"),
    "inner not a zip": (lambda: _bundle({"Maven/all.zip": b"not a zip"}), "is not a zip of OSV records"),
    "record bomb": (_record_bomb, "no OSV record is that large"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_bad_bundle_is_refused_with_a_sentence_leaving_nothing(place, case):
    make, sentence = REFUSALS[case]
    with pytest.raises(services.Refused) as refused:
        vulndb.import_bundle(actor=place["admin"], filename="bundle.zip", chunks=_chunks(make()))
    assert sentence in str(refused.value)
    assert not VulnDatabase.objects.exists()
    assert _leftovers() == []
    event = _events("cicd.vulndb.import")[-1]
    assert event.result == AuditEvent.Result.FAILURE and sentence in event.detail["refused"]


def test_a_refusal_on_the_page_is_a_form_error_and_only_admins_import(client, place):
    login(client, place["admin"], recent_auth=True)
    upload = io.BytesIO(b"not a zip")
    upload.name = "notes.txt"
    response = client.post(reverse("cicd:vulndb"), {"bundle": upload})
    assert response.status_code == 400 and "notes.txt is not a zip file" in response.content.decode()
    assert not VulnDatabase.objects.exists()

    login(client, place["admin"])  # stale proof and no password: nothing is imported
    upload = io.BytesIO(_good())
    upload.name = "b.zip"
    stale = client.post(reverse("cicd:vulndb"), {"bundle": upload})
    assert stale.status_code == 302 and not VulnDatabase.objects.exists()

    with pytest.raises(services.Refused):
        vulndb.import_bundle(actor=place["project-owner"], filename="b.zip", chunks=_chunks(_good()))
    assert not VulnDatabase.objects.exists()


def test_the_last_three_databases_are_kept(place, django_capture_on_commit_callbacks):
    made = []
    for day in range(1, 5):
        with django_capture_on_commit_callbacks(execute=True):
            made.append(
                vulndb.import_bundle(
                    actor=place["admin"], filename=f"{day}.zip", chunks=_chunks(_good({"date": f"2026-11-0{day}"}))
                )
            )
        # Imported a while ago, in order: the next import is the newest.
        VulnDatabase.objects.filter(pk=made[-1].pk).update(imported_at=timezone.now() - timedelta(minutes=10 - day))
    kept = list(VulnDatabase.objects.order_by("-imported_at"))
    assert [d.pk for d in kept] == [d.pk for d in reversed(made[1:])]
    assert vulndb.in_use().pk == made[-1].pk
    assert _leftovers() == sorted(d.folder for d in made[1:])


def test_osv_scanner_reads_an_imported_database_offline(place, oci_registry, tmp_path):
    """The layout the import writes is the one osv-scanner reads: the sample image (Debian base, a jar with
    log4j-core 2.14.1) scanned offline against the imported sample bundle finds both planted advisories."""
    from apps.cicd import scanner

    samples = cicd_samples()
    bundle = samples.write_osv_bundle(tmp_path / "osv.zip", created="2026-12-01T00:00:00Z")
    database = vulndb.import_bundle(actor=place["admin"], filename="osv.zip", chunks=_chunks(bundle.read_bytes()))

    base = oci_registry.ref(f"catalogue/{unique('debian')}", "bookworm")
    samples.push_base_image(oci_registry.crane_path, base, folder=tmp_path / "base")
    layer = samples.build_app_layer(samples.build_sample_jar(tmp_path / "app.jar"), tmp_path / "layer.tar")
    archive = tmp_path / "image.tar"
    target = oci_registry.ref(f"catalogue/{unique('orders')}", "1.4.2")
    oci_registry.crane(
        "mutate", base, "--append", str(layer), "--set-platform", "linux/amd64", "-t", target, "-o", str(archive)
    )

    report = scanner.scan(
        archive,
        storage.resolve(f"vulndb/{database.folder}"),
        tmp_path / "scan.json",
        tmp_path / "sbom.json",
        tmp_path,
    )
    found = {(v.id, v.package) for v in report.vulnerabilities}
    assert (samples.SAMPLE_MAVEN_ID, "org.apache.logging.log4j:log4j-core") in found
    assert (samples.SAMPLE_DEBIAN_ID, "openssl") in found
