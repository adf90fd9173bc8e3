"""PromQL tenancy against a real Prometheus: escape attempts rewritten for team-a find nothing of team-b's.

The exporter shows pods of three namespaces and series without any namespace (a node, a build). Every value
and name tells where it comes from: team-a's values are below 10, team-c's between 100 and 200, team-b's 1000 and
more, the namespace-less series 5000 and more; pod and node names are unique. Each escape is asked twice through
the one door (prometheus.query): as typed, where it does reach team-b (so the check below can see a leak), and as
rewritten by promql.scope or promql.for_user, where it must not.
"""

import math
import time

import pytest

from apps.accounts.models import Project
from apps.observability import prometheus as prom
from apps.observability import promql
from tests.factories import AdminFactory, ClusterFactory, UserFactory
from tests.helpers import grant

PODS = {
    "team-a": {"a-web-1": 1, "a-web-2": 2, "a-db-1": 3},
    "team-b": {"b-vault-1": 1001, "b-vault-2": 1002, "b-ledger-1": 1003},
    "team-c": {"c-api-1": 101, "c-api-2": 102},
}
NODE_OF = {"team-a": "node-a", "team-b": "node-b", "team-c": "node-c"}
WITHOUT_NAMESPACE = [
    ("tenancy_node_load", {"node": "node-x"}, 5001),
    ("tenancy_build_info", {"version": "v-secret"}, 7001),
]
# What no answer to team-a may hold: team-b's names and values, and anything of the series without a namespace.
FOREIGN_WORDS = {
    "team-b",
    "node-b",
    "node-x",
    "v-secret",
    "tenancy_node_load",
    "tenancy_build_info",
    *PODS["team-b"],
    *(str(v) for v in PODS["team-b"].values()),
}
FOREIGN_FROM = 1000


def series():
    for namespace, pods in PODS.items():
        for pod, value in pods.items():
            labels = {"namespace": namespace, "pod": pod}
            yield "tenancy_requests_total", labels, value
            yield "tenancy_memory_bytes", labels, value + 0.5
            yield "tenancy_pod_info", {**labels, "node": NODE_OF[namespace]}, 1000 if namespace == "team-b" else 1
    yield from WITHOUT_NAMESPACE


@pytest.fixture(scope="module")
def world(prometheus):
    """The series above, scraped for a few seconds (``offset 3s`` must find them), removed at the end."""
    for name, labels, value in series():
        prometheus.exporter.set(name, labels, value)
    prometheus.wait_for("count(tenancy_requests_total)", 8)
    prometheus.wait_for("count(tenancy_pod_info) + count(tenancy_node_load) + count(tenancy_build_info)", 10)
    time.sleep(4)
    yield prometheus
    for name, labels, _value in series():
        prometheus.exporter.remove(name, labels)


def foreign(samples: list[prom.Sample], allowed=("team-a",)) -> list[prom.Sample]:
    """The samples that show something of another namespace, or of the series without a namespace."""
    return [
        s
        for s in samples
        if s.labels.get("namespace", allowed[0]) not in allowed
        or FOREIGN_WORDS & set(s.labels.values())
        or (math.isfinite(s.value) and s.value >= FOREIGN_FROM)
    ]


def pods_in(samples: list[prom.Sample]) -> set[str]:
    return {s.labels["pod"] for s in samples if "pod" in s.labels}


# Escapes that reach team-b when asked as typed.
ESCAPES = [
    "tenancy_requests_total",
    'up or {namespace="team-b"}',
    "sum(tenancy_requests_total) or on() vector(1)",
    "max_over_time(tenancy_requests_total[5m:1s])",
    "last_over_time(tenancy_requests_total[1m:] offset 1s)",
    '{__name__=~".+"}',
    '{__name__=~".+", namespace=""}',
    'tenancy_requests_total{namespace=~".*"}',
    'tenancy_requests_total{namespace=~"team-a|team-b"}',
    'tenancy_requests_total{namespace!="team-a"}',
    'tenancy_requests_total{namespace="team-b"} or tenancy_requests_total{namespace="team-a"}',
    'count by (namespace) ({__name__=~".+"})',
    "tenancy_requests_total @ end()",
    "tenancy_requests_total offset 3s",
    "quantile_over_time(0.5, tenancy_requests_total[1m] @ end())",
    "topk(1000, tenancy_requests_total)",
    "sort_desc(tenancy_requests_total)",
    "sum without (namespace, pod) (tenancy_requests_total)",
    "tenancy_requests_total * on(namespace, pod) group_left(node) tenancy_pod_info",
    'sum(tenancy_requests_total{namespace="team-a"})'
    ' + on() group_left() max(tenancy_requests_total{namespace="team-b"})',
    'tenancy_requests_total unless tenancy_requests_total{namespace="team-a"}',
    'vector(scalar(max(tenancy_requests_total{namespace="team-b"})))',
    'count_values("value", tenancy_requests_total)',
    'label_replace(tenancy_requests_total, "tenant", "$1", "namespace", "(.*)")',
    'absent(no_such_metric{namespace="team-b"})',
    "tenancy_node_load",
    "tenancy_build_info * 1",
]


@pytest.mark.parametrize("query", ESCAPES)
def test_an_escape_reaches_team_b_as_typed_and_nothing_of_it_once_scoped(world, query):
    as_typed = prom.query(world.url, query)

    scoped = prom.query(world.url, promql.scope(query, ["team-a"]))

    assert foreign(as_typed), f"{query} should reach team-b's series as typed: {as_typed}"
    assert foreign(scoped) == []


