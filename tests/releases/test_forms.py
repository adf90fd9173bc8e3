"""Form validation and rendering without a cluster: sentences for bad input, manifests for good input."""

import pytest

from apps.releases import render
from apps.releases.forms import ReleaseForm, parse_env
from tests.releases.helpers import form_data

pytestmark = pytest.mark.django_db


def errors_of(user, **overrides):
    form = ReleaseForm(form_data(**overrides), user=user)
    form.is_valid()
    return {name: [str(e) for e in errs] for name, errs in form.errors.items()}


@pytest.mark.parametrize(
    "image",
    [
        "nginx:1.27",
        "registry.bank.example:5000/team/app:1.4.2",
        "registry.bank.example/app@sha256:" + "a" * 64,
        "ghcr.io/org/app:v2-rc.1@sha256:" + "0" * 64,
    ],
)
def test_image_references_with_a_tag_or_digest_are_accepted(operator, image):
    assert "image" not in errors_of(operator, image=image)


@pytest.mark.parametrize("image", ["Bad Image", "registry/app:", "app@sha256:short", "-app:1"])
def test_malformed_image_references_are_refused_with_an_example(operator, image):
    assert errors_of(operator, image=image)["image"][0].endswith(
        "Write registry/repository:tag, for example registry.example.com/team/app:1.4.2, or pin a digest with @sha256:…"
    )


def test_an_image_without_tag_or_digest_asks_for_the_version(operator):
    assert errors_of(operator, image="registry.bank.example/app")["image"] == [
        "Name the version of “registry.bank.example/app”: add a tag such as :1.4.2 or a digest such as @sha256:…"
    ]


def test_ports_quantities_and_paths_are_checked_with_sentences(operator):
    errors = errors_of(
        operator,
        ports="8080, 70000",
        cpu_request="half a core",
        memory_limit="12 gigs",
        readiness_path="healthz",
        service_port=0,
    )
    assert errors["ports"] == ["Port 70000 is outside 1-65535; pick a port in that range."]
    assert errors["cpu_request"] == [
        "“half a core” is not a CPU amount. Write 250m (a quarter of a core) or 2 (two cores)."
    ]
    assert errors["memory_limit"] == ["“12 gigs” is not a memory size. Write 512Mi or 2Gi."]
    assert errors["readiness_path"][0].startswith("“healthz” is not a path: start with /")
    assert errors["service_port"] == ["Port 0 is outside 1-65535; pick a port in that range."]


def test_a_request_above_its_limit_is_refused(operator):
    errors = errors_of(operator, memory_request="1Gi", memory_limit="512Mi")
    assert errors["memory_limit"] == ["The limit must be at least the request (1Gi)."]


def test_environment_lines_become_values_and_references():
    assert parse_env("A=1\nURL=configmap:app-config/url\nPASS=secret:db/password\nEMPTY=") == [
        {"name": "A", "value": "1"},
        {"name": "URL", "configmap": "app-config", "key": "url"},
        {"name": "PASS", "secret": "db", "key": "password"},
        {"name": "EMPTY", "value": ""},
    ]


def test_autoscaling_leaves_the_replica_count_to_the_hpa():
    spec = {**render.default_spec(), "image": "app:1"}
    spec["autoscaling"] = {"enabled": True, "min": 2, "max": 5, "cpu_percent": 70, "memory_percent": 80}
    objects = {o["kind"]: o for o in render.manifests("web", "team", spec, {})}
    assert "replicas" not in objects["Deployment"]["spec"]
    metrics = objects["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert [(m["resource"]["name"], m["resource"]["target"]["averageUtilization"]) for m in metrics] == [
        ("cpu", 70),
        ("memory", 80),
    ]
    assert set(objects) == {"Deployment", "Service", "HorizontalPodAutoscaler"}


def edit_form(user, release, **overrides):
    """The edit form of a stored release: no identity fields, so a good autoscaling setup makes it valid."""
    form = ReleaseForm(form_data(**overrides), user=user, release=release)
    form.is_valid()
    return form


AUTOSCALING = {"hpa_enabled": "on", "hpa_min": 2, "hpa_max": 5, "hpa_cpu_percent": 70}
MIN_MAX = "Enter a minimum and a maximum, the maximum at least the minimum."
NO_TARGET = "Give a CPU or memory target, for example 70%."
NO_CPU_REQUEST = "A CPU target is a share of the CPU request: enter a request."
NO_MEMORY_REQUEST = "A memory target is a share of the memory request: enter one."


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"hpa_min": 3, "hpa_max": 3},
        {"hpa_cpu_percent": None, "hpa_memory_percent": 80},
        {"hpa_memory_percent": 80},
        {"hpa_cpu_percent": None, "hpa_memory_percent": 80, "cpu_request": "", "cpu_limit": ""},
        {"hpa_memory_percent": None, "memory_request": "", "memory_limit": ""},
    ],
)
def test_sound_autoscaling_is_accepted(operator, release, overrides):
    form = edit_form(operator, release, **{**AUTOSCALING, **overrides})
    assert form.errors == {}
    assert form.spec()["autoscaling"]["enabled"] is True


def test_autoscaling_that_is_off_is_not_checked(operator, release):
    form = edit_form(operator, release, hpa_min=5, hpa_max=2, hpa_cpu_percent=None, cpu_request="", cpu_limit="")
    assert form.errors == {}


@pytest.mark.parametrize(
    ("overrides", "field", "sentence"),
    [
        ({"hpa_min": 5, "hpa_max": 2}, "hpa_max", MIN_MAX),
        ({"hpa_min": None}, "hpa_max", MIN_MAX),
        ({"hpa_max": None}, "hpa_max", MIN_MAX),
        ({"hpa_cpu_percent": None, "hpa_memory_percent": None}, "hpa_cpu_percent", NO_TARGET),
        ({"cpu_request": "", "cpu_limit": ""}, "cpu_request", NO_CPU_REQUEST),
        ({"hpa_memory_percent": 80, "memory_request": "", "memory_limit": ""}, "memory_request", NO_MEMORY_REQUEST),
    ],
)
def test_unsound_autoscaling_is_refused_on_the_right_field(operator, release, overrides, field, sentence):
    form = edit_form(operator, release, **{**AUTOSCALING, **overrides})
    assert form.errors == {field: [sentence]}
    assert errors_of(operator, **{**AUTOSCALING, **overrides})[field] == [sentence]
