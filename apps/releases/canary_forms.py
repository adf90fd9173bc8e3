"""Forms of grey and canary releases: start one (image, how requests reach it, pods), step its share."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.accounts import access
from apps.accounts.capabilities import WORKLOADS_VIEW
from apps.observability.prometheus import PrometheusError
from apps.releases import analysis, canaries
from apps.releases.forms import style_selects, validate_image

HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,100}$")


def may_write_queries(user, cluster) -> bool:
    """Users who see every namespace of the cluster may check it with a PromQL query of their own."""
    return user is not None and access.visible_namespaces(user, WORKLOADS_VIEW, cluster=cluster) is None


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
    automatic = forms.BooleanField(
        label=gettext_lazy("Step the share automatically while a Prometheus check passes"), required=False
    )
    analysis_preset = forms.ChoiceField(
        label=gettext_lazy("Check"),
        choices=[(key, preset["label"]) for key, preset in analysis.PRESETS.items()]
        + [("custom", gettext_lazy("My own query"))],
        initial="error_rate",
        required=False,
    )
    analysis_query = forms.CharField(
        label=gettext_lazy("Prometheus query"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "class": "font-monospace"}),
        help_text=gettext_lazy(
            "Leave empty to use the chosen check. $namespace, $release, $stable and $canary are replaced by the "
            "release's names; the highest value of the answer is judged."
        ),
    )
    analysis_max = forms.FloatField(
        label=gettext_lazy("Highest acceptable value"),
        required=False,
        help_text=gettext_lazy("Empty: 0.01 for the error rate, 0.5 seconds for the latency."),
    )
    analysis_interval = forms.IntegerField(
        label=gettext_lazy("Seconds between checks"), min_value=10, max_value=3600, initial=60, required=False
    )
    analysis_failure_limit = forms.IntegerField(
        label=gettext_lazy("Failed checks in a row before abort"), min_value=1, max_value=10, initial=2, required=False
    )
    auto_promote = forms.BooleanField(
        label=gettext_lazy("Promote automatically after a check at 100 %"), required=False
    )

    def __init__(self, *args, release=None, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        style_selects(self)
        self.release = release
        if release is not None and not may_write_queries(user, release.project.cluster):
            # A query of one's own could read any namespace's metrics: only the ready-made checks, which are
            # about this release's own Services, for users who do not see the whole cluster.
            del self.fields["analysis_query"]
            self.fields["analysis_preset"].choices = self.fields["analysis_preset"].choices[:-1]

    def clean(self):
        data = super().clean()
        mode = data.get("mode")
        if mode == "weight" and not data.get("weight") and "weight" not in self.errors:
            data["weight"] = canaries.DEFAULT_WEIGHT
        if mode in ("header", "cookie"):
            default_name, default_value = canaries.DEFAULT_HEADER if mode == "header" else canaries.DEFAULT_COOKIE
            name = data.get("match_name") or default_name
            value = data.get("match_value") or default_value
            if not HEADER_NAME.match(name):
                self.add_error(
                    "match_name",
                    _("“%(value)s” is not a header or cookie name: use letters, digits and - _ . only.")
                    % {"value": name},
                )
            if any(ord(c) < 32 or c in ";\x7f" for c in value):
                self.add_error("match_value", _("The value may not contain control characters or “;”."))
            data.update(match_name=name, match_value=value)
        data["analysis"] = self._analysis(data) if data.get("automatic") else None
        return data

    def _analysis(self, data: dict) -> dict | None:
        """The automatic steps' settings, the query tried once against the cluster's Prometheus."""
        cluster = self.release.project.cluster if self.release else None
        if data.get("mode") != "weight":
            self.add_error("automatic", _("Automatic steps change a share of traffic: choose a grey release."))
            return None
        if cluster is None or not cluster.prometheus_url:
            self.add_error(
                "automatic",
                _("Cluster %(cluster)s has no Prometheus URL: an administrator sets it on the cluster's page first.")
                % {"cluster": cluster.name if cluster else "—"},
            )
            return None
        preset = analysis.PRESETS.get(data.get("analysis_preset") or "")
        if "analysis_query" not in self.fields and preset is None:
            self.add_error("analysis_preset", _("Choose one of the ready-made checks."))
            return None
        query = (data.get("analysis_query") or "").strip() or (preset["query"] if preset else "")
        limit = data.get("analysis_max")
        if limit is None and preset and not (data.get("analysis_query") or "").strip():
            limit = preset["max"]
        if not query:
            self.add_error("analysis_query", _("Write the Prometheus query to check, or choose a ready-made check."))
        if limit is None and "analysis_max" not in self.errors:
            self.add_error("analysis_max", _("Give the highest value the query may return."))
        if not query or limit is None or self.errors:
            return None
        try:
            analysis.try_query(cluster, query, self.release)
        except PrometheusError as exc:
            self.add_error("analysis_query", str(exc))
            return None
        return {
            "query": query,
            "max": limit,
            "interval": data.get("analysis_interval") or 60,
            "failure_limit": data.get("analysis_failure_limit") or 2,
            "auto_promote": bool(data.get("auto_promote")),
        }


class CanaryStepForm(forms.Form):
    weight = forms.IntegerField(label=gettext_lazy("Share (%)"), min_value=0, max_value=100)
