"""pytest plugin: a real Jaeger (being written)."""
