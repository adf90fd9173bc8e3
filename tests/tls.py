"""A throw-away certificate authority for tests that talk TLS to a real server on loopback (etcd, rsyslog)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def certificate(
    subject: str, key, issuer_key, issuer: x509.Name | None, *, ca=False, server=False, dns: tuple[str, ...] = ()
) -> x509.Certificate:
    """A certificate valid for a day: a CA, a server's (127.0.0.1 and ``dns`` as names) or a client's."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), *(x509.DNSName(d) for d in dns)]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class ServerFiles:
    ca: str  # paths
    cert: str
    key: str
    ca_pem: str


def server_files(folder: Path, name: str, *, dns: tuple[str, ...] = ()) -> ServerFiles:
    """A fresh CA and a server certificate it signed, written to ``folder`` (keys readable by the owner only)."""
    ca_key, server_key = new_key(), new_key()
    ca = certificate(f"kubemate-test-{name}-ca", ca_key, ca_key, None, ca=True)
    server = certificate(name, server_key, ca_key, ca.subject, server=True, dns=dns)
    paths = {}
    for file, text in (
        ("ca.pem", cert_pem(ca)),
        ("server.pem", cert_pem(server)),
        ("server-key.pem", key_pem(server_key)),
    ):
        path = folder / file
        path.write_text(text)
        path.chmod(0o600)
        paths[file] = str(path)
    return ServerFiles(paths["ca.pem"], paths["server.pem"], paths["server-key.pem"], cert_pem(ca))
