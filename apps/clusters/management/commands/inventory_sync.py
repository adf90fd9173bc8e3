"""Run the inventory sync until stopped (SIGTERM or Ctrl-C): list and watch every registered cluster."""

import signal
import threading

from django.core.management.base import BaseCommand

from apps.clusters.inventory.sync import SyncProcess, kinds_named


class Command(BaseCommand):
    help = "Keep the inventory tables equal to every registered cluster (list + watch)."

    def add_arguments(self, parser):
        parser.add_argument("--kind", action="append", dest="kinds", help="Sync only this kind (repeatable).")
        parser.add_argument("--no-metrics", action="store_true", help="Do not poll metrics.k8s.io.")

    def handle(self, *args, kinds=None, no_metrics=False, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        self.stdout.write("Inventory sync running; stop with SIGTERM.")
        SyncProcess(kinds=kinds_named(kinds), metrics=not no_metrics).run_forever(stop)
        self.stdout.write("Inventory sync stopped.")
