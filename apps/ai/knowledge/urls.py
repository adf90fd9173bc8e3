"""Knowledge base pages, under knowledge/ in the ``ai`` namespace (spliced in by apps/ai/urls.py)."""

from django.urls import path

from apps.ai.knowledge import views

urlpatterns = [
    path("knowledge/", views.knowledge_list, name="knowledge_list"),
    path("knowledge/new/", views.knowledge_new, name="knowledge_new"),
    path("knowledge/search/", views.knowledge_search, name="knowledge_search"),
    path("knowledge/<int:pk>/", views.knowledge_detail, name="knowledge_detail"),
    path("knowledge/<int:pk>/edit/", views.knowledge_edit, name="knowledge_edit"),
    path("knowledge/<int:pk>/delete/", views.knowledge_delete, name="knowledge_delete"),
    path("knowledge/<int:pk>/reindex/", views.knowledge_reindex, name="knowledge_reindex"),
    path("knowledge/<int:pk>/progress/", views.knowledge_progress, name="knowledge_progress"),
    path("knowledge/<int:pk>/upload/", views.document_upload, name="document_upload"),
    path("knowledge/documents/<int:pk>/", views.document_detail, name="document_detail"),
    path("knowledge/documents/<int:pk>/download/", views.document_download, name="document_download"),
    path("knowledge/documents/<int:pk>/reindex/", views.document_reindex, name="document_reindex"),
    path("knowledge/documents/<int:pk>/delete/", views.document_delete, name="document_delete"),
]
