#!/usr/bin/env python3
"""The login and consent app of the local identity provider (ory/hydra), for the tests and the demo.

Hydra implements OpenID Connect but keeps no users: it sends the browser to a login app and a consent app of the
operator's own, which tell it through its admin API who signed in and what goes into their ID token. This is
that app for a provider on this machine, with people from a JSON file::

    {"li.wei": {"password": "...", "email": "li.wei@bank.example", "name": "Li Wei",
                "groups": ["payments-developers"]}}

    deploy/local/oidc_login.py --port 4446 --admin http://127.0.0.1:4445 --users users.json

The file is read at each request. It asks for a password whenever hydra says it must (a first sign-in,
``prompt=login``, ``max_age``), and lets a remembered session through otherwise. Consent is given at once (the
console is the bank's own application), with ``preferred_username``, ``email``, ``name`` and ``groups`` in the ID
token. Standard library only.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FORM = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bank sign-on</title></head>
<body><h1>Bank sign-on</h1>{error}
<form method="post" action="/login">
<input type="hidden" name="challenge" value="{challenge}">
<label>Username <input name="username" value="{username}" autofocus></label>
<label>Password <input type="password" name="password"></label>
<button type="submit">Sign in</button></form></body></html>"""


class App:
    def __init__(self, admin: str, users_file: str):
        self.admin = admin.rstrip("/")
        self.users_file = users_file

    @property
    def users(self) -> dict:
        """The people, read at each request: a changed file (a person moved to another group) counts at once."""
        with open(self.users_file, encoding="utf-8") as handle:
            return json.load(handle)

    def call(self, method: str, path: str, query: dict, body: dict | None = None) -> dict:
        url = f"{self.admin}{path}?{urllib.parse.urlencode(query)}"
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (hydra's admin URL)
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return json.load(answer)

    def login_request(self, challenge: str) -> dict:
        return self.call("GET", "/admin/oauth2/auth/requests/login", {"login_challenge": challenge})

    def accept_login(self, challenge: str, subject: str) -> str:
        answer = self.call(
            "PUT",
            "/admin/oauth2/auth/requests/login/accept",
            {"login_challenge": challenge},
            {"subject": subject, "remember": True, "remember_for": 3600},
        )
        return answer["redirect_to"]

    def accept_consent(self, challenge: str) -> str:
        asked = self.call("GET", "/admin/oauth2/auth/requests/consent", {"consent_challenge": challenge})
        person = self.users.get(asked["subject"], {})
        claims = {
            "preferred_username": asked["subject"],
            "email": person.get("email", ""),
            "name": person.get("name", ""),
            "groups": person.get("groups", []),
        }
        answer = self.call(
            "PUT",
            "/admin/oauth2/auth/requests/consent/accept",
            {"consent_challenge": challenge},
            {
                "grant_scope": asked.get("requested_scope", []),
                "grant_access_token_audience": asked.get("requested_access_token_audience", []),
                "remember": False,
                "session": {"id_token": claims, "access_token": {"groups": claims["groups"]}},
            },
        )
        return answer["redirect_to"]


def handler(app: App):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: the tests read their own output
            pass

        def redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.end_headers()

        def page(self, challenge: str, username: str = "", error: str = "") -> None:
            body = FORM.format(
                challenge=html.escape(challenge),
                username=html.escape(username),
                error=f'<p role="alert">{html.escape(error)}</p>' if error else "",
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            try:
                if url.path == "/login":
                    challenge = query.get("login_challenge", "")
                    asked = app.login_request(challenge)
                    if asked.get("skip"):
                        return self.redirect(app.accept_login(challenge, asked["subject"]))
                    return self.page(challenge, username=asked.get("oidc_context", {}).get("login_hint", ""))
                if url.path == "/consent":
                    return self.redirect(app.accept_consent(query.get("consent_challenge", "")))
                if url.path == "/health":
                    self.send_response(200)
                    self.end_headers()
                    return None
            except urllib.error.HTTPError as exc:
                self.send_error(exc.code, "hydra refused the challenge")
                return None
            self.send_error(404)
            return None

        def do_POST(self):
            if self.path != "/login":
                self.send_error(404)
                return
            length = min(int(self.headers.get("Content-Length") or 0), 16_384)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            challenge, username = form.get("challenge", ""), form.get("username", "")
            person = app.users.get(username)
            if person is None or person.get("password") != form.get("password"):
                self.page(challenge, username=username, error="Wrong username or password.")
                return
            try:
                self.redirect(app.accept_login(challenge, username))
            except urllib.error.HTTPError as exc:
                self.send_error(exc.code, "hydra refused the challenge")

    return Handler


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--admin", required=True, help="hydra's admin URL")
    parser.add_argument("--users", required=True, help="JSON file of people")
    args = parser.parse_args(argv)
    app = App(args.admin, args.users)
    app.users  # noqa: B018 (a missing or broken file stops the app here, not at the first sign-in)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(app))
    print(f"login and consent app on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
