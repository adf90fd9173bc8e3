from django.urls import path

from apps.compliance.approvals import views as approvals
from apps.compliance.forwarding import views as forwarding

app_name = "compliance"

urlpatterns = [
    path("siem/", forwarding.destination_list, name="destination_list"),
    path("siem/new/", forwarding.destination_create, name="destination_create"),
    path("siem/<int:pk>/", forwarding.destination_edit, name="destination_edit"),
    path("siem/<int:pk>/delete/", forwarding.destination_delete, name="destination_delete"),
    path("siem/<int:pk>/test/", forwarding.destination_test, name="destination_test"),
    path("changes/", approvals.change_list, name="change_list"),
    path("changes/<int:pk>/", approvals.change_detail, name="change_detail"),
    path("changes/<int:pk>/approve/", approvals.change_approve, name="change_approve"),
    path("changes/<int:pk>/reject/", approvals.change_reject, name="change_reject"),
    path("changes/<int:pk>/cancel/", approvals.change_cancel, name="change_cancel"),
    path("changes/policies/", approvals.policy_list, name="policy_list"),
    path("changes/policies/new/", approvals.policy_create, name="policy_create"),
    path("changes/policies/<int:pk>/", approvals.policy_edit, name="policy_edit"),
    path("changes/policies/<int:pk>/delete/", approvals.policy_delete, name="policy_delete"),
]
