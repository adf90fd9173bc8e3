"""Kubernetes names, labels and quantities: one module, the rules apimachinery applies."""

from decimal import Decimal

from apps.clusters.values import (
    byte_count,
    is_dns_label,
    is_dns_subdomain,
    is_label_key,
    is_label_value,
    millicores,
    parse_quantity,
)


def test_quantities_convert_to_millicores_and_bytes():
    assert [millicores(q) for q in ("250m", "2", "123456789n", "1500u", "0.5")] == [250, 2000, 123, 2, 500]
    assert [byte_count(q) for q in ("512Mi", "1Gi", "1000", "2k", "1.5Ki")] == [536870912, 1073741824, 1000, 2000, 1536]


def test_quantity_forms_and_malformed_values():
    assert parse_quantity("1e3") == Decimal(1000)
    assert parse_quantity("128Mi") == Decimal(128 * 2**20)
    assert parse_quantity(" 2 ") == Decimal(2)
    assert [parse_quantity(v) for v in (None, "", "abc", "5x", "1Zi")] == [Decimal(0)] * 5
    assert millicores(None) == 0
    assert byte_count("nonsense") == 0


def test_dns_labels_are_63_lower_case_characters_at_most():
    assert is_dns_label("payments-api")
    assert is_dns_label("a" * 63)
    assert not is_dns_label("a" * 64)
    for bad in ("", "Payments", "-api", "api-", "pay_ments", "pay.ments", "payments\n"):
        assert not is_dns_label(bad), bad


def test_dns_subdomains_join_labels_with_dots_up_to_253():
    assert is_dns_subdomain("example.com")
    assert is_dns_subdomain(".".join(["a" * 63] * 3) + ".abc")  # 195 characters
    assert not is_dns_subdomain("a" * 254)
    for bad in ("", "Example.com", "a..b", ".example.com", "example.com."):
        assert not is_dns_subdomain(bad), bad


def test_label_keys_have_an_optional_subdomain_prefix_and_a_63_character_name():
    for good in ("app", "App_Name.v1", "example.com/tier", "kubernetes.io/os", "a" * 63, "x/" + "a" * 63):
        assert is_label_key(good), good
    for bad in ("", "a" * 64, "-app", "app-", "/app", "Example.com/app", "a..b/app", "example.com/", "a/b/c"):
        assert not is_label_key(bad), bad


def test_label_values_may_be_empty_and_are_63_characters_at_most():
    for good in ("", "web", "v1.2_3-rc", "A" * 63):
        assert is_label_value(good), good
    for bad in ("a" * 64, "-web", "web.", "a b", "x/y", "web\n"):
        assert not is_label_value(bad), bad
