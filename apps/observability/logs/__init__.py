"""Pages of the observability app (see apps/observability/README.md)."""
