"""``manage.py terminal_server``: the web terminal service (apps/terminal/server.py) on a loopback port."""

from aiohttp import web
from django.core.management.base import BaseCommand

from apps.terminal import server, services


class Command(BaseCommand):
    help = "Serve the console's web terminals (websockets) on a loopback port."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)

    def handle(self, *args, host: str, port: int, **options):
        ended = services.end_all_open()
        if ended:
            self.stdout.write(f"{ended} terminal sessions of the previous run ended")
        web.run_app(server.application(), host=host, port=port, print=None, access_log=None)
