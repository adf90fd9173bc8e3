from django.urls import path

from apps.accounts import views, views_audit, views_roles, views_settings

app_name = "accounts"

urlpatterns = [
    path("me/access/", views_audit.my_access, name="my_access"),
    path("me/settings/", views_settings.my_settings, name="my_settings"),
    path("users/", views.user_list, name="user_list"),
    path("users/new/", views.user_create, name="user_create"),
    path("users/<int:user_id>/", views.user_detail, name="user_detail"),
    path("users/<int:user_id>/active/", views.user_set_active, name="user_set_active"),
    path("users/<int:user_id>/delete/", views.user_delete, name="user_delete"),
    path("users/<int:user_id>/password/", views.user_reset_password, name="user_reset_password"),
    path("users/<int:user_id>/sessions/end/", views.user_end_sessions, name="user_end_sessions"),
    path("users/<int:user_id>/access/", views_audit.user_access, name="user_access"),
    path("groups/", views.group_list, name="group_list"),
    path("groups/new/", views.group_edit, name="group_create"),
    path("groups/<int:group_id>/", views.group_edit, name="group_edit"),
    path("groups/<int:group_id>/delete/", views.group_delete, name="group_delete"),
    path("roles/", views_roles.role_list, name="role_list"),
    path("roles/new/", views_roles.role_edit, name="role_create"),
    path("roles/preview/", views_roles.role_rules_preview, name="role_rules_preview"),
    path("roles/<int:role_id>/", views_roles.role_edit, name="role_edit"),
    path("roles/<int:role_id>/delete/", views_roles.role_delete, name="role_delete"),
    path("projects/", views_roles.project_list, name="project_list"),
    path("projects/new/", views_roles.project_edit, name="project_create"),
    path("projects/<int:project_id>/", views_roles.project_detail, name="project_detail"),
    path("projects/<int:project_id>/edit/", views_roles.project_edit, name="project_edit"),
    path("projects/<int:project_id>/delete/", views_roles.project_delete, name="project_delete"),
    path("bindings/", views_roles.binding_list, name="binding_list"),
    path("bindings/<int:binding_id>/delete/", views_roles.binding_delete, name="binding_delete"),
    path("audit/", views_audit.audit_list, name="audit_list"),
    path("audit/export.csv", views_audit.audit_export, name="audit_export"),
]
