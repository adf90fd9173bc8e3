"""Open a backup file Kubemate sealed (an etcd snapshot or a database dump downloaded from the storage target with
any S3 client), for a restore by hand (the etcd runbook's step): ``manage.py open_backup FILE --out PLAIN``. Needs
the key set the backup was sealed with (KUBEMATE_ENCRYPTION_KEYS). Audited as the person named with ``--as``."""

from __future__ import annotations

import getpass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.backups import access, seal
from apps.core import audit
from apps.core.deferred import Failure


class Command(BaseCommand):
    help = "Open (decrypt and decompress) a backup file Kubemate sealed."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The sealed file (.sealed)")
        parser.add_argument("--out", required=True, help="Where to write the opened file (must not exist)")
        parser.add_argument("--as", dest="username", required=True, help="Your Kubemate user name (asked: password)")

    def handle(self, *args, file, out, username, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        password = getpass.getpass(f"Password of {username}: ")
        if user is None or not user.check_password(password):
            raise CommandError("The user name or password is wrong.")
        if not (user.is_superuser or access.is_admin(user)):
            raise CommandError(f"{username} may not open Kubemate's backups (backups.admin).")
        source, dest = Path(file), Path(out)
        if not source.is_file():
            raise CommandError(f"{source} is not a file.")
        if dest.exists():
            raise CommandError(f"{dest} exists already; name a new file.")
        try:
            size = seal.open_sealed(source, dest, max_bytes=settings.KUBEMATE_BACKUP_MAX_MB * 1024 * 1024)
        except Failure as exc:
            dest.unlink(missing_ok=True)
            raise CommandError(str(exc)) from None
        dest.chmod(0o600)
        audit.record(
            actor=user,
            action="backups.backup.opened",
            kind="Backup",
            name=source.name,
            detail={"file": source.name, "bytes": size},
            reason="",
        )
        self.stdout.write(f"Opened {source.name}: {size} bytes written to {dest}.")
