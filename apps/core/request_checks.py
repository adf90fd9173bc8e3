"""Requests no person types: refused before any view, with a sentence in the reader's language.

URL-encoded bodies are bounded more tightly than multipart ones (settings.KUBEMATE_MAX_URLENCODED_BODY):
decoding percent-escapes costs Python about a hundred times the body's size in memory (a 1.3 MB body of
escapes took a worker from 145 to 263 MB), while multipart fields are read as they are. Forms that carry
large texts (the object editor, kubeconfig registration) send multipart; every other form is small.

A NUL byte (or another C0 control character other than tab, newline and carriage return) in the query
string is never part of a name, a filter or a date; PostgreSQL refuses NUL in text, so letting it through
would turn a typo or a probe into a server error on whichever page reads the parameter raw.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
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


class UrlencodedBodyLimitMiddleware:
    """Refuse a URL-encoded body over the limit before anything parses it (handled as 413 by core.errors)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        content_type = request.META.get("CONTENT_TYPE", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.KUBEMATE_MAX_URLENCODED_BODY:
                raise RequestDataTooBig("URL-encoded body over KUBEMATE_MAX_URLENCODED_BODY")
        # Any body (a multipart upload too) over the largest upload the console takes is refused before Django
        # spools it to disk: the CSRF check would read the form, and with it the whole file, before a view could.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.KUBEMATE_MAX_REQUEST_BODY:
            raise RequestDataTooBig("body over KUBEMATE_MAX_REQUEST_BODY")
        return self.get_response(request)
