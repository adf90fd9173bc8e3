"""Log store tenancy against a real VictoriaLogs: escape attempts typed by a project member find nothing of another
namespace.

Three namespaces hold lines: team-a's (3 lines, the member's project), team-b's (100 lines, each saying SECRET-B)
and team-c's. Every escape is asked twice: as typed, with no tenancy, where it does reach team-b (so the check
below can see a leak), and through ``for_user`` and the door as the team-a developer, where nothing of team-b may
come back: no row naming team-b, its pods or SECRET-B, and no count of 50 or more (team-a has 3 lines; a count
that large could only be made of team-b's). Rows are read as the store answers the door's own request
(``victorialogs.rows``, stats rows included) and as lines (``search``).
"""

from datetime import UTC, datetime, timedelta

import pytest

from apps.accounts.models import Project
from apps.observability import logstore
from apps.observability.endpoints import logs as logs_endpoint
from apps.observability.logstore import LogQuery
from apps.observability.logstore import victorialogs as vl
from tests.factories import AdminFactory, ClusterFactory, UserFactory
from tests.helpers import grant, unique

A, B, C = unique("team-a"), unique("team-b"), unique("team-c")
B_POD = unique("vault")
FOREIGN_WORDS = (B, C, B_POD, "SECRET-B", "SECRET-C")
FOREIGN_COUNT = 50
MS = timedelta(milliseconds=1)


@pytest.fixture(scope="module")
def world(victorialogs):
    now = datetime.now(UTC) - timedelta(minutes=2)
    lines = [
        *({"namespace": A, "pod": "a-web-1", "line": f"hello from a {i}", "time": now + i * MS} for i in range(3)),
        *(
            {
                "namespace": B,
                "pod": B_POD,
                "container": "app",
                "line": f"SECRET-B ledger {i} hello",
                "time": now + i * MS,
            }
            for i in range(100)
        ),
        *({"namespace": C, "pod": "c-api-1", "line": f"SECRET-C {i} hello", "time": now + i * MS} for i in range(60)),
    ]
    victorialogs.push(lines)
    victorialogs.wait_for(f'{{namespace in ("{A}","{B}","{C}")}}', 163)
    WORLD_TIME["pushed"] = now
    return victorialogs


WORLD_TIME: dict[str, datetime] = {}


def foreign(rows: list[dict]) -> list[dict]:
    """The rows that show something of another namespace."""
    found = []
    for row in rows:
        values = [str(v) for v in row.values()]
        large = [v for v in values if v.isdigit() and int(v) >= FOREIGN_COUNT]
        if large or any(word in value for word in FOREIGN_WORDS for value in values):
            found.append(row)
    return found


def b_stream_id(world) -> str:
    return world.query(f'{{namespace="{B}"}} | limit 1', start="1h")[0]["_stream_id"]


ESCAPES = [
    "*",
    "hello",
    "SECRET-B or hello",
    "hello or SECRET-B",
    f'{{namespace="{B}"}}',
    '{namespace=~".*"}',
    f'{{namespace=~".+"}} or {{namespace="{B}"}}',
    f'_stream:{{namespace="{B}"}}',
    f'_stream:{{namespace="{B}"}} or _stream:{{namespace="{A}"}}',
    f'{{namespace!="{A}"}}',
    f'not {{namespace="{A}"}}',
    f"!{{namespace={A}}}",
    f"namespace:{B}",
    f'namespace:="{B}" or *',
    f'namespace:~"{B[:6]}.*"',
    'pod:~".*"',
    "_stream_id:STREAM_B",
    f"* | union ({{namespace={B}}})",
    f'* | union ({{namespace="{B}"}} | stats count() as n)',
    f'hello | join by (container) ({{namespace="{B}"}} | fields container, _msg)',
    f'* | join by (_msg) ({{namespace="{B}"}}) prefix "b_"',
    f'pod:in({{namespace="{B}"}} | fields pod) or hello',
    f'_msg:in({{namespace="{B}"}} | fields _msg) or SECRET-B',
    "* | stream_context before 200 after 200",
    f'{{namespace="{B}"}} | stream_context before 10 after 10',
    "* | stats by (namespace) count() as n",
    "* | stats count() as n",
    f'{{namespace="{B}"}} | stats count() as n',
    "* | field_values namespace",
    "* | facets",
    "* | top 10 by (namespace)",
    f"options(ignore_global_time_filter=true) {{namespace={B}}}",
    f'* | union (options(ignore_global_time_filter=true) {{namespace="{B}"}})',
    '_msg:"a\\"b" or SECRET-B',
    "`raw\\` or SECRET-B",
    f'{{namespace="{A}\\"}} or {{namespace=\\"{B}"}} or SECRET-B',
    "* # a comment\n or SECRET-B",
    f"* | union (* | union ({{namespace={B}}}))",
]


