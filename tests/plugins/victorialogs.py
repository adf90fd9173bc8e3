"""pytest plugin: a real VictoriaLogs (being written)."""
