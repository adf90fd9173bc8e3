"""``{% permitted_actions cluster resource as buttons %}``: the action buttons a user may press on an object."""

from django import template

from apps.clusters.actions.registry import permitted_actions as permitted

register = template.Library()


@register.simple_tag(takes_context=True)
def permitted_actions(context, cluster, resource) -> list:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None:
        return []
    return permitted(user, cluster, resource.kind, resource.namespace, resource.name, resource.summary)
