from django.contrib import admin
from django.db import models

from apps.clusters.models import Cluster
from apps.core.admin import AuditedAdmin


@admin.register(Cluster)
class ClusterAdmin(AuditedAdmin):
    list_display = ("name", "api_server", "environment", "created_at")
    search_fields = ("name", "api_server")
    exclude = ("kubeconfig_encrypted", "prometheus_auth_encrypted", "alertmanager_auth_encrypted")
    # An address typed without a scheme keeps meaning http (Django 6 would assume https).
    formfield_overrides = {models.URLField: {"assume_scheme": "http"}}
