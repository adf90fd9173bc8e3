"""The log store door against a real VictoriaLogs (tests/plugins/victorialogs.py): search from the form's fields,
context, the live tail's poll, downloads, the histogram, values, probe, bounds and sentences.

Each test pushes its lines under a namespace of its own (``unique``), so it reads exactly what it pushed.
"""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from apps.observability import logstore
from apps.observability.logstore import LogQuery
from tests.factories import ClusterFactory
from tests.helpers import unique

pytestmark = pytest.mark.django_db
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def cluster(victorialogs):
    return ClusterFactory(logs_url=victorialogs.url, logs_backend="victorialogs")


def window(minutes=30) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(minutes=minutes), now + timedelta(seconds=5)


def lines_of(ns, pod, level, texts, *, start, step=timedelta(milliseconds=10), container="web"):
    return [
        {"namespace": ns, "pod": pod, "container": container, "level": level, "line": text, "time": start + i * step}
        for i, text in enumerate(texts)
    ]


def test_a_query_from_the_form_returns_exactly_the_lines_of_that_pod_and_level(victorialogs, cluster):
    ns = unique("shop")
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    wanted = [f"payment failed for order {i}" for i in range(5)]
    victorialogs.push(
        [
            *lines_of(ns, "web-1", "error", wanted, start=t0),
            *lines_of(ns, "web-1", "info", ["payment ok"] * 3, start=t0),
            *lines_of(ns, "web-2", "error", ["payment failed elsewhere"] * 4, start=t0),
            *lines_of(ns, "web-1", "error", ["from the sidecar"], start=t0, container="proxy"),
        ]
    )
    victorialogs.wait_for(f'{{namespace="{ns}"}}', 13)
    start, end = window()

    page = logstore.search(
        cluster, LogQuery(start=start, end=end, namespaces=(ns,), pod="web-1", container="web", levels=("error",))
    )

    assert [line.line for line in page.lines] == list(reversed(wanted))  # newest first
    assert {(line.stream["namespace"], line.stream["pod"], line.level) for line in page.lines} == {
        (ns, "web-1", "error")
    }
    assert page.more is False and page.older_than is None
    assert len({line.cursor for line in page.lines}) == 5


def test_levels_are_normalised_and_text_is_case_insensitive(victorialogs, cluster):
    ns = unique("shop")
    t0 = datetime.now(UTC) - timedelta(minutes=2)
    victorialogs.push(
        [
            *lines_of(ns, "api-1", "WARNING", ["Disk Nearly FULL"], start=t0),
            *lines_of(ns, "api-1", "warn", ["disk nearly full again"], start=t0 + timedelta(seconds=1)),
            *lines_of(ns, "api-1", "warn", ["something else"], start=t0 + timedelta(seconds=2)),
            *lines_of(ns, "api-1", "info", ["disk nearly full, says info"], start=t0 + timedelta(seconds=3)),
        ]
    )
    victorialogs.wait_for(f'{{namespace="{ns}"}}', 4)
    start, end = window()

    page = logstore.search(
        cluster, LogQuery(start=start, end=end, namespaces=(ns,), levels=("warning",), text="disk nearly FULL")
    )

    assert [line.line for line in page.lines] == ["disk nearly full again", "Disk Nearly FULL"]
    assert {line.level for line in page.lines} == {"warn"}


def test_a_workload_finds_its_pods_by_the_names_kubernetes_gives_them(victorialogs, cluster):
    ns = unique("shop")
    t0 = datetime.now(UTC) - timedelta(minutes=2)
    pods = {"web-7d9f8b6c5d-x2b4k": True, "web-0": True, "web-q8r7z": True, "web-db-0": False, "webx-0": False}
    victorialogs.push([*(lines_of(ns, pod, "info", [f"hello from {pod}"], start=t0)[0] for pod in pods)])
    victorialogs.wait_for(f'{{namespace="{ns}"}}', len(pods))
    start, end = window()

    page = logstore.search(cluster, LogQuery(start=start, end=end, namespaces=(ns,), workload="web"))

    assert {line.stream["pod"] for line in page.lines} == {pod for pod, mine in pods.items() if mine}


