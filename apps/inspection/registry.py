"""The one door to container registries, for the inspection's reachability check: ``probe(host)`` asks the Docker
Registry HTTP API V2 base endpoint (``GET /v2/``), where 200 or 401 both mean a registry answers. Bounded: a 3 s
timeout, no redirects followed, at most 64 KiB read. HTTPS always, except for a host in
``settings.KUBEMATE_INSECURE_REGISTRIES`` (a plain-HTTP registry inside the bank's network, named explicitly)."""

from __future__ import annotations

import requests
from django.conf import settings

from apps.core.deferred import N_
from apps.core.deferred import text as D

TIMEOUT = 3
MAX_BYTES = 64 * 1024


def base_url(host: str) -> str:
    plain = host in set(getattr(settings, "KUBEMATE_INSECURE_REGISTRIES", ()))
    return f"{'http' if plain else 'https'}://{host}/v2/"


def probe(host: str) -> str | None:
    """None when the registry at ``host`` answers; otherwise the deferred sentence saying why not."""
    url = base_url(host)
    try:
        with requests.get(url, timeout=TIMEOUT, allow_redirects=False, stream=True) as response:
            response.raw.read(MAX_BYTES, decode_content=False)
            status = response.status_code
    except requests.exceptions.SSLError:
        return D(N_("Registry %(host)s answered with a certificate this server does not trust."), host=host)
    except requests.RequestException as exc:
        return D(N_("Registry %(host)s could not be reached: %(error)s."), host=host, error=type(exc).__name__)
    if status in (200, 401):
        return None
    return D(N_("Registry %(host)s answered HTTP %(status)s to the registry API."), host=host, status=status)
