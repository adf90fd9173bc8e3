"""Re-encrypt every stored credential with the newest key of KUBEMATE_ENCRYPTION_KEYS.

Rotate a key: put a new key first in KUBEMATE_ENCRYPTION_KEYS (keep the old
one after it), restart, run this command, then remove the old key. All values
are re-encrypted in one transaction, or none is.
"""

from django.core.management.base import BaseCommand, CommandError

from apps.clusters.registry.services import RegistryError, rotate_stored_credentials


class Command(BaseCommand):
    help = "Re-encrypt every stored credential with the newest key of KUBEMATE_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        try:
            count = rotate_stored_credentials()
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Re-encrypted the credentials of {count} clusters with the newest key.")
