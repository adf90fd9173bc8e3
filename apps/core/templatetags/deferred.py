"""``{{ job.message|tr }}``: a stored sentence in the reader's language (see apps/core/deferred.py)."""

from django import template

from apps.core import deferred
from apps.core.audit_words import action_label

register = template.Library()


@register.filter
def tr(value) -> str:
    return deferred.render(value)


@register.filter
def action_words(code: str) -> str:
    """``{{ event.action|action_words }}``: what an audit action means, in the reader's language."""
    return action_label(code)
