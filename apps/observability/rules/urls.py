from django.urls import path

from apps.observability.rules import views

urlpatterns = [
    path("", views.rules_home, name="rules_home"),
    path("<int:cluster_id>/", views.rule_list, name="rule_list"),
    path("<int:cluster_id>/new/", views.rule_create, name="rule_create"),
    path("<int:cluster_id>/builtin/", views.builtin_rules, name="builtin_rules"),
    path("<int:cluster_id>/<int:pk>/", views.rule_edit, name="rule_edit"),
    path("<int:cluster_id>/<int:pk>/delete/", views.rule_delete, name="rule_delete"),
]
