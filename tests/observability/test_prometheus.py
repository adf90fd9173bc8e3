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

    assert (
        str(refused.value)
        == f"Prometheus at {url} asks for credentials (HTTP 401); set them in the cluster's settings."
    )
    assert "s3cret" not in str(refused.value)


def test_no_url_is_a_sentence():
    with pytest.raises(prom.PrometheusError, match=r"No Prometheus URL is set for this cluster\."):
        prom.query("", "up")


@pytest.mark.django_db
def test_the_cluster_credentials_open_a_prometheus_behind_basic_auth(prometheus_with_password):
    from apps.observability import endpoints
    from tests.factories import ClusterFactory

    cluster = ClusterFactory(prometheus_url=prometheus_with_password.url)
    cluster.set_endpoint_auth("prometheus", username="ops", password="s3cret")
    cluster.save()
    cluster.refresh_from_db()

    assert "s3cret" not in cluster.prometheus_auth_encrypted
    assert prom.worst_value(endpoints.prometheus(cluster), "vector(7)") == 7
    assert "s3cret" not in repr(endpoints.prometheus(cluster))

    cluster.set_endpoint_auth("prometheus", username="ops", password="wrong")
    with pytest.raises(prom.PrometheusError) as refused:
        prom.query(endpoints.prometheus(cluster), "vector(1)")
    assert str(refused.value) == (
        f"Prometheus at {prometheus_with_password.url} refused Kubemate's credentials (HTTP 401); check them in the "
        "cluster's settings."
    )


def test_a_bearer_token_is_sent_as_authorization_and_never_shown():
    from apps.observability.endpoints import Endpoint

    endpoint = Endpoint(url="http://thanos-query.monitoring:9090", token="t0ken")
    assert endpoint.headers == {"Authorization": "Bearer t0ken"} and endpoint.auth is None
    assert "t0ken" not in repr(endpoint) and endpoint.is_thanos
    assert not Endpoint(url="http://prometheus:9090").is_thanos
