from django.urls import path

from apps.compliance.forwarding import views as forwarding

app_name = "compliance"

urlpatterns = [
    path("siem/", forwarding.destination_list, name="destination_list"),
    path("siem/new/", forwarding.destination_create, name="destination_create"),
    path("siem/<int:pk>/", forwarding.destination_edit, name="destination_edit"),
    path("siem/<int:pk>/delete/", forwarding.destination_delete, name="destination_delete"),
    path("siem/<int:pk>/test/", forwarding.destination_test, name="destination_test"),
]
