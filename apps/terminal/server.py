"""The terminal service: a small asyncio process (aiohttp) that carries web terminals, apart from the web workers.

Why a process of its own: a shell is a websocket that stays open for minutes; the console's web workers are
synchronous threads (gunicorn) meant for short requests, and an ASGI server for the whole console would change
how every page is served for the sake of one feature. This process holds only the open terminals and can be
restarted without touching the console; idle it takes 112 MiB (Django and the Kubernetes client loaded), beside
129 MiB for one web worker (bench/terminal_memory.py), and 200 refused connection attempts add nothing.

A browser connects to ``/ws/terminal/<session>/`` with the console's session cookie, from an allowed origin.
The session must wait for that very user (``services.claim``). The shell runs as that user through
``clusters.kube`` (``Client.exec_stream``: pods/exec, impersonating them, so the cluster's RBAC decides), in a
thread per terminal; bytes flow both ways as JSON messages::

    browser -> {"t": "in", "d": "ls\\r"} | {"t": "resize", "cols": 120, "rows": 32}
    server  -> {"t": "out", "d": "..."}  | {"t": "end", "end": "idle", "sentence": "..."}

Limits: a single input message of at most KUBEMATE_TERMINAL_MAX_INPUT_BYTES, KUBEMATE_TERMINAL_IDLE_SECONDS
without input, KUBEMATE_TERMINAL_MAX_SECONDS in all; each end is audited with the bytes in and out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import translation

from apps.clusters import kube
from apps.terminal import services
from apps.terminal.models import TerminalSession

logger = logging.getLogger(__name__)
POLL_SECONDS = 0.05


def _user_of(session_key: str | None):
    """The signed-in user of a console session cookie, or None."""
    from importlib import import_module

    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user_id = store.get("_auth_user_id")
    if not user_id:
        return None
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()


def allowed_origin(origin: str, host: str) -> bool:
    """Cross-site websocket hijacking guard: the page that opens the terminal must be the console's own."""
    if not origin:
        return False
    parts = urlsplit(origin)
    trusted = {o.rstrip("/") for o in getattr(settings, "CSRF_TRUSTED_ORIGINS", [])}
    if f"{parts.scheme}://{parts.netloc}" in trusted:
        return True
    allowed = set(settings.ALLOWED_HOSTS)
    name = parts.hostname or ""
    return name in allowed or "*" in allowed or any(a.startswith(".") and name.endswith(a) for a in allowed)


class Shell(threading.Thread):
    """One shell: the exec websocket to the cluster, driven from this thread only."""

    def __init__(self, session: TerminalSession, loop: asyncio.AbstractEventLoop, out: asyncio.Queue):
        super().__init__(daemon=True, name=f"terminal-{session.pk}")
        self.session = session
        self.loop = loop
        self.out = out
        self.inbox: queue.Queue = queue.Queue()
        self.stop = threading.Event()

    def _emit(self, item) -> None:
        self.loop.call_soon_threadsafe(self.out.put_nowait, item)

    def run(self) -> None:
        try:
            with kube.client(self.session.cluster, as_user=self.session.user) as k:
                stream = k.exec_stream(
                    self.session.namespace, self.session.pod, self.session.container, self.session.command
                )
                try:
                    self._pump(stream)
                finally:
                    stream.close()
        except kube.Forbidden as exc:
            self._emit(("error", TerminalSession.End.REFUSED, str(exc)))
        except kube.KubeError as exc:
            self._emit(("error", TerminalSession.End.UNREACHABLE, str(exc)))
        except Exception as exc:  # the browser must hear why, whatever broke
            logger.exception("terminal failed", extra={"session": str(self.session.pk)})
            self._emit(("error", TerminalSession.End.UNREACHABLE, str(exc)[:300]))

    def _pump(self, stream) -> None:
        while not self.stop.is_set():
            while True:
                try:
                    kind, data = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if kind == "in":
                    stream.write_stdin(data)
                elif kind == "resize":
                    stream.write_channel(4, json.dumps({"Width": data[0], "Height": data[1]}))
            if not stream.is_open():
                for reader in (stream.read_stdout, stream.read_stderr):  # what came with the close
                    text = reader(timeout=0)
                    if text:
                        self._emit(("out", text))
                self._emit(("exit",))
                return
            stream.update(timeout=POLL_SECONDS)
            for reader in (stream.read_stdout, stream.read_stderr):
                text = reader(timeout=0) if callable(reader) else ""
                if text:
                    self._emit(("out", text))