def test_paging_older_continues_where_the_page_stopped(victorialogs, cluster):
    ns = unique("shop")
    t0 = datetime.now(UTC) - timedelta(minutes=3)
    texts = [f"line {i:02d}" for i in range(25)]
    victorialogs.push(lines_of(ns, "web-1", "info", texts, start=t0, step=timedelta(seconds=1)))
    victorialogs.wait_for(f'{{namespace="{ns}"}}', 25)
    start, end = window()

    first = logstore.search(cluster, LogQuery(start=start, end=end, namespaces=(ns,), limit=10))
    second = logstore.search(cluster, LogQuery(start=start, end=first.older_than, namespaces=(ns,), limit=10))
    third = logstore.search(cluster, LogQuery(start=start, end=second.older_than, namespaces=(ns,), limit=10))

    assert [line.line for line in first.lines + second.lines + third.lines] == list(reversed(texts))
    assert (first.more, second.more, third.more) == (True, True, False)


def test_fields_trace_ids_and_levels_are_read_from_json_logfmt_and_plain_lines(victorialogs, cluster):
    ns = unique("shop")
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    texts = [
        f'{{"msg":"charged","amount":12.5,"trace_id":"{TRACE}","user":{{"id":7}}}}',
        f'level=warn msg="slow call" traceID={TRACE.upper()} took=2s',
        f"plain text with trace_id={TRACE} inside",
        "plain text without any id",
    ]
    victorialogs.push(lines_of(ns, "web-1", "info", texts, start=t0, step=timedelta(seconds=1)))
    victorialogs.wait_for(f'{{namespace="{ns}"}}', 4)
    start, end = window()

    by_text = {line.line: line for line in logstore.search(cluster, LogQuery(start, end, namespaces=(ns,))).lines}

    json_line, logfmt_line, plain, other = (by_text[t] for t in texts)
    assert json_line.fields["msg"] == "charged" and json_line.fields["user.id"] == "7"
    assert json_line.fields["amount"] == "12.5"
    assert logfmt_line.fields["msg"] == "slow call" and logfmt_line.fields["took"] == "2s"
    assert [json_line.trace_id, logfmt_line.trace_id, plain.trace_id, other.trace_id] == [TRACE, TRACE, TRACE, ""]
    assert json_line.level == "info"  # the stream's label comes first
    assert json_line.stream_id and json_line.time.tzinfo is not None


def test_context_returns_the_neighbours_of_a_line_in_order(victorialogs, cluster):
    ns = unique("shop")
    t0 = datetime.now(UTC) - timedelta(minutes=4)
    texts = [f"step {i:02d}" for i in range(30)]
    victorialogs.push(
        [
            *lines_of(ns, "web-1", "info", texts, start=t0, step=timedelta(seconds=1)),
            *lines_of(ns, "web-2", "info", ["other pod"] * 5, start=t0, step=timedelta(seconds=1)),
        ]
    )
    victorialogs.wait_for(f'{{namespace="{ns}"}}', 35)
    start, end = window()
    anchor = next(
        line
        for line in logstore.search(cluster, LogQuery(start, end, namespaces=(ns,), pod="web-1", limit=50)).lines
        if line.line == "step 15"
    )

    before, after = logstore.context(cluster, anchor, before=5, after=3, namespaces=(ns,))

    assert [line.line for line in before] == ["step 10", "step 11", "step 12", "step 13", "step 14"]
    assert [line.line for line in after] == ["step 15", "step 16", "step 17", "step 18"]
    assert after[0].cursor == anchor.cursor


