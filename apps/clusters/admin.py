from django.contrib import admin

from apps.clusters.models import Cluster


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ("name", "api_server", "environment", "created_at")
    search_fields = ("name", "api_server")
    exclude = ("kubeconfig_encrypted",)
