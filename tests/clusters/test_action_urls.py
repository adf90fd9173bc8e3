"""Row action URLs are built from one reversed pattern per action, cluster and kind (apps/clusters/actions/registry.py
``Action.url``): each must be exactly what ``reverse`` answers for the object, whatever its name."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.urls import NoReverseMatch, reverse

from apps.clusters.actions.registry import ACTIONS, CLUSTER_SCOPED
from apps.clusters.kinds import KINDS

NAMES = ["web-0", "app-3-abcde-00042", "a.b.c", "x@y:z", "naïve", "sp ace", "per%cent", "q?uery", "h#ash"]


def expected(action, cluster_id: int, kind: str, namespace: str, name: str) -> str:
    ns = namespace or CLUSTER_SCOPED
    if action.url_name.startswith(("clusters:pod_", "terminal:")):
        return reverse(action.url_name, args=[cluster_id, ns, name])
    if action.url_name.startswith("clusters:node_"):
        return reverse(action.url_name, args=[cluster_id, name])
    return reverse(action.url_name, args=[cluster_id, kind.lower(), ns, name])


@pytest.mark.parametrize("action_name", sorted(ACTIONS))
def test_every_action_url_is_what_reverse_answers(action_name):
    action = ACTIONS[action_name]
    compared = 0
    for kind in [k.kind for k in KINDS if action.applies_to(k.kind)]:
        for namespace in ("payments", ""):
            for name in NAMES:
                try:
                    want = expected(action, 7, kind, namespace, name)
                except NoReverseMatch:
                    continue
                assert action.url(SimpleNamespace(pk=7), kind, namespace, name) == want, (kind, namespace, name)
                compared += 1
    assert compared > 0, f"{action_name}: no URL compared"
