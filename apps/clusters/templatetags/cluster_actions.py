"""``{% permitted_actions cluster resource as buttons %}``: the action buttons a user may press on an object."""

from django import template

from apps.clusters.actions import drain
from apps.clusters.actions.registry import permitted_actions as permitted

register = template.Library()


@register.simple_tag(takes_context=True)
def permitted_actions(context, cluster, resource) -> list:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None:
        return []
    return permitted(user, cluster, resource.kind, resource.namespace, resource.name, resource.summary)


@register.simple_tag
def stopped_drain(cluster, resource):
    """``{% stopped_drain cluster resource as job %}``: the node's drain that stopped before the end, or None."""
    if resource.kind != "Node" or not (resource.summary or {}).get("unschedulable"):
        return None
    return drain.stopped_drain(cluster, resource.name)
