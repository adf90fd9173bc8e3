from django.urls import path

from apps.observability.status import views

urlpatterns = [
    path("", views.stack_status, name="stack_status"),
]
