"""The one door to Kubemate host agents (agent/): HTTPS to the agent's address, its certificate pinned, a bearer token.

An agent makes its own self-signed certificate, so no CA vouches for it: Kubemate pins the SHA-256 fingerprint of
the certificate instead (read at registration, "trust on first use", or typed from the agent's log). Each request
opens its own TLS connection, compares the certificate the peer presented with the pinned fingerprint, and only
then sends the request that carries the token: a peer that is not the pinned agent never sees it.
``http.client`` rather than requests, because the order "handshake, compare, then send" is spelled out here and
no proxy setting from the environment can put another hop in between.

Answers are bounded before they are parsed (``MAX_REPORT_BYTES``, read within ``ANSWER_SECONDS`` for the whole
answer; nesting and item count through ``core.untrusted``). Every failure is an ``AgentError`` whose message is a
deferred sentence: the agent could not be reached, presented another certificate, refused the token, or answered
something that is not a report.

Registering, changing and removing agents are services here too (one transaction, one audit event each), because
each of them talks to the agent through this door; the token is encrypted at rest (``core.crypto``) and never put in
an audit detail, a log line or an error.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import re
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.clusters.registry.services import RegistryError, address_problem, check_url
from apps.core import audit, crypto, untrusted
from apps.core.deferred import N_, Failure, fit
from apps.core.deferred import text as D
from apps.core.models import AuditEvent
from apps.inspection import access
from apps.inspection.models import HostAgent

logger = logging.getLogger(__name__)

CONNECT_SECONDS = 5
# The agent collects when asked (a CPU sample, collectors with their own timeouts of a few seconds).
ANSWER_SECONDS = 30
MAX_REPORT_BYTES = 4 * 1024 * 1024
REPORT_LIMITS = untrusted.Limits(max_bytes=MAX_REPORT_BYTES, max_depth=12, max_nodes=400_000)
CHUNK = 64 * 1024
MIN_TOKEN, MAX_TOKEN = 16, 4096  # what the agent itself accepts in its token file
FINGERPRINT_HEX = re.compile(r"^[0-9A-F]{64}$")
UNCHANGED = object()


class AgentError(Failure):
    """The agent gave no usable answer; the message is the sentence to show, ``stored`` the one to keep."""


class Unreachable(AgentError):
    """No TLS connection: refused, timed out, name unknown, handshake failed."""


class WrongCertificate(AgentError):
    """The peer's certificate is not the pinned one; the token was not sent."""


class TokenRefused(AgentError):
    """The agent answered 401: the token is not the one in its token file."""


class BadAnswer(AgentError):
    """An answer that is not a report: another status, too large, too slow, not JSON, the wrong shape."""


class Refused(AgentError):
    """A registration or change that cannot be made, with the reason."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    path: str  # the base path, without a trailing slash
    url: str


# Fingerprints ------------------------------------------------------------------------------------------------


def fingerprint_of(der: bytes) -> str:
    """The SHA-256 of a DER certificate as colon-separated upper-case hex (95 characters), openssl's form."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def normalize_fingerprint(value: str) -> str:
    """``value`` as it is stored, from the forms people paste: the agent's log (``sha256:AA:BB:…``), openssl's
    ``SHA256 Fingerprint=AA:BB:…``, or bare hex in either case. Refused with a sentence otherwise."""
    text = (value or "").strip()
    text = re.sub(r"^(sha-?256)(\s+fingerprint)?\s*[:=]\s*", "", text, flags=re.IGNORECASE)
    digits = re.sub(r"[\s:]", "", text).upper()
    if not FINGERPRINT_HEX.match(digits):
        raise Refused(
            D(
                N_(
                    "The certificate fingerprint must be a SHA-256 fingerprint: 64 hexadecimal digits, with or "
                    "without colons, as the agent's log prints it after tls_fingerprint."
                )
            )
        )
    return ":".join(digits[i : i + 2] for i in range(0, 64, 2))


# Addresses ---------------------------------------------------------------------------------------------------


def address_of(url: str) -> Address:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise Refused(D(N_("The agent's address must start with https:// and name a host.")))
    return Address(parts.hostname, parts.port or 443, parts.path.rstrip("/"), url)


def checked_url(url: str) -> str:
    """``url`` when it is an https address Kubemate may call (no credentials, no link-local or metadata address)."""
    try:
        url = check_url(url, schemes=("https",))
    except RegistryError as exc:
        raise Refused(str(exc)) from None
    problem = address_problem(url, allow_link_local=False)
    if problem:
        raise Refused(problem)
    address_of(url)
    return url


