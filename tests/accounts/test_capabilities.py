"""The capability table is complete: every button's capability exists and maps to Kubernetes rules."""

import re
from pathlib import Path

from apps.accounts import capabilities

ROOT = Path(__file__).resolve().parents[2]


# The named constants (capabilities.WORKLOADS_VIEW = "workloads.view", ...) by name.
CONSTANTS = {
    name: value
    for name, value in vars(capabilities).items()
    if name.isupper() and isinstance(value, str) and value in capabilities.BY_CODE
}


def used_capabilities() -> set[str]:
    """Capability codes named by templates ({% can "x" %}), views (capability_required / may / require) and code
    (the named constants, and any code still written as a string)."""
    found = set()
    sources = list((ROOT / "templates").rglob("*.html")) + list((ROOT / "apps").rglob("*.py"))
    sources += list((ROOT / "kubemate").rglob("*.py"))
    for path in sources:
        text = path.read_text()
        found |= set(re.findall(r'{%\s*can\s+"([a-z_.]+)"', text))
        found |= set(re.findall(r'(?:capability_required|require|may)\(\s*(?:[\w.]+,\s*)?"([a-z_]+\.[a-z_]+)"', text))
        found |= set(re.findall(r'capability="([a-z_]+\.[a-z_]+)"', text))
        if path.suffix == ".py" and "migrations" not in path.parts and path.name != "capabilities.py":
            found |= {CONSTANTS[name] for name in re.findall(r"\b([A-Z][A-Z_]+)\b", text) if name in CONSTANTS}
    return found


def test_every_capability_a_button_uses_is_in_the_table():
    used = used_capabilities()
    assert {"users.manage", "projects.manage", "audit.view"} <= used
    assert sorted(used - set(capabilities.BY_CODE)) == []


def test_every_capability_in_the_table_has_a_feature_that_uses_it():
    """Least privilege: a capability no page or button uses would only widen what the RBAC projection grants."""
    assert sorted(set(capabilities.BY_CODE) - used_capabilities()) == []


def test_the_kinds_are_read_with_capabilities_of_the_table():
    from apps.clusters.kinds import KINDS, TABLE

    assert {k.capability for k in KINDS} <= set(capabilities.BY_CODE)
    assert {k.capability for k in TABLE if k.capability} <= set(capabilities.BY_CODE)


def test_an_unknown_capability_fails_in_the_template_and_in_code():
    import pytest
    from django.template import Context, Template, TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError):
        Template('{% load access %}{% can "workloads.sclae" as ok %}')
    with pytest.raises(ValueError):
        Template("{% load access %}{% can code as ok %}").render(Context({"code": "workloads.sclae"}))
    with pytest.raises(ValueError):
        capabilities.get("workloads.sclae")


def test_every_cluster_capability_has_rules_and_a_probe_its_rules_grant():
    for cap in capabilities.CAPABILITIES:
        if cap.platform:
            assert cap.rules == (), cap.code
            assert cap.code not in capabilities.PROBES
            continue
        assert cap.rules, f"{cap.code} has no Kubernetes rules"
        verb, group, resource = capabilities.PROBES[cap.code]
        granted = any(
            group in rule.api_groups and resource in rule.resources and verb in rule.verbs for rule in cap.rules
        )
        assert granted, f"{cap.code}'s own rules do not grant its probe {verb} {group}/{resource}"


def test_rules_are_merged_per_group_and_resource_in_a_stable_order():
    rules = capabilities.rules_for(["workloads.scale", "workloads.restart", "pods.delete"])
    assert rules == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
        {"apiGroups": ["apps"], "resources": ["daemonsets", "deployments", "statefulsets"], "verbs": ["get", "patch"]},
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/scale", "statefulsets/scale"],
            "verbs": ["get", "patch", "update"],
        },
    ]
    assert capabilities.rules_for(["users.manage"]) == []
