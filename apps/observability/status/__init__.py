"""The observability stack's status per cluster (see apps/observability/README.md)."""
