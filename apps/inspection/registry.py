"""The one door to container registries, for the inspection's reachability check, and how image references name
them.

``probe(host)`` asks the Docker Registry HTTP API V2 base endpoint (``GET /v2/``): 200 (open) or 401 (wants a
login) both mean a registry answers there. Bounded: 3 s to connect and 3 s for the answer's head, no redirects
followed, the body never read. ``probe_all`` asks a few hosts at once so that twenty silent registries cost seconds,
not a minute.

Which address is asked:

- HTTPS with the system's trust store, always, except for a host named in ``settings.KUBEMATE_INSECURE_REGISTRIES``
  (``host`` or ``host:port`` spelled as the images spell it): a plain-HTTP registry inside the bank's network, named
  by an administrator the way containerd's configuration names it. Nothing else falls back to plain HTTP.
- Docker Hub (``docker.io``, and images without a registry) is asked at ``registry-1.docker.io``, where its API is.
- A loopback registry (``localhost:5000/app``) is each node's own: Kubemate's loopback is another machine's, so it
  is not asked (``askable``) unless the setting names it. (The tests name their loopback stand-in there.)
- A link-local or cloud metadata address is refused unless the cluster allows them, as for every address Kubemate
  calls (``address_problem``).

Answers are deferred sentences (None when the registry answers): they are stored in findings and read later.
"""

from __future__ import annotations

import ipaddress
import re
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from apps.clusters.kube import network_problem
from apps.clusters.registry.services import address_problem
from apps.core.deferred import N_
from apps.core.deferred import text as D

TIMEOUT = 3
WORKERS = 8
DOCKER_HUB = "docker.io"
HUB_API = "registry-1.docker.io"
# A registry host as an image reference spells it: a DNS name or a bracketed IPv6 address, an optional port.
HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$"
)
# A repository path (distribution's reference grammar): lowercase components joined by "/".
PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
MAX_REFERENCE = 512

_WHY = {
    "dns": N_("its host name does not resolve (DNS)"),
    "refused": N_("the connection was refused"),
    "timeout": N_("it did not answer within %(seconds)s seconds"),
    "closed": N_("it closed the connection before answering"),
    "not_tls": N_("it does not speak TLS on that port (a plain-HTTP registry must be named in the settings)"),
    "tls_untrusted": N_("its TLS certificate is not trusted by Kubemate's server (check the CA)"),
    "tls": N_("the TLS handshake failed"),
}


# Image references ------------------------------------------------------------------------------------------------


def split(image: str) -> tuple[str, str, str, str]:
    """(registry host, repository path, tag, digest) of an image reference, with Docker's defaults: no registry is
    Docker Hub, a Hub image without a path is under ``library/``. Tag and digest stay blank when absent; the host is
    blank when the reference is not one."""
    image = image.strip()[:MAX_REFERENCE]
    name, _at, digest = image.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = DOCKER_HUB, name
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = DOCKER_HUB
    last = path.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        path, tag = path.rsplit(":", 1)
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not HOST.match(host) or not PATH.match(path):
        return "", "", "", ""
    return host, path, tag, digest


def registry_of(image: str) -> str:
    """The registry host an image is pulled from (``docker.io`` for Docker Hub); blank for no valid reference."""
    return split(image)[0]


def full_names(image: str) -> set[str]:
    """The names a node's container runtime lists an image under (``docker.io/library/busybox:1.36``,
    ``…@sha256:…``): an untagged reference without a digest is ``:latest``."""
    host, path, tag, digest = split(image.removeprefix("docker-pullable://"))
    if not host:
        return set()
    names = set()
    if tag or not digest:
        names.add(f"{host}/{path}:{tag or 'latest'}")
    if digest:
        names.add(f"{host}/{path}@{digest}")
    return names


# The door ---------------------------------------------------------------------------------------------------------


def _insecure() -> set[str]:
    return {str(h).strip().lower() for h in getattr(settings, "KUBEMATE_INSECURE_REGISTRIES", ()) or ()}


def _bare_host(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if ":" in host else host


def is_loopback(host: str) -> bool:
    bare = _bare_host(host).lower()
    if bare == "localhost" or bare.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def askable(host: str) -> bool:
    """Whether Kubemate can ask ``host`` on the nodes' behalf (not a node's own loopback, unless named)."""
    return bool(host) and (not is_loopback(host) or host.lower() in _insecure())


def base_url(host: str) -> str:
    if host == DOCKER_HUB:
        host = HUB_API
    scheme = "http" if host.lower() in _insecure() else "https"
    return f"{scheme}://{host}/v2/"


def probe(host: str, *, allow_link_local: bool = False) -> str | None:
    """None when the registry at ``host`` answers the registry API; otherwise the deferred sentence saying why not."""
    import requests

    url = base_url(host)
    if address_problem(url, allow_link_local=allow_link_local):
        return D(
            N_(
                "Registry %(host)s was not asked: it is a link-local or cloud metadata address, which Kubemate "
                "refuses unless the cluster allows them."
            ),
            host=host,
        )
    try:
        with (
            requests.Session() as session,
            session.get(url, timeout=(TIMEOUT, TIMEOUT), allow_redirects=False, stream=True) as response,
        ):
            status = response.status_code  # the head is enough: the body is never read
    except requests.RequestException as exc:
        reason, _words = network_problem(exc)
        why = D(_WHY.get(reason, N_("the network connection failed")), seconds=TIMEOUT)
        return D(N_("Registry %(host)s could not be reached: %(why)s."), host=host, why=why)
    if status in (200, 401):
        return None
    return D(N_("Registry %(host)s answered HTTP %(status)s to the registry API (GET /v2/)."), host=host, status=status)


def probe_all(hosts: list[str], *, allow_link_local: bool = False) -> dict[str, str | None]:
    """``probe`` of each host, a few at a time."""
    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(hosts)), thread_name_prefix="registry-probe") as pool:
        answers = pool.map(lambda h: probe(h, allow_link_local=allow_link_local), hosts)
        return dict(zip(hosts, answers, strict=True))
