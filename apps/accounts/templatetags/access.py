"""``{% can "workloads.scale" cluster=c namespace=ns as allowed %}``: show a button only when allowed.

A capability code the table does not know fails loudly: a quoted one when the template is compiled,
one from a variable when it is rendered (``capabilities.get`` raises).
"""

from django import template

from apps.accounts import capabilities
from apps.accounts.access import may

register = template.Library()


def _can(context, capability: str, cluster=None, namespace=None) -> bool:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    capabilities.get(capability)
    return user is not None and may(user, capability, cluster=cluster, namespace=namespace)


register.simple_tag(_can, takes_context=True, name="can")
_compile_can = register.tags["can"]


@register.tag("can")
def can(parser, token):
    bits = token.split_contents()
    if len(bits) > 1 and len(bits[1]) > 1 and bits[1][0] in "\"'" and bits[1][-1] == bits[1][0]:
        code = bits[1][1:-1]
        if code not in capabilities.BY_CODE:
            raise template.TemplateSyntaxError(f"{{% can %}} names an unknown capability {code!r}.")
    return _compile_can(parser, token)
