"""The catalogue of checks: importing this module registers every check, so ``CATALOGUE`` is complete."""

from apps.inspection.checks import (  # noqa: F401 (registers the checks)
    apps,
    certificates,
    cluster,
    databases,
    hosts,
    security,
    storage,
    workloads,
)
from apps.inspection.checks.base import CATALOGUE, Check, Domain, Finding, ObjectCheck, Severity

__all__ = ["CATALOGUE", "Check", "Domain", "Finding", "ObjectCheck", "Severity"]
