"""Error pages in the user's language; a stack trace is never a page.

A request Django refuses before any view (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields, a
malformed upload) reaches ``bad_request``: the answer says what was too large and what to do, as a
page, or for htmx as a fragment the page's script swaps in where the result would have gone.
"""

import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import DatabaseError, DataError, IntegrityError, ProgrammingError
from django.http import HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

SENTENCE_HEADER = "X-Kubemate-Sentence"  # tells static/kubemate/kubemate.js to show this error response


def not_found(request, exception=None):
    return render(request, "errors/404.html", status=404)


def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        status = 413
        sentence = _(
            "What you sent is larger than %(limit)s, more than Kubemate accepts in one request. "
            "Send a smaller text (one object at a time), or upload it as a file where a page offers that."
        ) % {"limit": filesizeformat(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)}
    elif isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        status = 413
        sentence = _("The form sent more fields or files than Kubemate accepts in one request; send fewer.")
    else:
        status = 400
        sentence = _("Kubemate could not read this request. Reload the page and try again.")
    template = "errors/_request_error.html" if request.headers.get("HX-Request") else "errors/400.html"
    response = render(request, template, {"sentence": sentence}, status=status)
    response[SENTENCE_HEADER] = "1"
    return response


def server_error(request):
    # No request context: the context processors read the session and the database, either of which may be
    # what failed; the page needs only the language and static files. Django calls this while handling the
    # exception, so it can tell a database outage (503, "try again") from a fault of ours (500).
    failure = sys.exc_info()[1]
    if isinstance(failure, DatabaseError) and not isinstance(failure, DataError | IntegrityError | ProgrammingError):
        return HttpResponse(render_to_string("errors/503.html"), status=503)
    return HttpResponseServerError(render_to_string("errors/500.html"))
