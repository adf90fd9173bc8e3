"""Check that the audit log's hash chain is whole: no event altered, removed or re-ordered."""

from django.core.management.base import BaseCommand, CommandError

from apps.core.audit import verify
from apps.core.models import AuditEvent


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; exits with status 1 and lists each break when it was tampered with."

    def handle(self, *args, **options):
        problems = list(verify())
        if problems:
            for problem in problems:
                self.stderr.write(f"Audit log broken at event {problem.seq}: {problem.sentence}.")
            raise CommandError(f"The audit log was tampered with: {len(problems)} problem(s) found.")
        self.stdout.write(f"The audit log is intact: {AuditEvent.objects.count()} events verified.")
