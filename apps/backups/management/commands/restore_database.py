"""Restore Kubemate's own database from one of its backups (apps/backups/restore.py says how it is checked first)::

    manage.py restore_database --list --target NAME --as USER
    manage.py restore_database --target NAME --key KEY --as USER [--dry-run] [--lock-timeout 60]
    manage.py restore_database --file PATH --as USER [--dry-run] [--lock-timeout 60]

A restore is done by a named person who proves it: the password of ``--as`` is asked on the terminal (with
``--no-input``, read from the first line of standard input, for a runbook that takes it from a vault), and that
person must be a superuser or hold ``backups.admin``. Without a terminal and without ``--no-input`` the command
refuses rather than read a password from wherever standard input comes from.

Stop Kubemate's web and workers first: the restore waits at most ``--lock-timeout`` seconds for each table they
still use, then fails and leaves the database as it was. Output in the installation's language (LANGUAGE_CODE);
a refusal or failure exits non-zero with the sentence.
"""

from __future__ import annotations

import getpass
import sys
import warnings
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from apps.backups import database, restore, s3
from apps.backups.models import Backup, Kind, Target
from apps.core.deferred import N_, Failure, render
from apps.core.deferred import text as D


def ask_password(username: str, *, no_input: bool, stdin=None) -> str:
    """The password of ``username``: asked on the terminal (getpass), or the first line of standard input with
    ``no_input``. CommandError when there is no terminal to ask on."""
    if no_input:
        line = (stdin or sys.stdin).readline()
        if not line:
            raise CommandError(render(D(N_("No password on standard input."))))
        return line.rstrip("\r\n")
    with warnings.catch_warnings():
        # getpass falls back to reading standard input, with the password echoed, when there is no terminal.
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(render(D(N_("Password of %(user)s: "), user=username)))
        except getpass.GetPassWarning:
            raise CommandError(
                render(D(N_("There is no terminal to ask the password on; pipe it to standard input with --no-input.")))
            ) from None
        except (EOFError, KeyboardInterrupt):
            raise CommandError(render(D(N_("No password was given.")))) from None


def prove(username: str, *, no_input: bool, purpose: str):
    """The person of ``--as`` after their password (asked now) and their capability are checked."""
    password = ask_password(username, no_input=no_input)
    try:
        return database.prove(username, password, purpose=purpose)
    except Failure as exc:
        raise CommandError(str(exc)) from None


class Command(BaseCommand):
    help = "Restore Kubemate's own database from a backup (checked in a scratch database first); --dry-run reports."

    def add_arguments(self, parser):
        parser.add_argument("--target", help="The storage target's name")
        parser.add_argument("--key", help="The backup object's key on the target (see --list)")
        parser.add_argument("--file", help="A sealed backup file (.dump.sealed) downloaded by hand")
        parser.add_argument(
            "--list", dest="list_backups", action="store_true", help="List the database backups on --target"
        )
        parser.add_argument("--dry-run", action="store_true", help="Check and report; change nothing")
        parser.add_argument("--as", dest="username", required=True, help="Your Kubemate user name (password asked)")
        parser.add_argument(
            "--lock-timeout", type=int, default=60, help="Seconds to wait for each table's lock (default 60)"
        )
        parser.add_argument(
            "--no-input", action="store_true", help="Read the password from the first line of standard input"
        )

    def handle(self, *args, target, key, file, list_backups, dry_run, username, lock_timeout, no_input, **options):
        with translation.override(settings.LANGUAGE_CODE):
            self._handle(target, key, file, list_backups, dry_run, username, lock_timeout, no_input)

    def _say(self, sentence: str) -> None:
        self.stdout.write(render(sentence))

    def _handle(self, target_name, key, file, listing, dry_run, username, lock_timeout, no_input):
        if listing:
            if not target_name or key or file:
                raise CommandError(render(D(N_("--list needs --target, and no --key or --file."))))
        elif bool(file) == bool(target_name and key) or (file and (target_name or key)):
            raise CommandError(render(D(N_("Name one backup: --target and --key, or --file."))))
        if file and not Path(file).is_file():
            raise CommandError(render(D(N_("%(file)s is not a file."), file=str(file)[:200])))
        if lock_timeout <= 0:
            raise CommandError(render(D(N_("--lock-timeout is a number of seconds above zero."))))
        target = None
        if target_name:
            target = Target.objects.filter(name=target_name).first()
            if target is None:
                raise CommandError(render(D(N_("There is no storage target named %(name)s."), name=target_name)))
        if not listing and not dry_run:
            self.stderr.write(
                render(
                    D(
                        N_(
                            "This replaces Kubemate's whole database with the backup. Stop Kubemate's web and "
                            "workers first: the restore waits at most %(seconds)s seconds for each table they use, "
                            "then fails and changes nothing."
                        ),
                        seconds=int(lock_timeout),
                    )
                )
            )
        user = prove(username, no_input=no_input, purpose="list" if listing else "restore")
        try:
            if listing:
                self._list(target)
                return
            report = restore.restore(
                actor=user,
                target=target,
                key=key or "",
                file=Path(file) if file else None,
                dry_run=dry_run,
                stdout=self.stdout,
                lock_timeout=lock_timeout,
            )
        except Failure as exc:
            raise CommandError(str(exc)) from None
        for line in restore.describe(report):
            self._say(line)
        if dry_run and report["refusal"]:
            raise CommandError(render(report["refusal"]))

    def _list(self, target: Target) -> None:
        prefix = target.key("database") + "/"
        found = sorted(s3.objects(s3.access_for(target), prefix), key=lambda o: o.modified, reverse=True)
        states = dict(
            Backup.objects.filter(kind=Kind.DATABASE, target=target, key__in=[o.key for o in found]).values_list(
                "key", "status"
            )
        )
        if not found:
            self._say(D(N_("No database backup is stored on %(target)s."), target=target.name))
            return
        for item in found:
            status = states.get(item.key)
            self.stdout.write(
                f"{item.key}\t{item.size}\t{item.modified:%Y-%m-%d %H:%M:%S %Z}\t"
                + (str(Backup.Status(status).label) if status else render(D(N_("no record"))))
            )
