"""Build or refresh the built-in operations knowledge base from the inspection checks' advice (apps/ai/knowledge/
operations.py). Idempotent: runbooks whose text is unchanged are left alone; ``--force`` indexes them all again."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.ai import embeddings, milvus
from apps.ai.knowledge import operations


class Command(BaseCommand):
    help = "Build or refresh the operations knowledge base (Kubemate's runbooks) in English and Chinese."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Index every runbook again, changed or not.")

    def handle(self, *args, force: bool = False, **options):
        try:
            outcome = operations.refresh(force=force)
        except (milvus.MilvusError, embeddings.EmbeddingError) as exc:
            raise CommandError(str(exc.sentence)) from None
        self.stdout.write(
            f"operations knowledge base: {outcome.added} added, {outcome.changed} changed, "
            f"{outcome.unchanged} unchanged, {outcome.removed} removed, {outcome.failed} failed"
        )
        if outcome.failed:
            raise CommandError(f"{outcome.failed} runbooks could not be indexed; see the log.")
