"""Where the firing-alerts card of the dashboard and of a cluster's overview loads from
(``{% load alert_counts %}``)."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.http import urlencode

from apps.accounts import access
from apps.accounts.capabilities import ALERTS_VIEW

register = template.Library()


@register.simple_tag(takes_context=True)
def alert_counts_url(context, cluster=None) -> str:
    """The card's address, or "" when the reader sees no alerts (anywhere, or in ``cluster``)."""
    user = context["request"].user
    url = reverse("observability:alert_counts")
    if cluster is not None:
        if not cluster.alertmanager_url or access.visible_namespaces(user, ALERTS_VIEW, cluster=cluster) == frozenset():
            return ""
        return f"{url}?{urlencode({'cluster': cluster.pk})}"
    held = access.scope(user, ALERTS_VIEW)
    if not (held.everywhere or held.clusters or any(held.namespaces.values())):
        return ""
    # The dashboard leaves the card out until some cluster the reader sees has an Alertmanager.
    if not access.clusters(user).exclude(alertmanager_url="").exists():
        return ""
    return url
