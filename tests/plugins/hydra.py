"""pytest plugin: a real OpenID Connect provider, ory/hydra v2.3.0 (built by ``deploy/sandbox/build --only hydra``),
with deploy/local/oidc_login.py as its login and consent app and the people in ``PEOPLE``.

The session fixture ``hydra_server`` starts the login app and ``hydra serve all --dev`` (memory store, public and
admin APIs on free loopback ports, issuer ``http://127.0.0.1:<public>``), and registers Kubemate as a confidential
client whose redirect URI is the test client's ``http://testserver/oidc/callback/`` (and, for browser tests, a
live server's, added with ``allow_redirect``). ``env()`` is the KUBEMATE_OIDC_* an operator would set.

``sign_in(client, username, password)`` walks the whole authorization code flow: the Django test client asks
/oidc/authenticate/, a ``requests`` session plays the browser at hydra and the login app, and the test client
takes hydra's redirect to /oidc/callback/. Nothing is faked: codes, PKCE, tokens and keys are hydra's.
If the binary is missing or hydra does not start, the fixture raises: tests fail, they are never skipped.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.plugins.s3 import built_binary
from tests.plugins.served import Served, free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "deploy" / "sandbox" / "build"
LOGIN_APP = ROOT / "deploy" / "local" / "oidc_login.py"
CLIENT_ID = "kubemate-console"
TEST_REDIRECT = "http://testserver/oidc/callback/"

# The provider's people: a developer of the payments team, an auditor in two groups, someone in no group.
PEOPLE = {
    "li.wei": {
        "password": "li-wei-sso-password",
        "email": "li.wei@bank.example",
        "name": "Li Wei",
        "groups": ["payments-developers"],
    },
    "chen.jing": {
        "password": "chen-jing-sso-password",
        "email": "chen.jing@bank.example",
        "name": "Chen Jing",
        "groups": ["auditors", "payments-developers"],
    },
    "wang.fang": {"password": "wang-fang-sso-password", "email": "wang.fang@bank.example", "name": "Wang Fang"},
}


@dataclass
class LoginApp(Served):
    name = "the OIDC login app"
    log_name = "login-app"

    port: int
    admin: str
    folder: Path
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    def command(self) -> list[str]:
        users = self.folder / "people.json"
        return [sys.executable, str(LOGIN_APP), "--port", str(self.port), "--admin", self.admin, "--users", str(users)]

    def ready_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"


@dataclass
class Hydra(Served):
    name = "hydra"
    log_name = "hydra"

    public_port: int
    admin_port: int
    folder: Path
    binary: Path
    client_secret: str
    login_app: LoginApp | None = None
    # How many times the login app's password form was filled in (a re-authentication must show it).
    forms_filled: int = 0
    redirects: list[str] = field(default_factory=lambda: [TEST_REDIRECT])
    process: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def command(self) -> list[str]:
        return [str(self.binary), "serve", "all", "--dev", "--config", str(self.folder / "hydra.yaml")]

    def ready_url(self) -> str:
        return f"{self.admin}/health/ready"

    def env(self, **overrides) -> dict[str, str]:
        """The KUBEMATE_OIDC_* an operator sets for this provider."""
        return {
            "KUBEMATE_OIDC_ISSUER": self.issuer,
            "KUBEMATE_OIDC_ALLOW_HTTP": "true",
            "KUBEMATE_OIDC_CLIENT_ID": CLIENT_ID,
            "KUBEMATE_OIDC_CLIENT_SECRET": self.client_secret,
            "KUBEMATE_OIDC_NAME": "Bank SSO",
            **overrides,
        }

    def register_client(self) -> None:
        """Kubemate as a confidential client (client_secret_basic) with the redirect URIs in ``redirects``."""
        body = {
            "client_id": CLIENT_ID,
            "client_secret": self.client_secret,
            "client_name": "Kubemate",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "openid profile email groups offline_access",
            "redirect_uris": self.redirects,
            "token_endpoint_auth_method": "client_secret_basic",
        }
        requests.delete(f"{self.admin}/admin/clients/{CLIENT_ID}", timeout=10)
        answer = requests.post(f"{self.admin}/admin/clients", json=body, timeout=10)
        assert answer.status_code == 201, answer.text

    def set_people(self, people: dict) -> None:
        """Change the provider's people (the login app reads the file at each request)."""
        (self.folder / "people.json").write_text(json.dumps(people))

    def allow_redirect(self, url: str) -> None:
        if url not in self.redirects:
            self.redirects.append(url)
            self.register_client()

    # The browser's part of the flow ---------------------------------------------------------------------------

    def browse(self, url: str, browser: requests.Session, *, username: str, password: str, stop_at: str) -> str:
        """Follow redirects from ``url`` (the provider's authorization URL) like a browser, typing ``username`` and
        ``password`` into the login app's form when it shows one, until a redirect leaves for ``stop_at``; that URL.
        """
        for _hop in range(20):
            if url.startswith(stop_at):
                return url
            answer = browser.get(url, allow_redirects=False, timeout=10)
            if answer.status_code in (302, 303):
                url = urllib.parse.urljoin(url, answer.headers["Location"])
                continue
            assert answer.status_code == 200, f"{url}: {answer.status_code} {answer.text[:300]}"
            form = re.search(r'name="challenge" value="([^"]+)"', answer.text)
            assert form, f"no sign-in form at {url}: {answer.text[:300]}"
            self.forms_filled += 1
            posted = browser.post(
                f"http://127.0.0.1:{self.login_app.port}/login",
                data={"challenge": form.group(1), "username": username, "password": password},
                allow_redirects=False,
                timeout=10,
            )
            if posted.status_code == 200:  # the form again: wrong password
                raise WrongPassword(posted.text)
            url = urllib.parse.urljoin(url, posted.headers["Location"])
        raise AssertionError("more than 20 redirects")

    def sign_in(self, client, username: str, password: str, *, start: str = "/oidc/authenticate/", browser=None):
        """The Django test client signed in through the provider; the callback's response."""
        browser = browser if browser is not None else requests.Session()
        first = client.get(start)
        assert first.status_code == 302, first.content[:300]
        back = self.browse(first["Location"], browser, username=username, password=password, stop_at=TEST_REDIRECT)
        parts = urllib.parse.urlsplit(back)
        return client.get(f"{parts.path}?{parts.query}")


