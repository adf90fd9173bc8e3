"""A real, project-local OpenLDAP server for the directory sign-in tests.

The ``ldap_server`` fixture writes a slapd.conf and a small directory (people,
a service account for Kubemate, one group) into a temporary folder, loads it
with slapadd, runs Debian's slapd on a free loopback port as the current user
and stops it when the session ends. No system service or file under /etc is
touched. A missing slapd is an error, not a skip: `make test` installs Debian's
slapd and ldap-utils packages.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SUFFIX = "dc=bank,dc=example"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "directory-root-secret"
BIND_DN = f"cn=kubemate,ou=services,{SUFFIX}"
BIND_PASSWORD = "kubemate-reader-secret"
USER_BASE = f"ou=people,{SUFFIX}"
GROUP_BASE = f"ou=groups,{SUFFIX}"
USER = "li.wei"
USER_PASSWORD = "li-wei-directory-password"
USER_EMAIL = "li.wei@bank.example"
USER_GIVEN_NAME = "Wei"
USER_SURNAME = "Li"
GROUP = "payments-operators"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
MISSING = (
    "is not installed; `make test` installs Debian's slapd and ldap-utils packages (apt-get install slapd ldap-utils)."
)


@dataclass(frozen=True)
class LdapServer:
    uri: str
    workdir: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The KUBEMATE_LDAP_* variables an operator would set for this directory."""
        return {
            "KUBEMATE_LDAP_URI": self.uri,
            "KUBEMATE_LDAP_BIND_DN": BIND_DN,
            "KUBEMATE_LDAP_BIND_PASSWORD": BIND_PASSWORD,
            "KUBEMATE_LDAP_USER_BASE": USER_BASE,
            "KUBEMATE_LDAP_GROUP_BASE": GROUP_BASE,
            **extra,
        }


def _tool(name: str) -> str:
    # slapd and slapadd live in /usr/sbin, which a non-root PATH may lack.
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise RuntimeError(f"{name} {MISSING}")
    return path


def _hash(password: str) -> str:
    return subprocess.run(
        [_tool("slappasswd"), "-s", password], check=True, capture_output=True, text=True
    ).stdout.strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(workdir: Path) -> str:
    schemas = "\n".join(f"include {SCHEMA_DIR / name}.schema" for name in ("core", "cosine", "inetorgperson", "nis"))
    return f"""{schemas}
pidfile {workdir / "slapd.pid"}
argsfile {workdir / "slapd.args"}
modulepath {MODULE_DIR}
moduleload back_mdb

database mdb
maxsize 16777216
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {_hash(ROOT_PASSWORD)}
directory {workdir / "data"}
index objectClass eq
index uid,member eq

access to attrs=userPassword
    by anonymous auth
    by self write
    by * none
access to *
    by users read
    by * none
"""


def _directory() -> str:
    return f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: bank
o: Example Bank

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: ou=services,{SUFFIX}
objectClass: organizationalUnit
ou: services

dn: {BIND_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: kubemate
userPassword: {_hash(BIND_PASSWORD)}

dn: uid={USER},{USER_BASE}
objectClass: inetOrgPerson
uid: {USER}
cn: {USER_GIVEN_NAME} {USER_SURNAME}
givenName: {USER_GIVEN_NAME}
sn: {USER_SURNAME}
mail: {USER_EMAIL}
userPassword: {_hash(USER_PASSWORD)}

dn: uid=zhang.min,{USER_BASE}
objectClass: inetOrgPerson
uid: zhang.min
cn: Min Zhang
givenName: Min
sn: Zhang
mail: zhang.min@bank.example
userPassword: {_hash("zhang-min-directory-password")}

dn: cn={GROUP},{GROUP_BASE}
objectClass: groupOfNames
cn: {GROUP}
member: uid={USER},{USER_BASE}
"""


def _wait_until_answering(process: subprocess.Popen, uri: str, log: Path, timeout: float = 15.0) -> None:
    import ldap

    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited with status {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            connection = ldap.initialize(uri)
            connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 1)
            connection.simple_bind_s(BIND_DN, BIND_PASSWORD)
            connection.unbind_s()
            return
        except ldap.SERVER_DOWN:
            if time.monotonic() > deadline:
                message = f"slapd did not answer on {uri} within {timeout:.0f} s:\n{log.read_text()[-4000:]}"
                raise RuntimeError(message) from None
            time.sleep(0.1)


@pytest.fixture(scope="session")
def ldap_server(tmp_path_factory) -> LdapServer:
    slapd, slapadd = _tool("slapd"), _tool("slapadd")
    workdir = tmp_path_factory.mktemp("slapd")
    (workdir / "data").mkdir()
    config = workdir / "slapd.conf"
    config.write_text(_config(workdir))
    data = workdir / "directory.ldif"
    data.write_text(_directory())
    loaded = subprocess.run([slapadd, "-f", str(config), "-l", str(data)], capture_output=True, text=True)
    if loaded.returncode != 0:
        raise RuntimeError(f"slapadd could not load the test directory:\n{loaded.stderr}")

    uri = f"ldap://127.0.0.1:{_free_port()}"
    log = workdir / "slapd.log"
    with log.open("w") as output:
        # -d keeps slapd in the foreground, so this process owns it and can stop it.
        process = subprocess.Popen(
            [slapd, "-f", str(config), "-h", f"{uri}/", "-d", "none"], stdout=output, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_answering(process, uri, log)
        yield LdapServer(uri=uri, workdir=workdir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
