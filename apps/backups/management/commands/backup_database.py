"""Back up Kubemate's own database now, in this process, with a database plan::

    manage.py backup_database --plan NAME --as USER [--no-input]

The person of ``--as`` proves it with their password (as ``restore_database`` asks it) and must be a superuser or
hold ``backups.admin``. The backup is the plan's like a scheduled one (a Backup row, a Job, audit events, the plan's
retention); the command prints its key, size and SHA-256, and exits non-zero with the sentence when it fails.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from apps.backups import services
from apps.backups.management.commands.restore_database import prove
from apps.backups.models import Kind, Plan
from apps.core.deferred import N_, Failure, render
from apps.core.deferred import text as D


class Command(BaseCommand):
    help = "Back up Kubemate's own database now with a database plan (its target, retention and sealing)."

    def add_arguments(self, parser):
        parser.add_argument("--plan", required=True, help="The database plan's name")
        parser.add_argument("--as", dest="username", required=True, help="Your Kubemate user name (password asked)")
        parser.add_argument(
            "--no-input", action="store_true", help="Read the password from the first line of standard input"
        )

    def handle(self, *args, plan, username, no_input, **options):
        with translation.override(settings.LANGUAGE_CODE):
            found = Plan.objects.select_related("target").filter(kind=Kind.DATABASE, name=plan).first()
            if found is None:
                raise CommandError(render(D(N_("There is no database backup plan named %(name)s."), name=plan)))
            user = prove(username, no_input=no_input, purpose="backup")
            try:
                backup = services.take_backup_now(actor=user, plan=found)
            except Failure as exc:
                raise CommandError(str(exc)) from None
            detail = backup.detail or {}
            self.stdout.write(
                render(
                    D(
                        N_(
                            "Backed up to %(target)s: %(key)s, %(size)s bytes, SHA-256 %(sha)s (%(tables)s tables, "
                            "%(users)s users, audit log up to event %(seq)s; dumped in %(seconds)s s)."
                        ),
                        target=backup.target.name if backup.target else "-",
                        key=backup.key,
                        size=backup.size_bytes,
                        sha=backup.sha256,
                        tables=detail.get("tables", "-"),
                        users=detail.get("users", "-"),
                        seq=detail.get("audit_seq", "-"),
                        seconds=detail.get("dump_seconds", "-"),
                    )
                )
            )