def checked_token(token: str) -> str:
    token = (token or "").strip()
    if not MIN_TOKEN <= len(token) <= MAX_TOKEN or any(ch.isspace() or not ch.isprintable() for ch in token):
        raise Refused(
            D(
                N_(
                    "The token must be %(min)s to %(max)s printable characters without spaces, the content of the "
                    "agent's token file."
                ),
                min=MIN_TOKEN,
                max=MAX_TOKEN,
            )
        )
    return token


# The conversation ----------------------------------------------------------------------------------------------


def _tls_context() -> ssl.SSLContext:
    # The agent's certificate is self-signed: no chain to verify and no name to match. The pin, compared right
    # after the handshake and before anything is sent, is what authenticates the agent.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _unreachable(name: str, address: Address, exc: BaseException) -> Unreachable:
    values = {"agent": name, "url": address.url}
    if isinstance(exc, TimeoutError | socket.timeout):
        sentence = N_("Host agent %(agent)s at %(url)s did not answer within %(seconds)s seconds.")
        return Unreachable(D(sentence, seconds=CONNECT_SECONDS, **values))
    if isinstance(exc, socket.gaierror):
        return Unreachable(D(N_("The host name of host agent %(agent)s (%(url)s) does not resolve."), **values))
    if isinstance(exc, ssl.SSLError):
        sentence = N_("The TLS handshake with host agent %(agent)s at %(url)s failed: %(error)s")
        return Unreachable(D(sentence, error=str(exc.reason or exc)[:200], **values))
    error = getattr(exc, "strerror", None) or type(exc).__name__
    return Unreachable(D(N_("Host agent %(agent)s at %(url)s could not be reached: %(error)s."), error=error, **values))


def _connect(name: str, address: Address) -> tuple[http.client.HTTPSConnection, socket.socket, str]:
    """An open TLS connection to the agent, its socket, and the fingerprint of the certificate it presented.

    The socket is kept apart because http.client lets go of it (``connection.sock`` becomes None) once an answer
    says the connection will close; the answer is still read from it."""
    connection = http.client.HTTPSConnection(
        address.host, address.port, timeout=CONNECT_SECONDS, context=_tls_context()
    )
    try:
        connection.connect()
        sock = connection.sock
        der = sock.getpeercert(binary_form=True)
    except (OSError, ValueError) as exc:
        connection.close()
        raise _unreachable(name, address, exc) from None
    if not der:
        connection.close()
        raise Unreachable(
            D(N_("Host agent %(agent)s at %(url)s presented no certificate."), agent=name, url=address.url)
        )
    return connection, sock, fingerprint_of(der)


def read_fingerprint(url: str, *, name: str = "") -> str:
    """The fingerprint of the certificate the agent at ``url`` presents now (trust on first use). Nothing is sent."""
    address = address_of(url)
    connection, _sock, seen = _connect(name or address.host, address)
    connection.close()
    return seen