class WrongPassword(AssertionError):
    """The login app showed its form again."""


@pytest.fixture(scope="session")
def hydra_server():
    folder = Path(tempfile.mkdtemp(prefix="kubemate-hydra-"))
    (folder / "people.json").write_text(json.dumps(PEOPLE))
    public_port, admin_port, login_port = free_port(), free_port(), free_port()
    server = Hydra(
        public_port=public_port,
        admin_port=admin_port,
        folder=folder,
        binary=built_binary("HYDRA", "hydra"),
        client_secret=secrets.token_urlsafe(24),
    )
    (folder / "hydra.yaml").write_text(
        json.dumps(  # YAML is a superset of JSON
            {
                "dsn": "memory",
                "log": {"level": "warn"},
                "serve": {
                    "public": {"host": "127.0.0.1", "port": public_port},
                    "admin": {"host": "127.0.0.1", "port": admin_port},
                },
                "urls": {
                    "self": {"issuer": server.issuer},
                    "login": f"http://127.0.0.1:{login_port}/login",
                    "consent": f"http://127.0.0.1:{login_port}/consent",
                },
                "secrets": {"system": [secrets.token_urlsafe(32)]},
                "oidc": {"subject_identifiers": {"supported_types": ["public"]}},
            }
        )
    )
    server.start()
    login_app = LoginApp(port=login_port, admin=server.admin, folder=folder)
    login_app.start()
    server.login_app = login_app
    server.register_client()
    yield server
    server.set_people(PEOPLE)
    login_app.stop()
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)
