"""Requests no person types: refused before any view, with a sentence in the reader's language.

A NUL byte (or another C0 control character other than tab, newline and carriage return) in the query
string is never part of a name, a filter or a date; PostgreSQL refuses NUL in text, so letting it through
would turn a typo or a probe into a server error on whichever page reads the parameter raw.
"""

from __future__ import annotations

import re

from django.shortcuts import render

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class RefuseControlCharactersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if CONTROL.search(request.path) or any(
            CONTROL.search(key) or any(CONTROL.search(value) for value in values) for key, values in request.GET.lists()
        ):
            return render(request, "errors/bad_address.html", status=400)
        return self.get_response(request)
