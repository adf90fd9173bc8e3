from django.urls import path

from apps.compliance.approvals import views as approvals
from apps.compliance.forwarding import views as forwarding
from apps.compliance.reviews import views as reviews

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
    path("changes/policies/new/", approvals.policy_edit, name="policy_create"),
    path("changes/policies/<int:pk>/", approvals.policy_edit, name="policy_edit"),
    path("changes/policies/<int:pk>/delete/", approvals.policy_delete, name="policy_delete"),
    path("changes/windows/new/", approvals.window_edit, name="window_create"),
    path("changes/windows/<int:pk>/", approvals.window_edit, name="window_edit"),
    path("changes/windows/<int:pk>/delete/", approvals.window_delete, name="window_delete"),
    path("access-reviews/", reviews.review_list, name="review_list"),
    path("access-reviews/<int:pk>/", reviews.review_detail, name="review_detail"),
    path("access-reviews/start/<int:project_id>/", reviews.review_start, name="review_start"),
    path("access-reviews/lines/<int:item_id>/", reviews.review_decide, name="review_decide"),
    path("access-reviews/settings/<int:project_id>/", reviews.review_settings, name="review_settings"),
]
