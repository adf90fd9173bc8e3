"""The log search's parameters, checked: which cluster, whose logs, which levels, what text, which time range.

Every log page (the search, its results, the live tail, the download) reads the same parameters, so links from
other pages (``cluster``, ``namespace``, ``pod`` or ``workload``, ``start``, ``end`` in ISO 8601, ``q``) open the
same search. A value that cannot be a Kubernetes name is refused here, before anything builds a query from it;
whether the person may read the namespace is decided by the services (a sentence, not a form error).
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.clusters import values

LEVELS = ("error", "warn", "info", "debug")
LEVEL_CHOICES = [
    ("error", _("Error")),
    ("warn", _("Warning")),
    ("info", _("Info")),
    ("debug", _("Debug")),
]
RANGE_CHOICES = [
    ("15m", _("Last 15 min")),
    ("1h", _("Last 1 h")),
    ("6h", _("Last 6 h")),
    ("24h", _("Last 24 h")),
    ("7d", _("Last 7 d")),
    ("custom", _("Custom range")),
]
LIMITS = (100, 200, 500, 1000)
DEFAULT_LIMIT = 200
DOWNLOAD_LIMITS = (1_000, 10_000, 100_000)
DEFAULT_DOWNLOAD_LIMIT = 10_000
DOWNLOAD_FORMATS = ("text", "ndjson")
FLAG = ("1", "on", "true", "yes")
TEXT_MAX = 1000
RAW_MAX = 4000


def _names(value: str, check, message) -> str:
    value = (value or "").strip()
    if value and not check(value):
        raise forms.ValidationError(message)
    return value


class LogSearchForm(forms.Form):
    cluster = forms.IntegerField(required=False, min_value=1)
    namespace = forms.CharField(required=False, max_length=values.DNS_LABEL_MAX)
    workload = forms.CharField(required=False, max_length=values.DNS_SUBDOMAIN_MAX)
    pod = forms.CharField(required=False, max_length=values.DNS_SUBDOMAIN_MAX)
    container = forms.CharField(required=False, max_length=values.DNS_LABEL_MAX)
    level = forms.MultipleChoiceField(required=False, choices=LEVEL_CHOICES)
    q = forms.CharField(required=False, max_length=TEXT_MAX, strip=False)
    # A flag ("1": ``q`` is a regular expression) or, for links, the pattern itself.
    regex = forms.CharField(required=False, max_length=TEXT_MAX, strip=False)
    raw = forms.CharField(required=False, max_length=RAW_MAX, strip=False)
    window = forms.ChoiceField(required=False, choices=RANGE_CHOICES)
    start = forms.CharField(required=False, max_length=40)
    end = forms.CharField(required=False, max_length=40)
    trace_id = forms.RegexField(required=False, regex=r"^[0-9A-Za-z_-]{1,64}$")
    limit = forms.TypedChoiceField(required=False, coerce=int, choices=[(n, n) for n in LIMITS], empty_value=None)

    def clean_namespace(self):
        return _names(
            self.cleaned_data.get("namespace"),
            values.is_dns_label,
            _("A namespace name is lower-case letters, digits and -."),
        )

    def clean_workload(self):
        return _names(self.cleaned_data.get("workload"), values.is_dns_subdomain, _("This is not a workload name."))

    def clean_pod(self):
        return _names(self.cleaned_data.get("pod"), values.is_dns_subdomain, _("This is not a pod name."))

    def clean_container(self):
        return _names(self.cleaned_data.get("container"), values.is_dns_label, _("This is not a container name."))

    def clean_trace_id(self):
        return (self.cleaned_data.get("trace_id") or "").strip()

    def clean(self):
        data = super().clean()
        flag = (data.get("regex") or "").strip()
        if flag.lower() in FLAG:
            data["pattern"], data["keyword"] = (data.get("q") or "").strip(), ""
        elif flag:
            data["pattern"], data["keyword"] = flag, (data.get("q") or "").strip()
        else:
            data["pattern"], data["keyword"] = "", (data.get("q") or "").strip()
        return data

    def sentences(self) -> list[str]:
        """What is wrong with the parameters, one sentence each."""
        found = []
        for name, errors in self.errors.items():
            for error in errors:
                if name == "trace_id":
                    found.append(str(_("This is not a trace id.")))
                elif name == "__all__":
                    found.append(str(error))
                else:
                    found.append(f"{error}")
        return found


class DownloadForm(forms.Form):
    limit = forms.TypedChoiceField(
        required=False, coerce=int, choices=[(n, n) for n in DOWNLOAD_LIMITS], empty_value=DEFAULT_DOWNLOAD_LIMIT
    )
    format = forms.ChoiceField(required=False, choices=[(f, f) for f in DOWNLOAD_FORMATS])
