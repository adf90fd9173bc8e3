"""Forms of grey and canary releases: start one (image, how requests reach it, pods), step its share."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.releases.forms import validate_image

HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,100}$")


class CanaryForm(forms.Form):
    """Start a canary: the new image, how requests reach it, and how many pods it runs."""

    image = forms.CharField(
        label=gettext_lazy("New image"),
        max_length=512,
        validators=[validate_image],
        help_text=gettext_lazy("The version to try, for example registry.example.com/team/app:1.5.0."),
    )
    mode = forms.ChoiceField(
        label=gettext_lazy("Send to the new version"),
        choices=(
            ("weight", gettext_lazy("A share of requests (grey)")),
            ("header", gettext_lazy("Requests with a header")),
            ("cookie", gettext_lazy("Requests with a cookie")),
        ),
        initial="weight",
    )
    weight = forms.IntegerField(label=gettext_lazy("Share (%)"), min_value=1, max_value=100, initial=10, required=False)
    match_name = forms.CharField(label=gettext_lazy("Header or cookie name"), max_length=100, required=False)
    match_value = forms.CharField(label=gettext_lazy("Value"), max_length=200, required=False)
    replicas = forms.IntegerField(label=gettext_lazy("Pods"), min_value=1, max_value=100, initial=1)

    def clean(self):
        data = super().clean()
        mode = data.get("mode")
        if mode == "weight" and not data.get("weight") and "weight" not in self.errors:
            data["weight"] = 10
        if mode in ("header", "cookie"):
            name = data.get("match_name") or ("X-Canary" if mode == "header" else "canary")
            value = data.get("match_value") or "true"
            if not HEADER_NAME.match(name):
                self.add_error(
                    "match_name",
                    _("“%(value)s” is not a header or cookie name: use letters, digits and - _ . only.")
                    % {"value": name},
                )
            if any(ord(c) < 32 or c in ";\x7f" for c in value):
                self.add_error("match_value", _("The value may not contain control characters or “;”."))
            data.update(match_name=name, match_value=value)
        return data


class CanaryStepForm(forms.Form):
    weight = forms.IntegerField(label=gettext_lazy("Share (%)"), min_value=0, max_value=100)
