from django.urls import path

from apps.cicd import views
from apps.cicd.catalogue import views as catalogue

app_name = "cicd"

urlpatterns = [
    # Pipelines and runs (views.py).
    path("", views.home, name="home"),
    path("pipelines/new/", views.pipeline_create, name="pipeline_create"),
    path("pipelines/<int:pk>/", views.pipeline_detail, name="pipeline_detail"),
    path("pipelines/<int:pk>/edit/", views.pipeline_edit, name="pipeline_edit"),
    path("pipelines/<int:pk>/delete/", views.pipeline_delete, name="pipeline_delete"),
    path("pipelines/<int:pk>/upload/", views.pipeline_upload, name="pipeline_upload"),
    path("pipelines/<int:pk>/run/", views.pipeline_run, name="pipeline_run"),
    path("pipelines/<int:pk>/webhook-secret/", views.pipeline_webhook_secret, name="pipeline_webhook_secret"),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("runs/<int:pk>/live/", views.run_live, name="run_live"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/rerun/", views.run_rerun, name="run_rerun"),
    path("runs/<int:pk>/scan/", views.run_scan, name="run_scan"),
    path("runs/<int:pk>/artifacts/<str:kind>/", views.run_artifact, name="run_artifact"),
    path("hooks/<int:pk>/", views.webhook, name="webhook"),
    # Registries, base images, policies, exceptions, the vulnerability database (catalogue/).
    path("registries/", catalogue.registry_list, name="registry_list"),
    path("registries/new/", catalogue.registry_create, name="registry_create"),
    path("registries/<int:pk>/", catalogue.registry_detail, name="registry_detail"),
    path("registries/<int:pk>/edit/", catalogue.registry_edit, name="registry_edit"),
    path("registries/<int:pk>/delete/", catalogue.registry_delete, name="registry_delete"),
    path("projects/<int:project>/bases/new/", catalogue.base_create, name="base_create"),
    path("bases/<int:pk>/withdraw/", catalogue.base_withdraw, name="base_withdraw"),
    path("policies/", catalogue.policy_list, name="policy_list"),
    path("projects/<int:project>/policy/", catalogue.policy_edit, name="policy_edit"),
    path("projects/<int:project>/exceptions/new/", catalogue.exception_create, name="exception_create"),
    path("exceptions/<int:pk>/revoke/", catalogue.exception_revoke, name="exception_revoke"),
    path("vulnerability-database/", catalogue.vulndb, name="vulndb"),
]
