"""The one door to Kubernetes: clients from stored credentials, acting as a user, timeouts, errors as sentences.

    with kube.client(cluster, as_user=actor) as k:
        k.patch("Deployment", namespace, name, {"spec": {"replicas": 3}})
        k.text("Pod", namespace, name, sub="log", accept="text/plain")

Requests go out through ``Transport`` (urllib3, with the stored kubeconfig's server, CA, token or client
certificate): the ``kubernetes`` package (~13 MB of generated models per process, bench/README.md) is imported
only by the web terminal's exec stream, whose channel protocol it implements. Paths come from ``kinds.path`` and
requests from ``Client.send``, nowhere else. The apps' ``k8s.py`` modules build on a Client and return plain data.
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlencode

import urllib3
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from apps.clusters import kinds
from apps.clusters.models import Cluster
from apps.core import untrusted

CONNECT_TIMEOUT = 3
READ_TIMEOUT = 10
FIELD_MANAGER = "kubemate"
TOO_MANY_REQUESTS_RETRIES = 5
# Each platform user acts in a cluster as this ServiceAccount (created by the RBAC projection).
MANAGED_NAMESPACE = "kubemate-system"


def user_service_account(user) -> str:
    return f"kubemate-u{user.pk}"


def impersonated_username(user) -> str:
    return f"system:serviceaccount:{MANAGED_NAMESPACE}:{user_service_account(user)}"


class KubeError(Exception):
    """A Kubernetes failure with a sentence a person can act on.

    ``reason`` is a stable word (``unauthorized``, ``forbidden``, ``not_found``, ``conflict``, ``invalid``,
    ``error``, ``dns``, ``tls``, ``tls_untrusted``, ``not_tls``, ``redirect``, ``closed``, ``too_large``,
    ``refused``, ``timeout``, ``network``, ``credentials``, ``unexpected``); ``status`` the HTTP status when
    the server answered; ``detail`` the server's own message.
    """

    reason = "error"

    def __init__(self, message: str = "", *, reason: str = "", status: int | None = None, detail: str = ""):
        super().__init__(message)
        self.reason = reason or self.reason
        self.status = status
        self.detail = detail


class ClusterUnreachable(KubeError):
    reason = "network"


class Forbidden(KubeError):
    reason = "forbidden"


class NotFound(KubeError):
    reason = "not_found"


class Conflict(KubeError):
    reason = "conflict"


class Invalid(KubeError):
    reason = "invalid"


class Expired(KubeError):
    """410 Gone: the resourceVersion is older than what the apiserver keeps; list again."""

    reason = "expired"


class ApiError(Exception):
    """An HTTP answer outside 2xx from an API server: its status, reason, body and headers (turned into a
    KubeError with a sentence by ``_translate``)."""

    def __init__(self, status: int, reason: str = "", body: str = "", headers=None):
        super().__init__(f"{status} {reason}")
        self.status, self.reason, self.body, self.headers = status, reason, body, headers or {}


def status_message(exc: ApiError) -> str:
    """The human message of a Kubernetes Status body, or the HTTP reason."""
    try:
        return json.loads(exc.body or "{}").get("message") or exc.reason or ""
    except (ValueError, AttributeError):
        return exc.reason or ""


def _translate(exc: ApiError, cluster: Cluster, method: str = "GET") -> KubeError:
    detail, status = status_message(exc), exc.status
    if status == 401:
        return ClusterUnreachable(
            _("Cluster %(name)s rejected Kubemate's credentials (401).") % {"name": cluster.name},
            reason="unauthorized",
            status=status,
            detail=detail,
        )
    if status == 403:
        return Forbidden(
            _("You are not allowed to do this in cluster %(name)s.") % {"name": cluster.name},
            status=status,
            detail=detail,
        )
    if status == 404:
        return NotFound(
            _("The object no longer exists in cluster %(name)s.") % {"name": cluster.name},
            status=status,
            detail=detail,
        )
    if status == 409:
        return Conflict(
            _("Someone else changed the object meanwhile; reload and try again."), status=status, detail=detail
        )
    if status == 410:
        return Expired(_("The watch position expired; listing again."), status=status, detail=detail)
    if status == 413:
        return Invalid(
            _("The object is too large for cluster %(name)s to accept (Kubernetes takes about 3 MB per request).")
            % {"name": cluster.name},
            status=status,
            detail=detail,
        )
    if status in (400, 422) and method.upper() in ("GET", "HEAD"):
        # A read Kubernetes cannot answer (a container that is not there, a log already rotated away).
        return Invalid(
            _("Kubernetes could not answer this request: %(reason)s") % {"reason": detail}, status=status, detail=detail
        )
    if status in (400, 422):
        return Invalid(
            _("Kubernetes refused the change: %(reason)s") % {"reason": detail}, status=status, detail=detail
        )
    return ClusterUnreachable(
        _("Cluster %(name)s answered with an error (%(status)s).") % {"name": cluster.name, "status": status},
        reason="error",
        status=status,
        detail=detail,
    )


def network_problem(exc: BaseException) -> tuple[str, str]:
    """Why a connection failed: a reason word and words an operator can act on."""
    cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    text = f"{exc} {cause}".lower()
    if isinstance(cause, urllib3.exceptions.NameResolutionError) or any(
        words in text for words in ("name or service not known", "nodename nor servname", "failed to resolve")
    ):
        return "dns", str(_("its host name does not resolve (DNS)"))
    if isinstance(cause, urllib3.exceptions.ResponseError) or "too many redirects" in text:
        return "redirect", str(_("it answers with redirects, not the Kubernetes API (a web page or a proxy there?)"))
    if "wrong version number" in text or "http_request" in text or "packet length too long" in text:
        return "not_tls", str(_("it does not speak TLS on that port (a plain HTTP service, or the wrong port)"))
    if "certificate_verify_failed" in text or "certificate verify failed" in text:
        return "tls_untrusted", str(_("its TLS certificate is not trusted (check the CA)"))
    if any(words in text for words in ("eof occurred", "unexpected eof", "broken pipe", "reset by peer", "aborted")):
        return "closed", str(_("it closed the connection before answering"))
    if isinstance(cause, urllib3.exceptions.SSLError) or "ssl" in text:
        return "tls", str(_("the TLS handshake failed"))
    # urllib3's NewConnectionError is a ConnectTimeoutError too: look at refusals first.
    if "refused" in text:
        return "refused", str(_("the connection was refused"))
    if isinstance(cause, urllib3.exceptions.TimeoutError | TimeoutError) or "timed out" in text or "timeout" in text:
        return "timeout", str(_("it did not answer in time"))
    return "network", str(_("the network connection failed"))


def _unreachable(cluster: Cluster, exc: BaseException) -> ClusterUnreachable:
    reason, words = network_problem(exc)
    cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    return ClusterUnreachable(
        _("Cluster %(name)s cannot be reached: %(reason)s.") % {"name": cluster.name, "reason": words},
        reason=reason,
        detail=str(getattr(cause, "__context__", None) or cause)[:200],
    )


JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
# A body this large that meets a dropped connection is taken to be over the apiserver's request limit.
LARGE_BODY_BYTES = 1_000_000
DELETE_IN_BACKGROUND = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
WATCH_SECONDS = 300
LIST_PAGE_SIZE = 500


class CredentialsError(ValueError):
    """A stored kubeconfig that cannot be used (the sentence says what is wrong)."""


class Transport:
    """HTTPS to one API server with one kubeconfig's credentials: the server, its CA, a bearer token or a client
    certificate, a TLS server name. Kubeconfigs are stored minimal (``registry.services.kubeconfig_for_context``:
    embedded data only, never files, commands or skipped TLS checks), so this is all a client needs. Certificate
    data lives in ``folder`` (a private temporary folder) while the client is open."""

    def __init__(self, kubeconfig: dict, folder: str):
        cluster, user = _current(kubeconfig)
        self.host = str(cluster.get("server") or "").rstrip("/")
        if not self.host.startswith("https://") and not self.host.startswith("http://"):
            raise CredentialsError("the cluster has no https:// server address")
        self.tls_server_name = str(cluster.get("tls-server-name") or "") or None
        self.ssl_ca_cert = _data_file(folder, "ca.crt", cluster.get("certificate-authority-data"))
        self.cert_file = _data_file(folder, "client.crt", user.get("client-certificate-data"))
        self.key_file = _data_file(folder, "client.key", user.get("client-key-data"))
        token = str(user.get("token") or "").strip()
        self.default_headers: dict[str, str] = {"User-Agent": f"kubemate/{settings.KUBEMATE_VERSION}"}
        if token:
            self.default_headers["Authorization"] = f"Bearer {token}"
        if self.host.startswith("https://"):
            context = ssl.create_default_context(cafile=self.ssl_ca_cert)
            if self.cert_file and self.key_file:
                context.load_cert_chain(self.cert_file, self.key_file)
            kwargs = {"ssl_context": context}
            if self.tls_server_name:
                kwargs["server_hostname"] = self.tls_server_name
        else:  # plain HTTP: only ever a test's own server; registration refuses it (check_url)
            kwargs = {}
        # retries=0: no retry, no redirect followed (a redirect is not the Kubernetes API: network_problem says so).
        self.pool = urllib3.PoolManager(num_pools=4, maxsize=8, retries=0, **kwargs)

    def set_default_header(self, name: str, value: str) -> None:
        self.default_headers[name] = value

    @property
    def bearer(self) -> str:
        return self.default_headers.get("Authorization", "")

    def request(self, method: str, path: str, *, query, headers: dict, body, timeout: tuple[float, float], stream):
        url = self.host + path + (("&" if "?" in path else "?") + urlencode(query) if query else "")
        return self.pool.request(
            method,
            url,
            body=body,
            headers={**self.default_headers, **headers},
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            preload_content=not stream,
            retries=0,
        )

    def close(self) -> None:
        self.pool.clear()


def _current(kubeconfig: dict) -> tuple[dict, dict]:
    """The cluster and user of the kubeconfig's current context."""
    if not isinstance(kubeconfig, dict):
        raise CredentialsError("not a kubeconfig")

    def named(section: str, key: str, name) -> dict:
        for entry in kubeconfig.get(section) or []:
            if isinstance(entry, dict) and entry.get("name") == name and isinstance(entry.get(key), dict):
                return entry[key]
        raise CredentialsError(f"no {key} named {name!r}")

    context = named("contexts", "context", kubeconfig.get("current-context"))
    return named("clusters", "cluster", context.get("cluster")), named("users", "user", context.get("user"))


