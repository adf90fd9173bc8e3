"""``{% can "workloads.scale" cluster=c namespace=ns as allowed %}``: show a button only when allowed."""

from django import template

from apps.accounts.access import may

register = template.Library()


@register.simple_tag(takes_context=True)
def can(context, capability: str, cluster=None, namespace=None) -> bool:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    return user is not None and may(user, capability, cluster=cluster, namespace=namespace)
