"""Marking matches in log lines: escaped first, keyword in any case, a regular expression within a time budget, and
patterns Python cannot read left unmarked; and the search form's checks of names and flags."""

from __future__ import annotations

import time

from apps.observability.logs.forms import LogSearchForm
from apps.observability.logs.highlight import MAX_PATTERN, Marker


def test_a_keyword_is_marked_in_any_case_after_the_line_is_escaped():
    marked = Marker.for_search(keyword="failed").mark('<img src=x onerror="alert(1)"> payment FAILED, Failed again')

    assert marked == (
        '&lt;img src=x onerror=&quot;alert(1)&quot;&gt; payment <mark class="log-mark">FAILED</mark>, '
        '<mark class="log-mark">Failed</mark> again'
    )


def test_a_keyword_with_pattern_characters_is_a_literal():
    assert Marker.for_search(keyword="a.b(").mark("axb( a.b(") == 'axb( <mark class="log-mark">a.b(</mark>'


def test_a_regular_expression_is_marked_and_a_match_inside_an_entity_is_not_split():
    marker = Marker.for_search(pattern=r"order \d+")

    assert marker.mark("order 12 & order 7") == (
        '<mark class="log-mark">order 12</mark> &amp; <mark class="log-mark">order 7</mark>'
    )
    assert Marker.for_search(pattern="amp").mark("a & b") == "a &amp; b"


def test_patterns_python_cannot_read_or_too_long_are_not_marked():
    assert Marker.for_search(pattern=r"(?P<x").mark("text (?P<x") == "text (?P&lt;x"
    assert Marker.for_search(pattern=r"\pL+").mark("abc") == "abc"  # RE2's class, not Python's
    assert Marker.for_search(pattern="a" * (MAX_PATTERN + 1)).mark("aaa") == "aaa"


def test_a_pattern_that_backtracks_badly_stops_marking_within_the_budget():
    marker = Marker.for_search(pattern=r"(a|aa)+$")
    started = time.monotonic()

    shown = [marker.mark("a" * 40 + "b") for _ in range(50)]

    assert time.monotonic() - started < 1
    assert marker.stopped and shown[-1] == "a" * 40 + "b"


def test_the_fallback_filter_matches_as_the_marks_do():
    marker = Marker.for_search(keyword="Timeout")

    assert marker.matches("db TIMEOUT after 3s") and not marker.matches("all good")
    assert Marker.for_search().matches("anything")


def test_the_form_refuses_names_no_object_can_have():
    form = LogSearchForm({"namespace": "Pay Ments", "pod": "pod/../x", "container": "web", "level": ["error", "loud"]})

    assert not form.is_valid()
    assert set(form.errors) == {"namespace", "pod", "level"}


def test_the_regex_parameter_is_a_flag_or_the_pattern_itself():
    flag = LogSearchForm({"q": r"order \d+", "regex": "1"})
    pattern = LogSearchForm({"q": "paid", "regex": r"order \d+"})

    assert flag.is_valid() and (flag.cleaned_data["keyword"], flag.cleaned_data["pattern"]) == ("", r"order \d+")
    assert pattern.is_valid() and (pattern.cleaned_data["keyword"], pattern.cleaned_data["pattern"]) == (
        "paid",
        r"order \d+",
    )
