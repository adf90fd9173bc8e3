"""Stand-ins for outside systems that are not built here, following their documented APIs."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OllamaStandIn:
    """A stand-in for Ollama's documented API (GET /api/tags, POST /api/chat streaming one JSON object per line),
    which records the Authorization header it was sent. Ollama itself is not built here (deploy/ai/README.md)."""

    def __init__(self, words=("Hello", " there")):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                seen.append((self.path, self.headers.get("Authorization")))
                tags = {
                    "models": [
                        {
                            "name": "qwen2:0.5b",
                            "size": 352,
                            "modified_at": "2026-11-30T10:00:00Z",
                            "details": {"family": "qwen2"},
                        }
                    ]
                }
                self._send(json.dumps(tags).encode(), "application/json")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                seen.append((self.path, body))
                lines = [{"message": {"role": "assistant", "content": w}, "done": False} for w in words]
                lines.append({"message": {"role": "assistant", "content": ""}, "done": True})
                self._send(b"".join(json.dumps(x).encode() + b"\n" for x in lines), "application/x-ndjson")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
