"""Instant queries against a real Prometheus: values, no data, refused queries, unreachable servers, credentials."""

import pytest

from apps.observability import prometheus as prom


def test_the_highest_value_of_every_series_is_judged(metrics):
    metrics.exporter.set("app_error_ratio", {"service": "a"}, 0.02)
    metrics.exporter.set("app_error_ratio", {"service": "b"}, 0.07)
    metrics.wait_for("max(app_error_ratio)", 0.07)

    samples = prom.query(metrics.url, "app_error_ratio")

    assert sorted((s.labels["service"], s.value) for s in samples) == [("a", 0.02), ("b", 0.07)]
    assert prom.worst_value(metrics.url, "app_error_ratio") == 0.07


def test_a_scalar_answer_is_one_value(metrics):
    assert prom.worst_value(metrics.url, "scalar(vector(0.25))") == 0.25


def test_no_series_and_nan_are_no_data(metrics):
    with pytest.raises(prom.NoData, match=r"Prometheus returned no data for the query\."):
        prom.worst_value(metrics.url, 'app_error_ratio{service="nobody"}')
    with pytest.raises(prom.NoData):
        prom.worst_value(metrics.url, "vector(0) / vector(0)")


def test_a_query_prometheus_cannot_parse_is_refused_with_its_own_reason(metrics):
    with pytest.raises(prom.PrometheusError) as refused:
        prom.query(metrics.url, "sum(rate(http_requests_total[1m])")

    assert str(refused.value).startswith(f"Prometheus at {metrics.url} refused the query: ")
    assert "parse error" in str(refused.value)


def test_an_unreachable_prometheus_is_named_without_its_password():
    with pytest.raises(prom.PrometheusError) as unreachable:
        prom.query("http://ops:s3cret@127.0.0.1:9/prometheus", "up")

    assert str(unreachable.value) == "Prometheus at http://127.0.0.1:9/prometheus could not be reached."
    assert "s3cret" not in str(unreachable.value)


def test_a_prometheus_that_asks_for_a_password_is_a_sentence(prometheus_with_password):
    url = prometheus_with_password.url

    with pytest.raises(prom.PrometheusError) as refused:
        prom.query(url.replace("http://", "http://ops:s3cret@"), "vector(1)")

    assert str(refused.value) == f"Prometheus at {url} asks for credentials (HTTP 401); Kubemate connects without any."
    assert "s3cret" not in str(refused.value)


def test_no_url_is_a_sentence():
    with pytest.raises(prom.PrometheusError, match=r"No Prometheus URL is set for this cluster\."):
        prom.query("", "up")
