"""Write the template of /etc/kubemate/kubemate.env: every setting Kubemate reads, commented, with its default.

The settings are found in the application's own settings modules (the env(), env_bool(), env_int() and env_list()
calls of kubemate/settings/*.py and the KUBEMATE_LDAP_* names of kubemate/settings/ldap.py), described by the table
at the top of kubemate/settings/base.py or, for a setting the table does not name, by the comment above the line
that reads it. So the template cannot fall behind the code. Standard library only.

  python3 deploy/bundle/envtemplate.py APP_DIR > systemd/kubemate.env
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

HEADER = """\
# Kubemate's settings on a VM: /etc/kubemate/kubemate.env
#
# Read by systemd (EnvironmentFile= of kubemate-web, kubemate-worker and kubemate-terminal) and by kubemate-manage
# (bash `source`): one NAME=value per line, no spaces around "=", quote a value holding spaces, $, ` or quotes.
# It holds the secret key, the encryption keys and the database password: mode 0600, owner root.
# `install` writes it from this template when it is absent (and never overwrites it): it generates SECRET_KEY and
# KUBEMATE_ENCRYPTION_KEYS and sets the values it is given (--set NAME=value). Every other setting Kubemate reads is
# listed below, commented out, with its default; uncomment a line to change it, then
#   systemctl restart kubemate.target
"""

REQUIRED = {
    "SECRET_KEY": "A random string of at least 50 characters (install generates one). Changing it signs everyone out.",
    "KUBEMATE_ENCRYPTION_KEYS": "Fernet keys, newest first, comma-separated (install generates one). Encrypted "
    "fields (cluster credentials, passwords) need their key: to rotate, put a new key first and keep the old ones, "
    "then run `kubemate-manage rotate_encryption_keys` if your version has it. Losing every key loses those fields.",
    "ALLOWED_HOSTS": "The host names the console is served under, comma-separated (e.g. kubemate.bank.example).",
    "DATABASE_URL": "PostgreSQL (13 or later): postgres://USER:PASSWORD@HOST:5432/NAME",
    "REDIS_URL": "Redis (6 or later): redis://[:PASSWORD@]HOST:6379/0",
}

PROCESSES = [
    ("DJANGO_SETTINGS_MODULE", "kubemate.settings.production", "The units set it; never use another on a server."),
    ("KUBEMATE_BIND", "127.0.0.1:8000", "Where gunicorn listens (kubemate-web); nginx proxies to it."),
    ("KUBEMATE_WEB_WORKERS", "1", "gunicorn worker processes (gthread)."),
    ("KUBEMATE_WEB_THREADS", "8", "Threads per gunicorn worker."),
    ("KUBEMATE_FORWARDED_ALLOW_IPS", "127.0.0.1", "Proxies whose X-Forwarded-* headers gunicorn trusts (nginx)."),
    ("KUBEMATE_WORKER_CONCURRENCY", "4", "Threads of the Celery worker (kubemate-worker)."),
    (
        "KUBEMATE_TERMINAL_PORT",
        "8765",
        "Loopback port of the web terminal service (kubemate-terminal); nginx proxies /ws/terminal/ to it.",
    ),
]

# Settings neither the table nor a comment in the settings describes.
DESCRIBED_HERE = {
    "CSRF_TRUSTED_ORIGINS": "Origins (https://host[:port]) trusted for form posts besides the console's own "
    "address; not needed behind the bundle's nginx.",
    "KUBEMATE_SSL_REDIRECT": "true: plain HTTP requests are redirected to HTTPS (the proxy terminates TLS).",
    "KUBEMATE_BEHIND_TLS_PROXY": "true: a request is HTTPS when the proxy says X-Forwarded-Proto: https (nginx "
    "sets it; gunicorn listens on loopback only).",
    "KUBEMATE_HSTS_SECONDS": "Strict-Transport-Security max-age; 0 turns HSTS off.",
    "KUBEMATE_DEBUG": "false; never true on a server (kubemate.settings.production keeps DEBUG off anyway).",
    "KUBEMATE_LOGIN_LOCKOUT_MINUTES": "15: how long an account and address pair stays locked out after "
    "KUBEMATE_LOGIN_FAILURE_LIMIT failed sign-ins.",
    "KUBEMATE_WORKER_HEARTBEAT_SECONDS": "10: how often a worker marks its running jobs alive.",
}

# Paths install points into the data directory (--data-dir, default /var/lib/kubemate), off the release folders.
DATA_PATHS = {"KUBEMATE_CICD_STORAGE", "KUBEMATE_BACKUP_WORKDIR", "KUBEMATE_AI_DOCUMENTS_DIR"}

# The worker unit turns these on (one process hosts the beat schedule and the inventory sync as threads).
UNIT_DEFAULTS = {"KUBEMATE_WORKER_BEAT": "true", "KUBEMATE_WORKER_SYNC": "true"}

ENV_FUNCTIONS = {"env", "env_bool", "env_int", "env_list"}


def table(base: Path, known: set[str]) -> dict[str, str]:
    """NAME -> 'default: description' from the settings table in base.py's docstring."""
    docstring = ast.get_docstring(ast.parse(base.read_text())) or ""
    rows = [line for line in docstring.splitlines() if line.startswith("|") and not line.startswith("|--")]
    described = {}
    for row in rows[1:]:  # the first row is the header
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if len(cells) < 2:
            continue
        names = [name.strip() for name in re.split(r"[/,]", cells[0]) if name.strip()]
        first = names[0] if names else ""
        text = cells[1] if len(names) == 1 else f"{cells[0]}: {cells[1]}"
        for name in names:
            if name.startswith("_"):  # "KUBEMATE_TERMINAL_IDLE_SECONDS / _MAX_SECONDS": a sibling of the first
                cuts = [i for i, char in enumerate(first) if char == "_"]
                name = next((first[:i] + name for i in cuts if first[:i] + name in known), name)
            described[name] = text
    return described