def _read(name: str, address: Address, sock: socket.socket, response, deadline: float) -> bytes:
    too_large = BadAnswer(
        D(
            N_("Host agent %(agent)s at %(url)s answered with more than %(limit)s bytes; Kubemate reads no more."),
            agent=name,
            url=address.url,
            limit=f"{MAX_REPORT_BYTES:,}",
        )
    )
    length = response.getheader("Content-Length") or ""
    if length.isdigit() and int(length) > MAX_REPORT_BYTES:
        raise too_large
    chunks, size = [], 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = response.read1(CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_REPORT_BYTES:
            raise too_large
        chunks.append(chunk)


def _ask(name: str, url: str, token: str, pin: str, path: str = "/report") -> bytes:
    """The body of GET ``path`` from the pinned agent: 200 and at most MAX_REPORT_BYTES, within ANSWER_SECONDS."""
    address = address_of(url)
    values = {"agent": name, "url": address.url}
    deadline = time.monotonic() + ANSWER_SECONDS
    connection, sock, seen = _connect(name, address)
    response = None
    try:
        if not hmac.compare_digest(seen, pin):
            logger.warning("host agent certificate does not match its pin", extra={"agent": name, "url": address.url})
            sentence = N_(
                "Host agent %(agent)s at %(url)s presented a certificate with fingerprint %(seen)s, not the pinned "
                "%(pinned)s, so Kubemate did not send its token. If the agent was restarted with a new self-signed "
                "certificate, register it again with the fingerprint from its log."
            )
            raise WrongCertificate(D(sentence, seen=seen, pinned=pin, **values))
        try:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            connection.request(
                "GET",
                (address.path or "") + path,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": "kubemate"},
            )
            response = connection.getresponse()
            if response.status == 401:
                sentence = N_(
                    "Host agent %(agent)s at %(url)s refused Kubemate's token (HTTP 401): give the token from the "
                    "agent's token file again."
                )
                raise TokenRefused(D(sentence, **values))
            if response.status != 200:
                raise BadAnswer(
                    D(N_("Host agent %(agent)s at %(url)s answered HTTP %(status)s."), status=response.status, **values)
                )
            return _read(name, address, sock, response, deadline)
        except TimeoutError:
            sentence = N_("Host agent %(agent)s at %(url)s did not send its report within %(seconds)s seconds.")
            raise BadAnswer(D(sentence, seconds=ANSWER_SECONDS, **values)) from None
        except http.client.HTTPException as exc:
            sentence = N_("Host agent %(agent)s at %(url)s did not answer in HTTP: %(error)s")
            raise BadAnswer(D(sentence, error=type(exc).__name__, **values)) from None
        except OSError as exc:
            raise _unreachable(name, address, exc) from None
    finally:
        if response is not None:
            response.close()
        connection.close()
        sock.close()


def parse_report(name: str, url: str, body: bytes) -> dict:
    """The report in ``body``, bounded before it is parsed; BadAnswer with the reason otherwise."""
    values = {"agent": name, "url": url}
    try:
        report = untrusted.load_json(body, REPORT_LIMITS)
    except untrusted.UntrustedInput as exc:
        sentence = N_("Host agent %(agent)s at %(url)s answered something that is not a report: %(error)s")
        raise BadAnswer(D(sentence, error=str(exc)[:200], **values)) from None
    if (
        not isinstance(report, dict)
        or not isinstance(report.get("collectors"), dict)
        or not isinstance(report.get("agent_version", ""), str)
    ):
        raise BadAnswer(D(N_("Host agent %(agent)s at %(url)s answered JSON that is not an agent's report."), **values))
    return report


def _report(name: str, url: str, token: str, pin: str) -> dict:
    return parse_report(name, url, _ask(name, url, token, pin))


def _token_of(agent: HostAgent) -> str:
    try:
        return crypto.decrypt(agent.token_encrypted)
    except crypto.DecryptionFailed:
        sentence = N_(
            "The stored token of host agent %(agent)s cannot be decrypted with the configured keys; register the "
            "agent again."
        )
        raise AgentError(D(sentence, agent=agent.name)) from None


def fetch_report(agent: HostAgent) -> dict:
    """The agent's report (``host``, ``agent_version``, ``collected_at``, ``collectors``: see agent/README.md).

    Keeps on the row when the agent last answered, its version, or the sentence saying why it did not.
    """
    try:
        if not agent.fingerprint:
            sentence = N_(
                "No certificate fingerprint is pinned for host agent %(agent)s, so Kubemate does not send it its "
                "token; register the agent again."
            )
            raise AgentError(D(sentence, agent=agent.name))
        # Normalized again: a pin typed in the admin may be spelled as the agent's log spells it.
        report = _report(agent.name, agent.url, _token_of(agent), normalize_fingerprint(agent.fingerprint))
    except AgentError as exc:
        agent.last_error = fit(exc.stored, 500)
        HostAgent.objects.filter(pk=agent.pk).update(last_error=agent.last_error)
        raise
    agent.last_seen_at, agent.last_error = timezone.now(), ""
    agent.agent_version = str(report.get("agent_version") or "")[:32]
    HostAgent.objects.filter(pk=agent.pk).update(
        last_seen_at=agent.last_seen_at, last_error="", agent_version=agent.agent_version
    )
    return report


# Registering, changing, removing ------------------------------------------------------------------------------


def _allowed(actor) -> None:
    if actor is not None and not access.may_manage_targets(actor):
        raise Refused(D(N_("You may not register or change host agents.")))


def _taken(name: str, exclude: int | None = None) -> Refused | None:
    if HostAgent.objects.filter(name=name).exclude(pk=exclude).exists():
        return Refused(D(N_("A host agent named %(name)s is already registered."), name=name))
    return None


def _tested(*, actor, action: str, name: str, url: str, token: str, fingerprint: str, cluster, request) -> tuple:
    """The pin (given, or read now) and the agent's report; audits the failure and raises when it does not answer."""
    try:
        pin = fingerprint or read_fingerprint(url, name=name)
        report = _report(name, url, token, pin)
    except AgentError as exc:
        audit.record(
            actor=actor,
            action=action,
            result=AuditEvent.Result.FAILURE,
            cluster=cluster.name if cluster else "",
            kind="HostAgent",
            name=name,
            detail={"url": url, "error": type(exc).__name__},
            request=request,
        )
        raise
    return pin, report


def register_agent(
    *, actor, name: str, url: str, token: str, fingerprint: str = "", cluster=None, node_name: str = "", request=None
) -> HostAgent:
    """Register the agent at ``url`` once it answers with ``token``; its certificate is pinned (``fingerprint``, or
    the one it presents now when none is given). Nothing is stored when it does not answer."""
    _allowed(actor)
    url, token = checked_url(url), checked_token(token)
    fingerprint = normalize_fingerprint(fingerprint) if fingerprint else ""
    if taken := _taken(name):
        raise taken
    pin, report = _tested(
        actor=actor,
        action="inspection.agent.register",
        name=name,
        url=url,
        token=token,
        fingerprint=fingerprint,
        cluster=cluster,
        request=request,
    )
    version = str(report.get("agent_version") or "")[:32]
    try:
        with transaction.atomic():
            agent = HostAgent.objects.create(
                name=name,
                url=url,
                token_encrypted=crypto.encrypt(token),
                fingerprint=pin,
                cluster=cluster,
                node_name=node_name,
                created_by=actor,
                last_seen_at=timezone.now(),
                agent_version=version,
            )
            audit.record(
                actor=actor,
                action="inspection.agent.register",
                cluster=cluster.name if cluster else "",
                kind="HostAgent",
                name=name,
                detail={
                    "url": url,
                    "fingerprint": pin,
                    "pinned": "given" if fingerprint else "first use",
                    "node": node_name,
                    "version": version,
                },
                request=request,
            )
    except IntegrityError:  # registered by someone else meanwhile
        raise _taken(name) or Refused(D(N_("The host agent could not be saved; try again."))) from None
    return agent


def update_agent(
    *,
    actor,
    agent: HostAgent,
    name: str | None = None,
    url: str | None = None,
    token: str | None = None,
    fingerprint: str | None = None,
    cluster=UNCHANGED,
    node_name: str | None = None,
    enabled: bool | None = None,
    request=None,
) -> HostAgent:
    """Change what is given. A new address, token or fingerprint is tested first (``fingerprint=""`` trusts the
    certificate presented now: after the agent was restarted with a new self-signed one)."""
    _allowed(actor)
    changes: dict[str, object] = {}
    if name is not None and name != agent.name:
        if taken := _taken(name, exclude=agent.pk):
            raise taken
        changes["name"] = name
    if url is not None and url != agent.url:
        changes["url"] = checked_url(url)
    if node_name is not None and node_name != agent.node_name:
        changes["node_name"] = node_name
    if enabled is not None and enabled != agent.enabled:
        changes["enabled"] = enabled
    if cluster is not UNCHANGED and getattr(cluster, "pk", None) != agent.cluster_id:
        changes["cluster"] = cluster
    detail: dict[str, object] = {k: v for k, v in changes.items() if k not in ("cluster",)}
    if "cluster" in changes:
        detail["cluster"] = cluster.name if cluster else ""
    new_token = checked_token(token) if token else None
    if fingerprint:
        fingerprint = normalize_fingerprint(fingerprint)
    if new_token or fingerprint is not None or "url" in changes:
        pin, _report_now = _tested(
            actor=actor,
            action="inspection.agent.update",
            name=agent.name,
            url=str(changes.get("url", agent.url)),
            token=new_token or _token_of(agent),
            fingerprint=agent.fingerprint if fingerprint is None else fingerprint,
            cluster=agent.cluster,
            request=request,
        )
        if pin != agent.fingerprint:
            changes["fingerprint"] = detail["fingerprint"] = pin
        if new_token:
            changes["token_encrypted"] = crypto.encrypt(new_token)
            detail["token"] = "replaced"  # noqa: S105 (a word for the audit log, not a token)
    if not changes:
        return agent
    with transaction.atomic():
        for field, value in changes.items():
            setattr(agent, field, value)
        agent.last_error = ""
        agent.save()
        audit.record(
            actor=actor,
            action="inspection.agent.update",
            cluster=agent.cluster.name if agent.cluster else "",
            kind="HostAgent",
            name=agent.name,
            detail=detail,
            request=request,
        )
    return agent


def delete_agent(*, actor, agent: HostAgent, request=None) -> None:
    _allowed(actor)
    with transaction.atomic():
        audit.record(
            actor=actor,
            action="inspection.agent.delete",
            cluster=agent.cluster.name if agent.cluster else "",
            kind="HostAgent",
            name=agent.name,
            detail={"url": agent.url, "fingerprint": agent.fingerprint},
            request=request,
        )
        agent.delete()