async def terminal(request: web.Request) -> web.StreamResponse:
    if not allowed_origin(request.headers.get("Origin", ""), request.host):
        return web.Response(status=403, text="origin")
    user = await sync_to_async(_user_of)(request.cookies.get(settings.SESSION_COOKIE_NAME))
    if user is None:
        return web.Response(status=403, text="sign in")
    session = await sync_to_async(services.claim)(request.match_info["session"], user)
    if session is None:
        return web.Response(status=404, text="no such terminal")
    language = request.cookies.get(settings.LANGUAGE_COOKIE_NAME) or settings.LANGUAGE_CODE
    ws = web.WebSocketResponse(max_msg_size=services.max_input_bytes() * 2, heartbeat=30)
    await ws.prepare(request)
    out: asyncio.Queue = asyncio.Queue()
    shell = Shell(session, asyncio.get_running_loop(), out)
    shell.start()
    counts = {"in": 0, "out": 0}
    started = last_input = time.monotonic()
    end, error = TerminalSession.End.CLOSED, ""

    async def from_browser():
        nonlocal last_input, end
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                if message.type == WSMsgType.ERROR:
                    end = TerminalSession.End.TOO_LARGE
                break
            if len(message.data.encode()) > services.max_input_bytes() * 2:
                end = TerminalSession.End.TOO_LARGE
                break
            try:
                data = json.loads(message.data)
            except ValueError:
                continue
            if data.get("t") == "in" and isinstance(data.get("d"), str):
                text = data["d"]
                if len(text.encode()) > services.max_input_bytes():
                    end = TerminalSession.End.TOO_LARGE
                    break
                counts["in"] += len(text.encode())
                last_input = time.monotonic()
                shell.inbox.put(("in", text))
            elif data.get("t") == "resize":
                cols, rows = data.get("cols"), data.get("rows")
                if isinstance(cols, int) and isinstance(rows, int) and 0 < cols <= 1000 and 0 < rows <= 500:
                    shell.inbox.put(("resize", (cols, rows)))

    async def to_browser():
        nonlocal end, error
        while True:
            try:
                item = await asyncio.wait_for(out.get(), timeout=1)
            except TimeoutError:
                now = time.monotonic()
                if now - last_input > services.idle_seconds():
                    end = TerminalSession.End.IDLE
                    return
                if now - started > services.max_seconds():
                    end = TerminalSession.End.LIMIT
                    return
                continue
            if item[0] == "out":
                counts["out"] += len(item[1].encode())
                await ws.send_str(json.dumps({"t": "out", "d": item[1]}))
            elif item[0] == "exit":
                end = TerminalSession.End.EXITED
                return
            else:
                end, error = item[1], item[2]
                return

    reader, writer = asyncio.create_task(from_browser()), asyncio.create_task(to_browser())
    await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
    for task in (reader, writer):
        task.cancel()
    shell.stop.set()
    with translation.override(language):
        sentence = error or services.end_sentence(end)
    if not ws.closed:
        await ws.send_str(json.dumps({"t": "end", "end": end, "sentence": sentence}))
        await ws.close()
    await sync_to_async(services.finish)(session, end, bytes_in=counts["in"], bytes_out=counts["out"], error=error)
    return ws


async def _expire_loop(app: web.Application):
    async def expire():
        while True:
            await sync_to_async(services.expire_waiting)()
            await asyncio.sleep(10)

    task = asyncio.create_task(expire())
    yield
    task.cancel()


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def application() -> web.Application:
    app = web.Application()
    app.router.add_get("/ws/terminal/{session}/", terminal)
    app.router.add_get("/healthz", healthz)
    app.cleanup_ctx.append(_expire_loop)
    return app
