"""``{% sso_provider as sso %}``: the single sign-on the sign-in page offers (its button's name), or None when off."""

from django import template

from apps.accounts.oidc import provider

register = template.Library()


@register.simple_tag
def sso_provider():
    config = provider.config()
    if not config.get("issuer"):
        return None
    return {"name": config.get("name", "")}
