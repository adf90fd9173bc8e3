"""The one door to syslog receivers (the bank's SIEM): RFC 5424 messages over TLS (RFC 5425), plain TCP, or UDP
(RFC 5426).

TCP and TLS frame each message with its length (octet counting, RFC 5425 section 4.3), so a message may hold any
character. ``deliver`` confirms a batch the only way syslog over TCP allows without RELP: after the last message
it closes its sending side and waits for the receiver to close too. A receiver closes only after it has read
everything before the close, so a clean close means every message of the batch was read; a reset, a timeout or a
refused connection means some may not have been, and the caller sends the batch again (receivers may see a
message twice, never miss one; the chain position in each message lets the SIEM drop repeats). UDP confirms
nothing: a datagram may be lost, which the console says where UDP is chosen.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

from apps.core import deferred
from apps.core.deferred import N_

TRANSPORTS = ("tls", "tcp", "udp")
# Beyond this a receiver may cut a message (rsyslog's default maxMessageSize is 8 KiB); callers shorten the
# message's free text to fit (``fit``).
MAX_MESSAGE = 8 * 1024
NILVALUE = "-"


class SyslogError(deferred.Failure):
    """A receiver that could not be reached or did not confirm a batch. ``str()`` is the sentence in the active
    language, ``stored`` the deferred form a destination's row keeps (read later in the reader's language)."""


def _unreachable(receiver: Receiver, error) -> SyslogError:
    return SyslogError(
        deferred.text(
            N_("The syslog receiver %(address)s could not be reached: %(error)s"),
            address=f"{receiver.host}:{receiver.port}",
            error=getattr(error, "strerror", None) or error.__class__.__name__,
        )
    )


@dataclass(frozen=True)
class Receiver:
    host: str
    port: int
    transport: str = "tls"
    # The CA certificates (PEM) the receiver's certificate must chain to; empty means the system's.
    ca_pem: str = ""
    # The name the receiver's certificate must carry; empty means ``host``.
    server_name: str = ""
    timeout: float = 10.0


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_field(value: str, limit: int) -> str:
    """PRINTUSASCII without spaces, at most ``limit`` characters, or the NILVALUE (RFC 5424 section 6.2)."""
    cleaned = "".join(ch for ch in value if 33 <= ord(ch) <= 126)[:limit]
    return cleaned or NILVALUE


def message(
    *,
    timestamp: datetime,
    hostname: str,
    app_name: str,
    msgid: str,
    sd_id: str,
    params: dict[str, str],
    text: str,
    facility: int = 13,
    severity: int = 6,
    procid: str = "",
) -> bytes:
    """One RFC 5424 message: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG``.

    Facility 13 is "log audit"; severity 6 informational, 4 warning. ``params`` become the structured data
    element ``sd_id`` (values escaped as section 6.3.3 says); ``text`` is the message, UTF-8.
    """
    stamp = timestamp.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    sd_params = " ".join(f'{_header_field(key, 32)}="{_sd_escape(str(value))}"' for key, value in params.items())
    structured = f"[{sd_id} {sd_params}]" if sd_params else f"[{sd_id}]"
    header = " ".join(
        (
            f"<{facility * 8 + severity}>1",
            stamp,
            _header_field(hostname, 255),
            _header_field(app_name, 48),
            _header_field(procid, 128),
            _header_field(msgid, 32),
        )
    )
    return f"{header} {structured} {text}".encode()


def _connect(receiver: Receiver) -> socket.socket:
    try:
        raw = socket.create_connection((receiver.host, receiver.port), timeout=receiver.timeout)
    except OSError as exc:
        raise _unreachable(receiver, exc) from None
    if receiver.transport != "tls":
        return raw
    context = ssl.create_default_context(cadata=receiver.ca_pem or None)
    if not receiver.ca_pem:
        context.load_default_certs()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        return context.wrap_socket(raw, server_hostname=receiver.server_name or receiver.host)
    except ssl.SSLCertVerificationError as exc:
        raw.close()
        raise SyslogError(
            deferred.text(N_("The syslog receiver's certificate was refused: %(reason)s"), reason=exc.verify_message)
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raw.close()
        raise SyslogError(
            deferred.text(N_("The TLS handshake with the syslog receiver failed: %(error)s"), error=str(exc))
        ) from None


def deliver(receiver: Receiver, messages: list[bytes]) -> None:
    """Send ``messages`` in order; returns only when the receiver confirmed reading them all (TCP, TLS) or they
    were sent (UDP). Raises ``SyslogError`` otherwise: then none of the batch counts as delivered."""
    if not messages:
        return
    if receiver.transport == "udp":
        _deliver_udp(receiver, messages)
        return
    sock = _connect(receiver)
    try:
        sock.sendall(b"".join(b"%d %s" % (len(item), item) for item in messages))
        _await_close(sock, receiver)
    except (OSError, ssl.SSLError) as exc:
        raise SyslogError(
            deferred.text(
                N_("The syslog receiver %(address)s broke off the connection: %(error)s"),
                address=f"{receiver.host}:{receiver.port}",
                error=getattr(exc, "strerror", None) or exc.__class__.__name__,
            )
        ) from None
    finally:
        sock.close()


def _await_close(sock: socket.socket, receiver: Receiver) -> None:
    """Close our side and wait for the receiver to close its own: it does so after reading everything we sent."""
    if isinstance(sock, ssl.SSLSocket):
        # TLS: close_notify, then the TCP half-close under it; the receiver answers by closing the session. Some
        # receivers close without their own close_notify: the close itself is what confirms.
        with contextlib.suppress(ssl.SSLError, OSError):
            sock = sock.unwrap()
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
    sock.settimeout(receiver.timeout)
    try:
        while sock.recv(4096):
            pass
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        pass  # the receiver closed (with or without its close_notify): that is the confirmation
    except TimeoutError:
        raise SyslogError(
            deferred.text(
                N_("The syslog receiver did not confirm the messages within %(seconds)s s."),
                seconds=int(receiver.timeout),
            )
        ) from None


def _deliver_udp(receiver: Receiver, messages: list[bytes]) -> None:
    try:
        family = socket.getaddrinfo(receiver.host, receiver.port, type=socket.SOCK_DGRAM)[0]
    except OSError as exc:
        raise _unreachable(receiver, exc) from None
    with socket.socket(family[0], socket.SOCK_DGRAM) as sock:
        sock.settimeout(receiver.timeout)
        for item in messages:
            try:
                sock.sendto(item, family[4])
            except OSError as exc:
                raise _unreachable(receiver, exc) from None
