#!/usr/bin/env python
"""Kubemate's command-line utility for administrative tasks."""

import os
import sys

# Commands that serve or change data check the database first, so a wrong
# DATABASE_URL ends in one sentence rather than a stack trace.
NEEDS_DATABASE = {
    "runserver",
    "migrate",
    "createsuperuser",
    "demo_admin",
    "demo_data",
    "register_sandbox",
    "shell",
    "dbshell",
}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kubemate.settings")
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    if len(sys.argv) > 1 and sys.argv[1] in NEEDS_DATABASE:
        import django

        from kubemate.startup import require_database

        django.setup()
        require_database()
    try:
        execute_from_command_line(sys.argv)
    except OperationalError as exc:
        from kubemate.startup import StartupError

        raise StartupError(f"the database is not reachable ({str(exc).strip().splitlines()[-1]}).") from None


if __name__ == "__main__":
    main()
