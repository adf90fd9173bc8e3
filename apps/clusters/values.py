"""Kubernetes names, labels and quantities: the one place that knows their rules.

Names follow apimachinery's validation: a DNS-1123 label (namespaces, most object
names) is at most 63 lower-case letters, digits and '-', starting and ending with a
letter or digit; a DNS-1123 subdomain is at most 253 characters of such labels
joined by dots. A label key is an optional subdomain prefix and '/', then a name of
at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or
digit; a label value is empty or such a name.

Quantities ("250m", "2", "128Mi", "1e9") are read as numbers: CPU in millicores,
memory in bytes.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

# Also the pattern of database check constraints: changing it changes a migration.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_LABEL = re.compile(DNS_LABEL_PATTERN)
DNS_LABEL_MAX = 63
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_SUBDOMAIN_MAX = 253
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_NAME_MAX = 63


def is_dns_label(value: str) -> bool:
    return len(value) <= DNS_LABEL_MAX and bool(DNS_LABEL.fullmatch(value))


def is_dns_subdomain(value: str) -> bool:
    return len(value) <= DNS_SUBDOMAIN_MAX and bool(DNS_SUBDOMAIN.fullmatch(value))


def is_label_name(value: str) -> bool:
    """The name part of a label key (after any prefix and '/')."""
    return len(value) <= LABEL_NAME_MAX and bool(LABEL_NAME.fullmatch(value))


def is_label_prefix(value: str) -> bool:
    return is_dns_subdomain(value)


def is_label_key(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    return (not slash or is_label_prefix(prefix)) and is_label_name(name)


def is_label_value(value: str) -> bool:
    return value == "" or is_label_name(value)


# Quantities -----------------------------------------------------------------------------------

_SUFFIX = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]{0,2})$")


def parse_quantity(value) -> Decimal:
    """A Kubernetes quantity ("500m", "2", "128Mi", "1e9") as a number; 0 when absent or malformed."""
    if value in (None, ""):
        return Decimal(0)
    match = _QUANTITY.fullmatch(str(value).strip())
    if not match:
        return Decimal(0)
    number, suffix = match.groups()
    if suffix and suffix not in _SUFFIX:
        return Decimal(0)
    try:
        return Decimal(number) * Decimal(_SUFFIX[suffix] if suffix else 1)
    except InvalidOperation:
        return Decimal(0)


def millicores(value) -> int:
    """A CPU quantity ("250m", "2", "123456789n") in millicores, rounded to the nearest."""
    return int((parse_quantity(value) * 1000).to_integral_value(ROUND_HALF_EVEN))


def byte_count(value) -> int:
    """A memory quantity ("512Mi", "1Gi", "1000000") in bytes, rounded to the nearest."""
    return int(parse_quantity(value).to_integral_value(ROUND_HALF_EVEN))
