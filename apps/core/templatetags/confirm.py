"""``{% password_needed as needs_password %}``: whether a dangerous action pressed now asks for the password in the
confirmation dialog (templates/htmx/confirm_modal.html); see apps/core/reauth.py."""

from django import template

from apps.core.reauth import needs_password

register = template.Library()


@register.simple_tag(takes_context=True)
def password_needed(context) -> bool:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "session"):
        return False
    return needs_password(request)
