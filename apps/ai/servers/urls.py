"""Model server pages, under servers/ in the ``ai`` namespace (spliced in by apps/ai/urls.py)."""

from django.urls import path

from apps.ai.servers import views

urlpatterns = [
    path("servers/", views.server_list, name="server_list"),
    path("servers/new/", views.server_new, name="server_new"),
    path("servers/new/preview/", views.server_preview, name="server_preview"),
    path("servers/<int:pk>/", views.server_detail, name="server_detail"),
    path("servers/<int:pk>/live/", views.server_live, name="server_live"),
    path("servers/<int:pk>/check/", views.server_check, name="server_check"),
    path("servers/<int:pk>/delete/", views.server_delete, name="server_delete"),
    path("servers/endpoints/new/", views.endpoint_new, name="endpoint_new"),
    path("servers/endpoints/<int:pk>/edit/", views.endpoint_edit, name="endpoint_edit"),
    path("servers/endpoints/<int:pk>/delete/", views.endpoint_delete, name="endpoint_delete"),
]
