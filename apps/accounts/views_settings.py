"""A person's own settings page: the time zone every time in the console is shown in."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from apps.accounts import preferences
from apps.core.htmx import render


def _choices():
    common = [(z, z) for z in preferences.COMMON]
    rest = [(z, z) for z in preferences.all_zones() if z not in preferences.COMMON]
    return [("", gettext_lazy("The installation's")), (gettext_lazy("Common"), common), (gettext_lazy("All"), rest)]


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label=gettext_lazy("Time zone"),
        required=False,
        widget=forms.Select(attrs={"class": "form-select", "data-testid": "field-time_zone", "translate": "no"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = _choices()


@login_required
@require_http_methods(["GET", "POST"])
def my_settings(request):
    current = preferences.time_zone_of(request.user)
    stored = getattr(getattr(request.user, "preference", None), "time_zone", "") if current else ""
    form = TimeZoneForm(request.POST or None, initial={"time_zone": stored})
    if request.method == "POST" and form.is_valid():
        preferences.set_time_zone(
            actor=request.user, user=request.user, name=form.cleaned_data["time_zone"], request=request
        )
        messages.success(
            request,
            _("Times are now shown in %(zone)s.") % {"zone": timezone.get_current_timezone_name()},
        )
        return redirect("accounts:my_settings")
    context = {"form": form, "zone": timezone.get_current_timezone_name(), "now": timezone.now()}
    return render(request, "accounts/my_settings.html", context)