def test_poll_delivers_a_line_pushed_after_it_started_within_two_seconds(victorialogs, cluster):
    ns = unique("shop")
    started = datetime.now(UTC)
    victorialogs.push(lines_of(ns, "web-1", "info", ["before the tail"], start=started - timedelta(seconds=30)))
    victorialogs.wait_for(f'{{namespace="{ns}"}}', 1)
    query = LogQuery(start=started - timedelta(minutes=1), end=started + timedelta(minutes=1), namespaces=(ns,))

    pushed_at = []

    def push_later():
        time.sleep(0.5)
        pushed_at.append(time.monotonic())
        victorialogs.push(lines_of(ns, "web-1", "info", ["arrived live"], start=datetime.now(UTC)))

    threading.Thread(target=push_later).start()
    found = []
    deadline = time.monotonic() + 10
    while not found and time.monotonic() < deadline:
        found = logstore.poll(cluster, query, after=started)
        if not found:
            time.sleep(0.2)
    delivered = time.monotonic()

    assert [line.line for line in found] == ["arrived live"]
    assert delivered - pushed_at[0] < 2
    again = logstore.poll(cluster, query, after=found[0].time, seen={found[0].cursor})
    assert again == []


def test_a_download_stream_stops_at_its_limit_newest_first(victorialogs, cluster):
    ns = unique("shop")
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    victorialogs.push(lines_of(ns, "web-1", "info", [f"n{i:04d}" for i in range(1500)], start=t0))
    victorialogs.wait_for(f'{{namespace="{ns}"}}', 1500)
    start, end = window()

    streamed = logstore.stream(cluster, LogQuery(start, end, namespaces=(ns,)), limit=1200)

    assert not isinstance(streamed, list)
    got = [line.line for line in streamed]
    assert got == [f"n{i:04d}" for i in range(1499, 299, -1)]


def test_histogram_counts_by_level_match_what_was_pushed(victorialogs, cluster):
    ns = unique("shop")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    t0 = now - timedelta(minutes=10)
    victorialogs.push(
        [
            *lines_of(ns, "web-1", "error", ["e"] * 7, start=t0 + timedelta(seconds=5)),
            *lines_of(ns, "web-1", "warning", ["w"] * 3, start=t0 + timedelta(seconds=5)),
            *lines_of(ns, "web-1", "info", ["i"] * 11, start=t0 + timedelta(minutes=4, seconds=5)),
            *lines_of(ns, "web-1", "chatty", ["?"] * 2, start=t0 + timedelta(minutes=4, seconds=5)),
        ]
    )
    victorialogs.wait_for(f'{{namespace="{ns}"}}', 23)

    hist = logstore.histogram(cluster, LogQuery(start=t0, end=now, namespaces=(ns,)), buckets=10)

    assert hist.step_seconds == 60
    assert len(hist.buckets) == 10
    by_start = dict(hist.buckets)
    assert by_start[t0] == {"error": 7, "warn": 3}
    assert by_start[t0 + timedelta(minutes=4)] == {"info": 11, "": 2}
    assert sum(sum(c.values()) for _t, c in hist.buckets) == 23


def test_values_list_the_form_choices_of_the_namespaces_asked(victorialogs, cluster):
    ns, other = unique("shop"), unique("bank")
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    victorialogs.push(
        [
            *lines_of(ns, "web-1", "error", ["a"], start=t0),
            *lines_of(ns, "web-2", "WARNING", ["b"], start=t0, container="proxy"),
            *lines_of(other, "vault-1", "info", ["c"], start=t0),
        ]
    )
    victorialogs.wait_for(f'{{namespace in ("{ns}","{other}")}}', 3)
    start, end = window()
    query = LogQuery(start, end, namespaces=(ns,))

    assert logstore.values(cluster, "pod", query) == ["web-1", "web-2"]
    assert logstore.values(cluster, "container", query) == ["proxy", "web"]
    assert logstore.values(cluster, "level", query) == ["error", "warn"]
    assert logstore.values(cluster, "namespace", query) == [ns]
    with pytest.raises(logstore.LogStoreError, match="does not list the values of password"):
        logstore.values(cluster, "password", query)


