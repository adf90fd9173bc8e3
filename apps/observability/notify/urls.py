from django.urls import path

from apps.observability.notify import views

urlpatterns = [
    path("", views.notify_home, name="notify_home"),
    path("relay/<int:receiver_id>/", views.relay_view, name="notify_relay"),
    path("<int:project_id>/", views.receiver_list, name="receiver_list"),
    path("<int:project_id>/new/", views.receiver_create, name="receiver_create"),
    path("<int:project_id>/alertmanager.yml/", views.plain_config, name="notify_plain_config"),
    path("<int:project_id>/<int:pk>/", views.receiver_edit, name="receiver_edit"),
    path("<int:project_id>/<int:pk>/delete/", views.receiver_delete, name="receiver_delete"),
    path("<int:project_id>/<int:pk>/test/", views.receiver_test, name="receiver_test"),
]
