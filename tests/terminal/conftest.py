from tests.terminal.fixtures import shell_team, terminal_service  # noqa: F401 (fixtures)