def _data_file(folder: str, name: str, data) -> str | None:
    """Base64 ``data`` of a kubeconfig written to a private file (ssl wants files for certificates and keys)."""
    if not data:
        return None
    try:
        raw = base64.b64decode(str(data), validate=True)
    except (binascii.Error, ValueError):
        raise CredentialsError(f"{name} is not base64") from None
    path = Path(folder) / name
    path.touch(mode=0o600)
    path.write_bytes(raw)
    return str(path)


class Client:
    """Requests to one cluster as one identity: the only place a Kubernetes request is built and sent.

    Get one from ``kube.client(cluster, as_user=...)``. Every method takes a kind
    (a ``kinds.Kind`` or its name) and names; paths come from ``kinds.path``,
    which validates the names first. Failures raise KubeError subclasses with a
    sentence; statuses listed in ``passthrough`` come back instead.
    """

    def __init__(self, cluster: Cluster, api: Transport, *, connect_timeout: float, read_timeout: float):
        self.cluster = cluster
        self._api = api
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    # Where the client connects, for the registry's identity kubeconfig.
    @property
    def server(self) -> str:
        return self._api.host

    def ca_data(self) -> bytes:
        with open(self._api.ssl_ca_cert, "rb") as ca:
            return ca.read()

    # The one request builder -------------------------------------------------------------------

    def send(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body=None,
        content_type: str = JSON,
        accept: str = JSON,
        passthrough: tuple[int, ...] = (),
        timeout: float | None = None,
        stream: bool = False,
    ):
        """Send one request; returns ``(status, text)``, or ``(status, open urllib3 response)`` with ``stream``.

        Retries a 429 (API priority and fairness, or a resource type not served yet) as the server asks.
        """
        payload = None if body is None else (body if isinstance(body, str | bytes) else json.dumps(body, default=str))
        headers = {"Accept": accept, "Content-Type": content_type}
        request_timeout = (self.connect_timeout, timeout or self.read_timeout)
        for attempt in range(TOO_MANY_REQUESTS_RETRIES + 1):
            try:
                response = self._api.request(
                    method, path, query=query, headers=headers, body=payload, timeout=request_timeout, stream=stream
                )
                ok = 200 <= response.status <= 299
                if stream and ok:
                    return response.status, response
                if stream:
                    response.read()
                    response.release_conn()
                text = response.data.decode(errors="replace") if response.data else ""
                if not ok and response.status not in passthrough:
                    raise ApiError(response.status, response.reason or "", text, response.headers)
                return response.status, text
            except ApiError as exc:
                if exc.status == 429 and attempt < TOO_MANY_REQUESTS_RETRIES and 429 not in passthrough:
                    time.sleep(min(float((exc.headers or {}).get("Retry-After") or 1), 2.0))
                    continue
                raise _translate(exc, self.cluster, method) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                problem = _unreachable(self.cluster, exc)
                size = len(payload if isinstance(payload, str | bytes) else json.dumps(payload or ""))
                if problem.reason in ("closed", "tls") and size > LARGE_BODY_BYTES:
                    # An apiserver (or a proxy before it) drops a connection whose body is over its limit.
                    raise Invalid(
                        _(
                            "Cluster %(name)s closed the connection while receiving %(size)s: the object is too "
                            "large for it to accept (Kubernetes takes about 3 MB per request)."
                        )
                        % {"name": self.cluster.name, "size": filesizeformat(size)},
                        reason="too_large",
                        detail=problem.detail,
                    ) from None
                raise problem from None
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def json(self, method: str, path: str, **kwargs) -> dict:
        _status, text = self.send(method, path, **kwargs)
        try:
            return json.loads(text) if text else {}
        except ValueError:
            raise KubeError(
                _("%(server)s answered, but not like a Kubernetes API server (%(detail)s).")
                % {"server": self.cluster.api_server or self.cluster.name, "detail": _("the answer is not JSON")},
                reason="unexpected",
            ) from None

    # Verbs ---------------------------------------------------------------------------------------

    def get(self, kind, namespace: str | None = None, name: str | None = None, *, sub: str = "", **kwargs) -> dict:
        return self.json("GET", _path(kind, namespace, name, sub), **kwargs)

    def read(self, kind, namespace: str | None, name: str) -> dict | None:
        """The object, or None when it does not exist."""
        try:
            return self.get(kind, namespace, name)
        except NotFound:
            return None

    def text(self, kind, namespace: str | None, name: str, *, sub: str = "", **kwargs) -> tuple[int, str]:
        """A plain-text answer (logs) as ``(status, text)``."""
        return self.send("GET", _path(kind, namespace, name, sub), **kwargs)

    def stream(self, kind, namespace: str | None, name: str, *, sub: str = "", **kwargs):
        """An open streaming answer; errors are raised before the first chunk."""
        _status, response = self.send("GET", _path(kind, namespace, name, sub), stream=True, **kwargs)
        return response

    def list_page(self, kind, namespace: str | None = None, *, query: list[tuple[str, str]] | None = None) -> dict:
        return self.get(kind, namespace, query=query)

    def list(
        self, kind, namespace: str | None = None, *, label_selector: str = "", field_selector: str = ""
    ) -> list[dict]:
        """Every object of ``kind`` (in ``namespace``), page by page."""
        items, token = [], ""
        while True:
            query = [("limit", str(LIST_PAGE_SIZE))]
            query += [("labelSelector", label_selector)] if label_selector else []
            query += [("fieldSelector", field_selector)] if field_selector else []
            query += [("continue", token)] if token else []
            page = self.list_page(kind, namespace, query=query)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue", "")
            if not token:
                return items

    def patch(self, kind, namespace: str | None, name: str, body: dict, *, sub: str = "") -> dict:
        """A JSON merge patch."""
        return self.json("PATCH", _path(kind, namespace, name, sub), body=body, content_type=MERGE_PATCH)

    def apply(self, manifest: dict, *, dry_run: bool = False) -> dict:
        """Server-side apply with Kubemate's field manager, taking over conflicting fields."""
        meta = manifest.get("metadata") or {}
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")] + ([("dryRun", "All")] if dry_run else [])
        path = _path(manifest.get("kind", ""), meta.get("namespace"), meta.get("name"))
        return self.json("PATCH", path, query=query, body=manifest, content_type=APPLY_PATCH)

    def replace(self, manifest: dict, *, dry_run: bool = False) -> dict:
        """PUT the whole object; the resourceVersion inside makes a concurrent change a Conflict."""
        meta = manifest.get("metadata") or {}
        query = [("fieldManager", FIELD_MANAGER)] + ([("dryRun", "All")] if dry_run else [])
        path = _path(manifest.get("kind", ""), meta.get("namespace"), meta.get("name"))
        return self.json("PUT", path, query=query, body=manifest)

    def post(
        self, kind, namespace: str | None = None, name: str | None = None, *, body: dict, sub: str = "", **kwargs
    ) -> tuple[int, dict]:
        """Create an object or call a subresource (eviction, token); ``(status, answer)``."""
        status, text = self.send("POST", _path(kind, namespace, name, sub), body=body, **kwargs)
        try:
            return status, json.loads(text) if text else {}
        except ValueError:
            return status, {"message": text}

    def delete(self, kind, namespace: str | None, name: str) -> bool:
        """Delete one object, its dependents in the background; False when it was already gone."""
        try:
            self.send("DELETE", _path(kind, namespace, name), body=DELETE_IN_BACKGROUND)
        except NotFound:
            return False
        return True

    def version(self) -> dict:
        return self.json("GET", "/version")

    def may(self, verb: str, group: str, resource: str, subresource: str = "", namespace: str = "") -> bool:
        """Ask the cluster (SelfSubjectAccessReview) whether this client's identity may do ``verb``."""
        _status, review = self.post(
            "SelfSubjectAccessReview", body=access_review(verb, group, resource, subresource, namespace)
        )
        return bool((review.get("status") or {}).get("allowed"))

    def exec_stream(self, namespace: str, pod: str, container: str, command: list[str], *, tty: bool = True):
        """A shell (or ``command``) in a container: the pods/exec websocket with stdin, as this client's identity.

        Returns the client library's WSClient (``write_stdin``, ``read_stdout``, ``write_channel(4, size)``,
        ``is_open``, ``close``); it lives as long as the caller keeps this Client open. A refusal raises
        KubeError with the cluster's reason (Forbidden when RBAC says no). The client library's own websocket
        helper drops every header but Authorization, the impersonation header with them, so the socket is made
        here (``_ExecSocket``): the cluster sees the person, never Kubemate's own identity.
        """
        kinds.check_namespace(namespace)
        kinds.check_name(pod)
        query = [("container", container), *(("command", part) for part in command)]
        query += [("stdin", "true"), ("stdout", "true"), ("stderr", "true"), ("tty", "true" if tty else "false")]
        path = f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}/exec?{urlencode(query)}"
        from kubernetes.stream import ws_client  # the channel protocol; only the web terminal comes here
        from websocket import WebSocketException

        headers = {k: v for k, v in self._api.default_headers.items() if k.lower().startswith("impersonate-")}
        if self._api.bearer:
            headers["Authorization"] = self._api.bearer
        try:
            url = ws_client.get_websocket_url(self._api.host + path)
            return _exec_socket_class()(self._api, url, headers, self.connect_timeout)
        except WebSocketException as exc:
            status = getattr(exc, "status_code", None)
            if status:
                refusal = ApiError(status, str(getattr(exc, "resp_body", b"") or b"")[:500])
                raise _translate(refusal, self.cluster, "POST") from None
            raise _unreachable(self.cluster, exc) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise _unreachable(self.cluster, exc) from None

    def watch(self, kind, resource_version: str) -> Iterator[dict]:
        """Watch events of ``kind`` from ``resource_version`` with bookmarks, one dict per event.

        Ends when the server closes the watch (after WATCH_SECONDS); raises Expired
        on 410 and ClusterUnreachable when the connection drops.
        """
        query = [
            ("watch", "1"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(WATCH_SECONDS)),
        ]
        _status, response = self.send("GET", _path(kind), query=query, timeout=WATCH_SECONDS + 30, stream=True)
        buffer = b""
        try:
            for chunk in response.stream(65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        event = json.loads(line)
                        if event.get("type") == "ERROR" and (event.get("object") or {}).get("code") == 410:
                            raise Expired(_("The watch position expired; listing again."), status=410)
                        yield event
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _unreachable(self.cluster, exc) from None
        finally:
            response.release_conn()


def _path(kind, namespace=None, name=None, sub: str = "") -> str:
    try:
        return kinds.path(kind, namespace, name, sub)
    except kinds.InvalidName as exc:
        raise Invalid(str(exc), reason="invalid_name") from None


@lru_cache(maxsize=1)
def _exec_socket_class():
    """``_ExecSocket``, made on first use: it subclasses the client library's channel reader/writer, which imports
    the whole ``kubernetes`` package (only the terminal server pays for it)."""
    from kubernetes.stream import ws_client
    from websocket import WebSocket

    class _ExecSocket(ws_client.WSClient):
        """The client library's channel reader/writer (read_stdout, write_stdin, write_channel...) over a websocket
        made with every header it is given: the library's own ``create_websocket`` keeps only Authorization."""

        def __init__(self, transport: Transport, url: str, headers: dict, timeout: float):
            ssl_opts = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": transport.ssl_ca_cert}
            if transport.cert_file:
                ssl_opts["certfile"] = transport.cert_file
            if transport.key_file:
                ssl_opts["keyfile"] = transport.key_file
            if transport.tls_server_name:
                ssl_opts["server_hostname"] = transport.tls_server_name
            header = [f"{name}: {value}" for name, value in headers.items()]
            header.append(f"sec-websocket-protocol: {ws_client.V5_CHANNEL_PROTOCOL},{ws_client.V4_CHANNEL_PROTOCOL}")
            sock = WebSocket(sslopt=ssl_opts, skip_utf8_validation=False)
            sock.settimeout(timeout)
            sock.connect(url, header=header)
            sock.settimeout(None)
            # The state WSClient.__init__ sets after connecting.
            self.sock = sock
            self.subprotocol = getattr(sock, "subprotocol", None)
            self.binary = False
            self.newline = "\n"
            self._all = ws_client._IgnoredIO()
            self._channels = {}
            self._closed_channels = set()
            self._returncode = None
            self._connected = True

    return _ExecSocket


@contextmanager
def client(
    cluster: Cluster, *, as_user=None, connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT
) -> Iterator[Client]:
    """A Client for ``cluster``, closed after use.

    With ``as_user`` every request impersonates that user's ServiceAccount, so
    the cluster's RBAC decides and its audit log names the user. Without it the
    client is Kubemate's own identity (sync and RBAC projection only). No
    header from a browser request is ever copied here.

    The kubeconfig is decrypted in memory; certificate data ssl needs as files
    lives in a private temporary folder removed on exit.
    Credentials that cannot be loaded raise KubeError with reason ``credentials``.
    """
    with tempfile.TemporaryDirectory(prefix="kubemate-kube-") as tmp:
        try:
            api = Transport(untrusted.load_yaml(cluster.kubeconfig(), untrusted.KUBECONFIG), tmp)
        except (CredentialsError, ssl.SSLError, ValueError, TypeError, KeyError) as exc:  # UntrustedInput: ValueError
            raise KubeError(
                _("The credentials cannot be loaded: %(detail)s") % {"detail": str(exc)[:200]},
                reason="credentials",
                detail=str(exc)[:200],
            ) from None
        if as_user is not None:
            api.set_default_header("Impersonate-User", impersonated_username(as_user))
        try:
            yield Client(cluster, api, connect_timeout=connect_timeout, read_timeout=read_timeout)
        finally:
            api.close()


def access_review(verb: str, group: str, resource: str, subresource: str = "", namespace: str = "") -> dict:
    """The body of a SelfSubjectAccessReview: may the caller do ``verb`` on ``group/resource[/subresource]``?"""
    attributes = {
        "verb": verb,
        "group": group,
        "resource": resource,
        "subresource": subresource,
        "namespace": namespace,
    }
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