def test_probe_gives_the_version_and_the_ingestion_lag(victorialogs, cluster):
    ns = unique("shop")
    victorialogs.push([{"namespace": ns, "pod": "web-1", "line": "fresh"}])
    victorialogs.wait_for(f'{{namespace="{ns}"}}', 1)

    found = logstore.probe(cluster)

    assert found["version"] == "v1.52.2"
    assert found["lag_seconds"] is not None and 0 <= found["lag_seconds"] < 60
    assert logstore.backend_name(cluster) == "VictoriaLogs"


def test_the_store_stopped_is_a_sentence(victorialogs, cluster):
    start, end = window()
    victorialogs.stop()
    try:
        with pytest.raises(logstore.Unreachable) as stopped:
            logstore.search(cluster, LogQuery(start, end, namespaces=("shop",)))
        with pytest.raises(logstore.LogStoreError.Unreachable):
            list(logstore.stream(cluster, LogQuery(start, end), limit=10))
    finally:
        victorialogs.start()

    assert str(stopped.value) == (
        f"VictoriaLogs at {victorialogs.url} could not be reached; check that it runs and that the address in the "
        "cluster's settings is right."
    )
    assert logstore.search(cluster, LogQuery(start, end, namespaces=("shop",))).lines == []


def test_no_address_is_a_sentence(db):
    start, end = window()
    with pytest.raises(logstore.NotConfigured, match="No log store URL is set for this cluster"):
        logstore.search(ClusterFactory(logs_url=""), LogQuery(start, end))


def test_a_query_victorialogs_cannot_read_is_refused_with_its_reason(victorialogs, cluster):
    start, end = window()

    with pytest.raises(logstore.LogStoreError) as refused:
        logstore.search(cluster, LogQuery(start, end, raw="foo(("))

    assert str(refused.value).startswith("VictoriaLogs refused the query: cannot parse")
    assert len(str(refused.value)) < 600


def test_credentials_and_tenant_travel_in_headers_and_never_in_sentences(victorialogs, db):
    cluster = ClusterFactory(logs_url=victorialogs.url, logs_backend="victorialogs")
    cluster.set_endpoint_auth("logs", username="ops", password="s3cret-pw", tenant="7:3")
    cluster.save()
    ns = unique("shop")
    victorialogs.push([{"namespace": ns, "pod": "web-1", "line": "default tenant"}])
    victorialogs.wait_for(f'{{namespace="{ns}"}}', 1)
    start, end = window()

    page = logstore.search(cluster, LogQuery(start, end, namespaces=(ns,)))

    assert page.lines == []  # tenant 7:3 holds nothing of the default tenant's (0:0)
    victorialogs.stop()
    try:
        with pytest.raises(logstore.Unreachable) as stopped:
            logstore.search(cluster, LogQuery(start, end, namespaces=(ns,)))
    finally:
        victorialogs.start()
    assert "s3cret-pw" not in str(stopped.value) and "s3cret-pw" not in repr(stopped.value.__dict__)


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"raw": "x" * 4001}, "The query is 4001 characters long; Kubemate runs queries of at most 4000 characters."),
        ({"raw": "(" * 40 + "x" + ")" * 40}, "The query nests brackets 40 deep"),
        ({"raw": 'error "unclosed'}, 'The query has a string that is not closed (").'),
        ({"limit": 5001}, "Ask for between 1 and 5000 lines."),
        ({"namespaces": ("Not_A_Namespace",)}, "A namespace of the search is not a valid namespace name."),
        ({"pod": 'x"} or {namespace="b'}, "is not a valid pod or workload name."),
        ({"levels": ("loud",)}, "Choose levels among error, warn, info and debug."),
        ({"text": "a\u2063b"}, "invisible or control character (U+2063)"),
    ],
)
def test_what_cannot_be_asked_is_refused_before_the_store_is_asked(cluster, changes, sentence):
    start, end = window()

    with pytest.raises(logstore.LogStoreError) as refused:
        logstore.search(cluster, LogQuery(start=start, end=end, **changes))

    assert sentence in str(refused.value)
