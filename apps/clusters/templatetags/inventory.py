"""Filters for the inventory pages: ``{{ row.status|badge }}``, ``{{ row.created|short_age:now }}``,
``{{ millis|cpu_words }}``, ``{{ n|bytes_words }}``, ``{{ seconds|duration_words }}``."""

from django import template
from django.utils import timezone

from apps.clusters.inventory import words

register = template.Library()


@register.filter
def badge(status: str) -> str:
    return words.badge_class(status)


@register.filter
def short_age(created, now=None) -> str:
    return words.short_age(created, now or timezone.now())


register.filter("status_word", words.status_html)
register.filter("cpu_words", words.cpu_words)
register.filter("bytes_words", words.bytes_words)
register.filter("duration_words", words.duration_words)
