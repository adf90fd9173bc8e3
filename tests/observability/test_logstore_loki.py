"""The Loki backend of the log store door: LogQL rendered from the form, raw LogQL scoped to a person's namespaces,
and Loki's answers read.

Loki is AGPL-licensed and is not run here. Its answers are JSON files written from Loki's HTTP API reference
(tests/observability/fixtures/loki/), served by a small HTTP server started in this module (``FakeLoki``) that also
keeps every request's path, query arguments and headers, so the tests see what the door asked. Not a real Loki:
the LogQL strings below are checked for their text, not run.
"""

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from apps.observability import logstore
from apps.observability.logstore import LogQuery, logql
from apps.observability.logstore.lines import from_ns
from tests.factories import ClusterFactory

FIXTURES = Path(__file__).parent / "fixtures" / "loki"
START = datetime(2019, 9, 23, 19, 20, tzinfo=UTC)  # the fixtures' lines are of 2019-09-23 19:21 UTC
END = START + timedelta(minutes=5)
SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
WORKLOAD = f"^web(-{SAFE}{{1,10}}-{SAFE}{{5}}|-{SAFE}{{5}}|-[0-9]+)$"
ERROR_WORDS = "error|err|fatal|critical|crit|panic|emerg|emergency|alert|severe|e"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class FakeLoki:
    """Answers each path with what ``answers`` holds for it (status, body); keeps (path, args, headers) in
    ``seen``."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.seen: list[tuple[str, dict, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                args = {k: v[0] for k, v in parse_qs(parts.query).items()}
                fake.seen.append((parts.path, args, dict(self.headers)))
                status, body = fake.answers.get(parts.path, (404, b"404 page not found\n"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def loki():
    fake = FakeLoki()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def cluster(db, loki):
    cluster = ClusterFactory(logs_url=loki.url, logs_backend="loki")
    cluster.set_endpoint_auth("logs", username="reader", password="pw-not-shown", tenant="bank-prod")
    cluster.save()
    return cluster


# LogQL from the form ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "logql_text"),
    [
        ({}, '{namespace=~".+"}'),
        ({"namespaces": ("shop",)}, '{namespace="shop"}'),
        ({"namespaces": ("shop", "bank")}, '{namespace=~"^(shop|bank)$"}'),
        ({"namespaces": ("shop",), "pod": "web-1"}, '{namespace="shop", pod="web-1"}'),
        ({"namespaces": ("shop",), "workload": "web"}, f'{{namespace="shop", pod=~"{WORKLOAD}"}}'),
        ({"namespaces": ("shop",), "container": "proxy"}, '{namespace="shop", container="proxy"}'),
        ({"namespaces": ("shop",), "levels": ("error",)}, f'{{namespace="shop"}} | level=~"(?i)^({ERROR_WORDS})$"'),
        (
            {"namespaces": ("shop",), "levels": ("warning", "debug")},
            '{namespace="shop"} | level=~"(?i)^(warn|warning|w|debug|trace|dbg|verbose|d)$"',
        ),
        ({"namespaces": ("shop",), "text": "Card Declined"}, '{namespace="shop"} |~ "(?i)Card Declined"'),
        (
            {"namespaces": ("shop",), "text": 'say "hi" \\ 1.5$'},
            '{namespace="shop"} |~ "(?i)say \\"hi\\" \\\\\\\\ 1\\\\.5\\\\$"',
        ),
        ({"namespaces": ("shop",), "regex": "order-[0-9]+"}, '{namespace="shop"} |~ "order-[0-9]+"'),
        (
            {
                "namespaces": ("shop",),
                "pod": "web-1",
                "container": "web",
                "levels": ("error",),
                "text": "declined",
                "regex": "card|iban",
            },
            f'{{namespace="shop", pod="web-1", container="web"}} |~ "(?i)declined" |~ "card|iban" '
            f'| level=~"(?i)^({ERROR_WORDS})$"',
        ),
    ],
)
def test_logql_is_rendered_from_each_form_combination(fields, logql_text):
    query = logstore.query.check(LogQuery(start=START, end=END, **fields))

    assert logql.render(query) == logql_text


# Raw LogQL scoped ---------------------------------------------------------------------------------------------

SCOPED = [
    ('{app="x"}', '{app="x", namespace="mine"}'),
    ('{namespace=~".*"}', '{namespace=~".*", namespace="mine"}'),
    ('{namespace!="mine"}', '{namespace!="mine", namespace="mine"}'),
    ('{namespace="other"}', '{namespace="other", namespace="mine"}'),
    ('{app="x"} or {namespace="other"}', '{app="x", namespace="mine"} or {namespace="other", namespace="mine"}'),
    (
        'sum by (namespace) (count_over_time({app="x"}[5m])) or count_over_time({namespace="other"}[5m])',
        'sum by (namespace) (count_over_time({app="x", namespace="mine"}[5m])) '
        'or count_over_time({namespace="other", namespace="mine"}[5m])',
    ),
    ('{app="x\\"} or {namespace=\\"other"}', '{app="x\\"} or {namespace=\\"other", namespace="mine"}'),
    ('{app=`x\\`} |= `{namespace="other"}`', '{app=`x\\`, namespace="mine"} |= `{namespace="other"}`'),
    ('{app="x"} | line_format "{{.namespace}} {namespace=\\"other\\"}"', None),
    ('{ app = "x" , }', '{app="x", namespace="mine"}'),
    ("{}", '{namespace="mine"}'),
    (
        'label_replace(rate({app="x"} | json [1m]), "namespace", "other", "", "")',
        'label_replace(rate({app="x", namespace="mine"} | json [1m]), "namespace", "other", "", "")',
    ),
]


@pytest.mark.parametrize(("raw", "scoped"), SCOPED)
def test_every_stream_selector_of_a_raw_query_gets_the_namespace_matcher(raw, scoped):
    expected = scoped or raw.replace('{app="x"}', '{app="x", namespace="mine"}', 1)

    assert logql.scope(raw, ["mine"]) == expected


def test_several_namespaces_are_an_exact_anchored_alternation():
    assert logql.scope('{app="x"}', ["a", "b-c"]) == '{app="x", namespace=~"^(a|b-c)$"}'


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{app="x"', "a stream selector is not closed"),
        ('{app="x", {namespace="other"}}', "a stream selector holds something other than label matchers"),
        ("{app=x}", "a label matcher's value is not a string"),
        ('{app~"x"}', "a label matcher has no operator"),
        ('{app="x"} }', "a closing brace without its stream selector"),
        ('{app="x"} |= "unclosed', "a string is not closed"),
        ("{app='x'}", "a label matcher's value is not a string"),
        ('{app="x"} |= \'{namespace="other"}\'', "single quotes are not LogQL strings"),
        ('{app="x"} # {namespace="other"}', "comments (#) are not run"),
        ("sum(rate(x[5m]))", "it has no stream selector"),
    ],
)
def test_what_the_tokenizer_cannot_read_is_refused(raw, reason):
    with pytest.raises(logstore.LogStoreError) as refused:
        logql.scope(raw, ["mine"])

    assert str(refused.value) == f"Kubemate could not read this LogQL query ({reason}), so it is not run."


def test_deep_nesting_is_refused():
    with pytest.raises(logstore.LogStoreError, match="nests brackets 33 deep"):
        logql.scope("(" * 33 + '{app="x"}' + ")" * 33, ["mine"])


def test_a_raw_query_keeps_the_forms_filters_and_a_metric_query_is_refused_for_the_search():
    query = LogQuery(start=START, end=END, namespaces=("mine",), pod="web-1", text="boom", raw='{app="x"} | json')

    assert logql.render(query) == '{app="x", namespace="mine", pod="web-1"} | json |~ "(?i)boom"'
    with pytest.raises(logstore.LogStoreError, match="counts lines"):
        logql.render(LogQuery(start=START, end=END, namespaces=("mine",), raw='count_over_time({app="x"}[5m])'))


# Loki's answers -----------------------------------------------------------------------------------------------


def test_search_reads_a_streams_answer_and_sends_tenant_and_credentials(loki, cluster):
    loki.answers["/loki/api/v1/query_range"] = (200, fixture("query_range_streams.json"))

    page = logstore.search(cluster, LogQuery(start=START, end=END, namespaces=("shop",), limit=2))

    assert [line.line for line in page.lines] == [
        '{"msg":"charged","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}',
        "payment failed: card declined",
    ]
    first, second = page.lines
    assert first.time == from_ns(1569266497240578000) and first.time.tzinfo is not None
    assert first.stream == {"container": "web", "level": "info", "namespace": "shop", "pod": "web-7d9f8b6c5d-x2b4k"}
    assert first.stream_id == '{container="web", level="info", namespace="shop", pod="web-7d9f8b6c5d-x2b4k"}'
    assert (first.level, first.trace_id, first.fields["msg"]) == ("info", "4bf92f3577b34da6a3ce929d0e0e4736", "charged")
    assert second.level == "error"
    assert page.more is True and page.older_than == second.time
    path, args, headers = loki.seen[-1]
    assert path == "/loki/api/v1/query_range"
    assert args == {
        "query": '{namespace="shop"}',
        "start": str(int(START.timestamp()) * 10**9),
        "end": str(int(END.timestamp()) * 10**9),
        "limit": "3",
        "direction": "backward",
    }
    assert headers["X-Scope-OrgID"] == "bank-prod"
    assert headers["Authorization"].startswith("Basic ")


def test_histogram_reads_count_over_time_by_level(loki, cluster):
    loki.answers["/loki/api/v1/query_range"] = (200, fixture("query_range_matrix.json"))
    start = datetime.fromtimestamp(1569266400, UTC)

    hist = logstore.histogram(
        cluster, LogQuery(start=start, end=start + timedelta(minutes=5), namespaces=("shop",)), buckets=5
    )

    assert hist.step_seconds == 60
    assert [(t.timestamp(), counts) for t, counts in hist.buckets] == [
        (1569266400, {"error": 4, "warn": 2}),
        (1569266460, {"": 5}),
        (1569266520, {"error": 1}),
        (1569266580, {}),
        (1569266640, {}),
    ]
    _path, args, _headers = loki.seen[-1]
    assert args["query"] == 'sum by (level) (count_over_time({namespace="shop"} [60s]))'
    assert (args["start"], args["end"], args["step"]) == ("1569266460", "1569266700", "60s")


def test_labels_and_label_values_are_read_with_the_persons_selector(loki, cluster):
    loki.answers["/loki/api/v1/labels"] = (200, fixture("labels.json"))
    loki.answers["/loki/api/v1/label/pod/values"] = (200, fixture("label_values.json"))
    query = LogQuery(start=START, end=END, namespaces=("shop", "bank"))

    names = logstore.field_names(cluster, query)
    pods = logstore.values(cluster, "pod", query)

    assert names == ["__name__", "container", "level", "namespace", "pod"]
    assert pods == ["web-7d9f8b6c5d-q8r7z", "web-7d9f8b6c5d-x2b4k", "worker-0"]
    assert [args["query"] for _path, args, _headers in loki.seen] == ['{namespace=~"^(shop|bank)$"}'] * 2


def test_context_asks_the_lines_stream_before_and_after_it(loki, cluster):
    loki.answers["/loki/api/v1/query_range"] = (200, fixture("query_range_streams.json"))
    anchor = logstore.search(cluster, LogQuery(start=START, end=END, namespaces=("shop",))).lines[1]
    loki.seen.clear()

    logstore.context(cluster, anchor, before=3, after=2, namespaces=("shop",))

    (_p1, older, _h1), (_p2, newer, _h2) = loki.seen
    selector = '{container="web", level="error", namespace="shop", pod="web-7d9f8b6c5d-x2b4k", namespace="shop"}'
    assert (older["query"], older["direction"], older["limit"], older["end"]) == (
        selector,
        "backward",
        "3",
        "1569266495000000000",
    )
    assert (newer["query"], newer["direction"], newer["limit"], newer["start"]) == (
        selector,
        "forward",
        "3",
        "1569266495000000000",
    )


def test_probe_reads_the_version(loki, cluster):
    loki.answers["/loki/api/v1/status/buildinfo"] = (200, fixture("buildinfo.json"))
    loki.answers["/loki/api/v1/query_range"] = (
        200,
        b'{"status":"success","data":{"resultType":"streams","result":[]}}',
    )

    assert logstore.probe(cluster) == {"version": "3.4.2", "lag_seconds": None}
    assert logstore.backend_name(cluster) == "Loki"


@pytest.mark.parametrize(
    ("status", "body", "sentence"),
    [
        (
            400,
            b"parse error at line 1, col 12: syntax error: unexpected IDENTIFIER\n",
            "Loki refused the query: parse error at line 1, col 12: syntax error: unexpected IDENTIFIER",
        ),
        (401, b"no org id\n", "refused Kubemate's credentials (HTTP 401); check them in the cluster's settings."),
        (502, b"bad gateway", "answered HTTP 502: bad gateway"),
        (200, b"<html>not json", "answered something Kubemate could not read."),
        (200, b'{"status":"success","data":{"resultType":"streams","result":[{"values":[["x"]]}]}}', "could not read"),
    ],
)
def test_what_goes_wrong_is_a_sentence_without_credentials(loki, cluster, status, body, sentence):
    loki.answers["/loki/api/v1/query_range"] = (status, body)

    with pytest.raises(logstore.LogStoreError) as failed:
        logstore.search(cluster, LogQuery(start=START, end=END, namespaces=("shop",)))

    assert sentence in str(failed.value)
    assert "pw-not-shown" not in str(failed.value)


def test_a_stopped_loki_is_a_sentence(loki, cluster):
    loki.server.shutdown()
    loki.server.server_close()

    with pytest.raises(logstore.Unreachable) as stopped:
        logstore.search(cluster, LogQuery(start=START, end=END, namespaces=("shop",)))

    assert str(stopped.value) == (
        f"Loki at {loki.url} could not be reached; check that it runs and that the address in the cluster's "
        "settings is right."
    )


def test_an_answer_too_large_is_refused_before_it_is_parsed(loki, cluster, monkeypatch):
    monkeypatch.setattr("apps.observability.logstore.asking.MAX_ANSWER_BYTES", 1024)
    big = {
        "status": "success",
        "data": {"resultType": "streams", "result": [{"stream": {}, "values": [["1", "x" * 4096]]}]},
    }
    loki.answers["/loki/api/v1/query_range"] = (200, json.dumps(big).encode())

    with pytest.raises(logstore.LogStoreError, match="answered more than"):
        logstore.search(cluster, LogQuery(start=START, end=END, namespaces=("shop",)))


def test_a_download_pages_backwards_in_batches_without_repeating_the_boundary(loki, cluster, monkeypatch):
    monkeypatch.setattr("apps.observability.logstore.loki.MAX_BATCH", 2)
    ns = [1569266497000000000 - i * 10**9 for i in range(5)]
    ns[2] = ns[3] = ns[1] - 10**9  # two lines share a nanosecond across a batch boundary

    def answer_for(end: int, limit: int) -> bytes:
        values = [[str(t), f"line {i}"] for i, t in enumerate(ns) if t < end][:limit]
        return json.dumps(
            {
                "status": "success",
                "data": {"resultType": "streams", "result": [{"stream": {"namespace": "shop"}, "values": values}]},
            }
        ).encode()

    original = loki.server.RequestHandlerClass.do_GET

    def do_get(handler):
        args = {k: v[0] for k, v in parse_qs(urlsplit(handler.path).query).items()}
        loki.answers["/loki/api/v1/query_range"] = (200, answer_for(int(args["end"]), int(args["limit"])))
        original(handler)

    loki.server.RequestHandlerClass.do_GET = do_get

    got = [
        line.line for line in logstore.stream(cluster, LogQuery(start=START, end=END, namespaces=("shop",)), limit=4)
    ]

    assert got[:2] == ["line 0", "line 1"]
    assert sorted(got[2:]) == ["line 2", "line 3"]  # the two of one nanosecond, each once
    assert [args["limit"] for _path, args, _headers in loki.seen] == ["2", "2", "2"]