def literal(node: ast.AST | None) -> str:
    """A default written as a constant or whole-number arithmetic (`7 * 24 * 3600`), else empty."""
    value = number_or_constant(node)
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def number_or_constant(node: ast.AST | None) -> str | int | bool | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int | bool):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Add):
        left, right = number_or_constant(node.left), number_or_constant(node.right)
        if isinstance(left, int) and isinstance(right, int) and not isinstance(left | right, bool):
            return left * right if isinstance(node.op, ast.Mult) else left + right
    return None


def comment_above(lines: list[str], lineno: int) -> str:
    """The comment block right above a line (1-based), joined."""
    block = []
    i = lineno - 2
    while i >= 0 and lines[i].lstrip().startswith("#"):
        block.insert(0, lines[i].strip().lstrip("#").strip())
        i -= 1
    return " ".join(block)


def settings_read(app: Path) -> dict[str, tuple[str, str, str]]:
    """NAME -> (default, comment above, file) for every variable the settings modules read."""
    found: dict[str, tuple[str, str, str]] = {}
    for path in sorted((app / "kubemate" / "settings").glob("*.py")):
        if path.name == "test.py":
            continue
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            name = first.value
            func = node.func
            is_env = isinstance(func, ast.Name) and func.id in ENV_FUNCTIONS
            is_get = isinstance(func, ast.Attribute) and func.attr == "get" and name.startswith("KUBEMATE_")
            if not (is_env or is_get) or not re.fullmatch(r"[A-Z][A-Z0-9_]+", name):
                continue
            default = literal(node.args[1]) if len(node.args) > 1 else ""
            if name not in found or (default and not found[name][0]):
                found[name] = (default, comment_above(lines, node.lineno), f"kubemate/settings/{path.name}")
    return found


def render(app: Path) -> str:
    read = settings_read(app)
    described = table(app / "kubemate" / "settings" / "base.py", set(read))
    missing = sorted(set(REQUIRED) - set(read))
    if missing:
        raise SystemExit(f"the settings no longer read {', '.join(missing)}: update deploy/bundle/envtemplate.py")
    out = [HEADER, "## Required: kubemate.settings.production refuses to start without them", ""]
    for name, text in REQUIRED.items():
        out += [f"# {text}", f"#{name}=", ""]
    out += ["## The processes (the systemd units' commands read these; their defaults are in the units)", ""]
    for name, default, text in PROCESSES:
        out += [f"# {text}", f"#{name}={default}", ""]
    out += ["## Everything else Kubemate reads (kubemate/settings/), with its default", ""]
    for name in sorted(set(read) - set(REQUIRED)):
        default, comment, where = read[name]
        text = DESCRIBED_HERE.get(name) or described.get(name) or comment or f"see {where}"
        if name in DATA_PATHS:
            text += " (install sets it under the data directory)"
        if name in UNIT_DEFAULTS:
            text += f" (kubemate-worker.service sets {UNIT_DEFAULTS[name]})"
            default = UNIT_DEFAULTS[name]
        out += [f"# {text}", f"#{name}={default}", ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
