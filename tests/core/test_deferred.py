"""Sentences written by background work are read in the reader's language (issue: the operator's day, item 3)."""

from django.conf import settings
from django.utils import translation

from apps.core import deferred
from apps.core.deferred import N_


def test_a_deferred_sentence_renders_in_the_active_language_with_nested_parts():
    inner = deferred.text(N_("the system"))
    stored = deferred.join(
        deferred.text(N_("Cancelled by %(user)s at %(progress)s%%."), user=inner, progress=40),
        "kubectl says: no.",
    )
    with translation.override("en"):
        assert deferred.render(stored) == "Cancelled by the system at 40%. kubectl says: no."
    with translation.override("zh-hans"):
        assert deferred.render(stored) == "已由 系统 在 40% 时取消。 kubectl says: no."
    assert deferred.render("plain text stays") == "plain text stays"
    assert deferred.render(None) == ""


def test_a_sentence_too_long_for_its_column_is_stored_readable_and_a_broken_one_never_raises():
    long = deferred.text(N_("Drain node %(node)s"), node="n" * 600)
    with translation.override("zh-hans"):
        stored = deferred.fit(long, 255)
    assert len(stored) == 255 and not deferred.is_deferred(stored) and stored.startswith("Drain node nnn")
    assert settings.LANGUAGE_CODE == "en"
    broken = deferred.MARK + '{"id": "x", "p": '
    assert deferred.render(broken) == '{"id": "x", "p": '
