from django.urls import path

from apps.releases import views

app_name = "releases"

urlpatterns = [
    path("", views.release_list, name="release_list"),
    path("new/", views.release_create, name="release_create"),
    path("preview/", views.release_preview, name="release_preview"),
    path("<int:pk>/", views.release_detail, name="release_detail"),
    path("<int:pk>/edit/", views.release_edit, name="release_edit"),
    path("<int:pk>/preview/", views.release_preview, name="release_edit_preview"),
    path("<int:pk>/deploy/", views.release_deploy, name="release_deploy"),
    path("<int:pk>/rollback/", views.release_rollback, name="release_rollback"),
    path("<int:pk>/diff/", views.release_diff, name="release_diff"),
    path("<int:pk>/delete/", views.release_delete, name="release_delete"),
    path("<int:pk>/canary/", views.canary_start, name="canary_start"),
    path("<int:pk>/canary/step/", views.canary_step, name="canary_step"),
    path("<int:pk>/canary/promote/", views.canary_promote, name="canary_promote"),
    path("<int:pk>/canary/abort/", views.canary_abort, name="canary_abort"),
    path("<int:pk>/canary/pause/", views.canary_pause, name="canary_pause"),
    path("<int:pk>/canary/resume/", views.canary_resume, name="canary_resume"),
]
