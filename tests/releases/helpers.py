"""Form data for a release, as a browser posts it."""

from apps.releases import render
from apps.releases.forms import initial_from_spec


def form_data(**overrides) -> dict:
    data = {k: v for k, v in initial_from_spec(render.default_spec()).items() if v is not None and v is not False}
    data.update(image="registry.bank.example/payments-api:1.0.0", replicas=2)
    data["service_enabled"] = "on"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


ROUTE = {
    "route_enabled": "on",
    "route_hostname": "pay.bank.example",
    "gateway_name": "public",
    "gateway_namespace": "gateway-system",
}