@pytest.mark.parametrize(
    "query",
    [
        'absent(tenancy_requests_total{namespace="team-b"})',
        "tenancy_requests_total offset 1m",
        'tenancy_requests_total{pod="\\"} or {namespace=~\\".+\\"} or tenancy_requests_total{b=\\""}',
        "vector(1)",
    ],
)
@pytest.mark.parametrize("namespaces", [("team-a",), ("team-a", "team-c")], ids=["one", "two"])
def test_queries_that_find_nothing_of_team_b_as_typed_find_nothing_once_scoped_either(world, query, namespaces):
    answer = prom.query(world.url, promql.scope(query, namespaces))

    assert foreign(answer, namespaces) == []


@pytest.mark.parametrize(
    "query",
    [
        'label_replace(tenancy_requests_total{namespace="team-b"}, "namespace", "team-a", "", "")',
        'label_join(tenancy_requests_total, "namespace", "", "pod")',
        'count_values("namespace", tenancy_requests_total)',
    ],
)
def test_a_query_that_would_forge_the_namespace_label_is_refused(world, query):
    as_typed = prom.query(world.url, query)

    with pytest.raises(promql.PromQLError, match="writes the label namespace"):
        promql.scope(query, ["team-a"])
    assert foreign(as_typed)


@pytest.mark.parametrize(
    "query",
    [
        "tenancy_requests_total",
        "topk(1000, tenancy_requests_total)",
        '{__name__=~"tenancy_.+"}',
        "tenancy_requests_total * on(namespace, pod) group_left(node) tenancy_pod_info",
        "max_over_time(tenancy_memory_bytes[5m:1s] @ end())",
    ],
)
def test_a_scoped_query_still_answers_with_its_own_namespaces(world, query):
    one = prom.query(world.url, promql.scope(query, ["team-a"]))
    two = prom.query(world.url, promql.scope(query, ["team-c", "team-a"]))

    assert pods_in(one) == set(PODS["team-a"])
    assert pods_in(two) == set(PODS["team-a"]) | set(PODS["team-c"])
    assert foreign(two, ("team-a", "team-c")) == []


def test_absent_never_names_a_namespace_the_person_may_not_see(world):
    one = prom.query(world.url, promql.scope('absent(no_such_metric{namespace="team-b"})', ["team-a"]))
    two = prom.query(world.url, promql.scope('absent(no_such_metric{namespace="team-b"})', ["team-a", "team-c"]))

    assert [(s.labels, s.value) for s in one] == [({}, 1.0)]
    assert [(s.labels, s.value) for s in two] == [({}, 1.0)]


# A person, through for_user --------------------------------------------------------------------------------------


@pytest.fixture
def people(db):
    """A cluster whose team-a belongs to a project; a developer there, one of a project elsewhere, a cluster
    administrator, a platform administrator, and a person bound nowhere."""
    cluster, elsewhere = ClusterFactory(name="prod"), ClusterFactory(name="test")
    team_a = Project.objects.create(cluster=cluster, slug="a", name="Team A", namespaces=["team-a"])
    team_b_elsewhere = Project.objects.create(cluster=elsewhere, slug="b", name="Team B", namespaces=["team-b"])
    developer, outsider, operator = UserFactory(), UserFactory(), UserFactory()
    grant(developer, "developer", project=team_a)
    grant(developer, "developer", project=team_b_elsewhere)
    grant(outsider, "developer", project=team_b_elsewhere)
    grant(operator, "cluster-admin", cluster=cluster)
    return {
        "cluster": cluster,
        "developer": developer,
        "outsider": outsider,
        "operator": operator,
        "admin": AdminFactory(),
        "nobody": UserFactory(),
    }


def test_a_project_developer_reads_only_their_namespaces(world, people):
    escape = 'count by (namespace, pod) ({__name__=~".+"}) or on() tenancy_requests_total{namespace="team-b"}'

    for_workloads = promql.for_user(people["developer"], people["cluster"], escape)
    for_metrics = promql.for_user(people["developer"], people["cluster"], escape, capability="metrics.view")

    assert for_workloads == for_metrics == promql.scope(escape, ["team-a"])
    answer = prom.query(world.url, for_workloads)
    assert foreign(answer) == []
    assert pods_in(answer) == set(PODS["team-a"])
    assert foreign(prom.query(world.url, escape))


@pytest.mark.parametrize("person", ["operator", "admin"])
def test_someone_who_sees_the_whole_cluster_runs_the_query_as_written(world, people, person):
    query = 'sum by (namespace) ({__name__=~"tenancy_.+"})'

    as_run = promql.for_user(people[person], people["cluster"], query)

    assert as_run == query
    answer = prom.query(world.url, as_run)
    assert {s.labels.get("namespace") for s in answer} == {"team-a", "team-b", "team-c", None}


def test_the_whole_cluster_query_is_still_bounded_and_parsed(people):
    with pytest.raises(promql.PromQLError, match="at most 4000 characters"):
        promql.for_user(people["admin"], people["cluster"], "x" * 4001)
    with pytest.raises(promql.PromQLError, match="not valid PromQL"):
        promql.for_user(people["operator"], people["cluster"], "sum(x")


@pytest.mark.parametrize("person", ["outsider", "nobody"])
def test_a_person_without_a_namespace_in_the_cluster_is_refused(people, person):
    with pytest.raises(promql.PromQLError) as refused:
        promql.for_user(people[person], people["cluster"], "tenancy_requests_total")

    assert str(refused.value) == "You may not read the metrics of any namespace in this cluster."
