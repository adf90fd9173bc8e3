"""Alert and silence pages: the alerts of every cluster the person may see, grouped as Alertmanager groups them; the
silences; the silence form (from an alert or by hand); expiring a silence; the firing counts of the dashboard and
the cluster overview."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts import access
from apps.accounts.capabilities import ALERTS_SILENCE, ALERTS_VIEW
from apps.clusters import values
from apps.core.htmx import render
from apps.observability.alertmanager import Matcher
from apps.observability.alerts import forms, reading, services
from apps.observability.alerts.services import SilenceError


def _clusters(user, code: str = ALERTS_VIEW):
    found = reading.clusters(user, code)
    if not found:
        raise Http404
    return found


@login_required
@require_GET
def alert_list(request):
    clusters = _clusters(request.user)
    groups, states = reading.read_alerts(request.user, clusters)
    namespaces = {r.alert.namespace for g in groups for r in g.alerts if r.alert.namespace}
    asked = request.GET.get("namespace", "")
    if values.is_dns_label(asked):  # a namespace with nothing firing now is still a filter (it shows nothing)
        namespaces.add(asked)
    form = forms.AlertFilterForm(request.GET or None, clusters=clusters, namespaces=sorted(namespaces))
    chosen = form.chosen()
    shown = reading.filtered(groups, chosen)
    context = {
        "form": form,
        "groups": shown,
        "counts": reading.tally(shown),
        "everything": reading.tally(groups),
        "states": [s for s in states if not chosen.cluster or s.cluster.pk == chosen.cluster],
        "filtered": form.is_bound and any(form.data.get(k) for k in form.fields),
        "may_silence": bool(reading.clusters(request.user, ALERTS_SILENCE)),
    }
    return render(request, "observability/alerts/alert_list.html", context, partial="results")


@login_required
@require_GET
def silence_list(request):
    clusters = _clusters(request.user)
    form = forms.SilenceFilterForm(request.GET or None, clusters=clusters)
    cluster_id, state = form.chosen()
    targets = [c for c in clusters if not cluster_id or c.pk == cluster_id]
    rows, states = reading.read_silences(request.user, targets)
    by_state = {key: [r for r in rows if r.silence.state == key] for key, _label in forms.SILENCE_STATE_CHOICES}
    context = {
        "form": form,
        "state": state,
        "tabs": [(key, label, len(by_state[key])) for key, label in forms.SILENCE_STATE_CHOICES],
        "rows": by_state[state],
        "states": states,
        "cluster_id": cluster_id,
        "silence_clusters": reading.clusters(request.user, ALERTS_SILENCE),
        "created": request.GET.get("created", ""),
    }
    return render(request, "observability/alerts/silence_list.html", context, partial="results")


@login_required
@require_http_methods(["GET", "POST"])
def silence_create(request, cluster_id: int):
    cluster = reading.cluster(request.user, cluster_id, ALERTS_SILENCE)
    held = access.visible_namespaces(request.user, ALERTS_SILENCE, cluster=cluster)
    alert, problem = None, ""
    if request.method == "POST":
        matchers = forms.matcher_formset(request.POST)
        form = forms.SilenceForm(request.POST)
    else:
        fingerprint = request.GET.get("alert", "")
        if fingerprint:
            alert, problem = reading.find_alert(request.user, cluster, fingerprint)
        if alert is not None:
            initial = [Matcher(name, value) for name, value in sorted(alert.labels.items())]
        elif held:  # a project member: the namespace matcher they must keep, filled in
            initial = [Matcher("namespace", sorted(held)[0])]
        else:
            initial = [Matcher("alertname", "")]
        matchers = forms.matcher_formset(matchers=initial)
        form = forms.SilenceForm()
    context = {
        "cluster": cluster,
        "form": form,
        "matchers": matchers,
        "alert": alert,
        "alert_gone": bool(request.GET.get("alert")) and alert is None and not problem,
        "problem": problem,
        "namespaces": sorted(held) if held else None,
        "error": "",
    }
    if request.method == "POST":
        valid = matchers.is_valid() and form.is_valid()
        chosen = forms.matchers_of(matchers) if matchers.is_valid() else []
        if request.POST.get("preview"):
            found, context["preview_problem"] = reading.matching(request.user, cluster, chosen)
            context.update(preview=found, previewed=True)
            return render(request, "observability/alerts/silence_form.html", context, partial="preview")
        if valid:
            try:
                silence_id = services.create_silence(
                    actor=request.user,
                    cluster=cluster,
                    matchers=chosen,
                    ends_at=form.ends(),
                    comment=form.cleaned_data["comment"],
                    request=request,
                )
            except SilenceError as exc:
                context["error"] = str(exc)
            else:
                messages.success(
                    request,
                    _("Silence %(id)s was created in %(cluster)s.") % {"id": silence_id[:8], "cluster": cluster.name},
                )
                query = urlencode({"cluster": cluster.pk, "state": "active", "created": silence_id})
                return redirect(f"{reverse('observability:silence_list')}?{query}")
        status = 400
    else:
        status = 200
    return render(request, "observability/alerts/silence_form.html", context, status=status)


@login_required
@require_POST
def silence_expire(request, cluster_id: int, silence_id):
    cluster = reading.cluster(request.user, cluster_id)
    query = urlencode({"cluster": cluster.pk, "state": "expired"})
    try:
        silence = services.expire_silence(
            actor=request.user, cluster=cluster, silence_id=str(silence_id), request=request
        )
    except SilenceError as exc:
        messages.error(request, str(exc))
        query = urlencode({"cluster": cluster.pk})
    else:
        messages.success(request, _("Silence %(id)s was expired: its alerts notify again.") % {"id": silence.id[:8]})
    return redirect(f"{reverse('observability:silence_list')}?{query}")


@login_required
@require_GET
@never_cache
def alert_counts(request):
    """The firing alerts by severity, for the dashboard (every cluster) or a cluster's overview (``?cluster=``)."""
    clusters = reading.clusters(request.user)
    one = request.GET.get("cluster", "")
    if one:
        clusters = [c for c in clusters if str(c.pk) == one]
    counts = reading.firing_counts(request.user, clusters)
    context = {
        "counts": counts,
        "one": bool(one),
        "cluster": clusters[0] if one and clusters else None,
        "clusters": clusters,
        "firing": sum(c.firing for c in counts),
        "critical": sum(c.critical for c in counts),
        "self_url": request.get_full_path(),
    }
    return render(request, "observability/alerts/_counts.html", context)