@pytest.fixture
def people(db, world):
    """A cluster whose team-a namespace belongs to a project; its developer, a viewer (no logs.query), a person of
    another cluster's project, a cluster administrator and a platform administrator."""
    cluster, elsewhere = ClusterFactory(logs_url=world.url, logs_backend="victorialogs"), ClusterFactory()
    team_a = Project.objects.create(cluster=cluster, slug=unique("a"), name="Team A", namespaces=[A])
    team_b_elsewhere = Project.objects.create(cluster=elsewhere, slug=unique("b"), name="Team B", namespaces=[B])
    developer, viewer, outsider, operator = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    grant(developer, "developer", project=team_a)
    grant(developer, "developer", project=team_b_elsewhere)
    grant(viewer, "viewer", project=team_a)
    grant(outsider, "developer", project=team_b_elsewhere)
    grant(operator, "cluster-admin", cluster=cluster)
    return {
        "cluster": cluster,
        "developer": developer,
        "viewer": viewer,
        "outsider": outsider,
        "operator": operator,
        "admin": AdminFactory(),
    }


def window():
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(seconds=5)


@pytest.mark.parametrize("raw", ESCAPES)
def test_a_raw_logsql_escape_reaches_team_b_as_typed_and_nothing_of_it_for_a_project_member(world, people, raw):
    raw = raw.replace("STREAM_B", b_stream_id(world))
    start, end = window()
    # Typed as is over the seconds of this module's lines only: lines other tests pushed to the same store must not
    # crowd team-b's out of the first thousand rows.
    pushed = WORLD_TIME["pushed"]
    around = {"start": (pushed - timedelta(seconds=1)).isoformat(), "end": (pushed + timedelta(seconds=2)).isoformat()}
    as_typed = world.query(raw, limit="1000", **around)
    assert foreign(as_typed), "the escape must reach team-b when typed without tenancy"

    query = logstore.for_user(people["developer"], people["cluster"], LogQuery(start, end, raw=raw, limit=1000))

    assert query.namespaces == (A,)
    assert foreign(vl.rows(logs_endpoint(people["cluster"]), query)) == []
    page = logstore.search(people["cluster"], query)
    assert {line.stream.get("namespace") for line in page.lines} <= {A}
    assert not [line for line in page.lines if any(word in line.line for word in FOREIGN_WORDS)]


def test_the_form_fields_of_a_project_member_find_only_their_namespace(world, people):
    start, end = window()
    query = logstore.for_user(people["viewer"], people["cluster"], LogQuery(start, end, text="hello", limit=1000))

    page = logstore.search(people["cluster"], query)

    assert sorted(line.line for line in page.lines) == [f"hello from a {i}" for i in range(3)]


def test_every_door_keeps_a_project_member_inside_their_namespace(world, people):
    start, end = window()
    cluster = people["cluster"]
    raw = f'{{namespace="{B}"}} or * | union ({{namespace="{B}"}})'
    query = logstore.for_user(people["developer"], cluster, LogQuery(start, end, raw=raw, limit=1000))
    model = logstore.for_user(people["developer"], cluster, LogQuery(start, end, limit=1000))

    hist = logstore.histogram(cluster, model, buckets=10)
    streamed = list(logstore.stream(cluster, query, limit=1000))
    polled = logstore.poll(cluster, query, after=start)
    namespaces = logstore.values(cluster, "namespace", model)
    pods = logstore.values(cluster, "pod", model)
    b_line = logstore.search(cluster, LogQuery(start, end, namespaces=(B,))).lines[0]
    before, after = logstore.context(cluster, b_line, before=5, after=5, namespaces=(A,))

    assert sum(sum(counts.values()) for _t, counts in hist.buckets) == 3
    assert {line.stream["namespace"] for line in streamed + polled} == {A}
    assert (namespaces, pods) == ([A], ["a-web-1"])
    assert before == after == []


def test_asking_for_a_namespace_one_may_not_read_is_refused(people):
    start, end = window()

    with pytest.raises(logstore.LogStoreError) as refused:
        logstore.for_user(people["developer"], people["cluster"], LogQuery(start, end, namespaces=(A, B)))

    assert str(refused.value) == f"You may not read the logs of namespace {B}."


def test_a_raw_query_needs_logs_query_and_a_person_without_namespaces_is_refused(people):
    start, end = window()

    with pytest.raises(logstore.LogStoreError) as viewer:
        logstore.for_user(people["viewer"], people["cluster"], LogQuery(start, end, raw="*"))
    with pytest.raises(logstore.LogStoreError) as outsider:
        logstore.for_user(people["outsider"], people["cluster"], LogQuery(start, end))

    assert str(viewer.value) == "You may not run log queries in this cluster."
    assert str(outsider.value) == "You may not read the logs of any namespace in this cluster."


@pytest.mark.parametrize("person", ["operator", "admin"])
def test_someone_who_sees_the_whole_cluster_runs_the_query_as_written(world, people, person):
    start, end = window()

    query = logstore.for_user(people[person], people["cluster"], LogQuery(start, end, raw=f"namespace:{B}"))

    assert query.namespaces == ()
    assert len(logstore.search(people["cluster"], query).lines) == 100


def test_the_refusal_is_stored_as_a_sentence_read_later_in_the_readers_language(people):
    from apps.core import deferred

    start, end = window()
    with pytest.raises(logstore.LogStoreError) as refused:
        logstore.for_user(people["outsider"], people["cluster"], LogQuery(start, end))

    assert deferred.is_deferred(refused.value.stored)
    assert deferred.render(refused.value.stored) == str(refused.value)
