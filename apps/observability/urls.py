from django.urls import include, path

app_name = "observability"

urlpatterns = [
    path("metrics/", include("apps.observability.metrics.urls")),
    path("alerts/", include("apps.observability.alerts.urls")),
    path("rules/", include("apps.observability.rules.urls")),
    path("notify/", include("apps.observability.notify.urls")),
    path("logs/", include("apps.observability.logs.urls")),
    path("traces/", include("apps.observability.traces.urls")),
    path("status/", include("apps.observability.status.urls")),
]
