"""``{{ job.message|tr }}``: a stored sentence in the reader's language (see apps/core/deferred.py)."""

from django import template

from apps.core import deferred

register = template.Library()


@register.filter
def tr(value) -> str:
    return deferred.render(value)
