"""The capability table is complete: every button's capability exists and maps to Kubernetes rules."""

import re
from pathlib import Path

from apps.accounts import capabilities

ROOT = Path(__file__).resolve().parents[2]


def used_capabilities() -> set[str]:
    """Capability codes named by templates ({% can "x" %}) and views (capability_required / may / require)."""
    found = set()
    for path in list((ROOT / "templates").rglob("*.html")) + list((ROOT / "apps").rglob("*.py")):
        text = path.read_text()
        found |= set(re.findall(r'{%\s*can\s+"([a-z_.]+)"', text))
        found |= set(re.findall(r'(?:capability_required|require|may)\(\s*(?:[\w.]+,\s*)?"([a-z_]+\.[a-z_]+)"', text))
        found |= set(re.findall(r'capability="([a-z_]+\.[a-z_]+)"', text))
    return found


def test_every_capability_a_button_uses_is_in_the_table():
    used = used_capabilities()
    assert {"users.manage", "projects.manage", "audit.view"} <= used
    assert sorted(used - set(capabilities.BY_CODE)) == []


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
