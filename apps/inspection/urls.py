from django.urls import path

from apps.inspection import views

app_name = "inspection"

urlpatterns = [
    path("", views.inspection_home, name="home"),
    path("runs/start/", views.run_start, name="run_start"),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("runs/<int:pk>/status/", views.run_status, name="run_status"),
    path("runs/<int:pk>/pdf/", views.run_pdf, name="run_pdf"),
    path("templates/", views.template_list, name="template_list"),
    path("templates/new/", views.template_create, name="template_create"),
    path("templates/<int:pk>/", views.template_edit, name="template_edit"),
    path("templates/<int:pk>/copy/", views.template_copy, name="template_copy"),
    path("templates/<int:pk>/delete/", views.template_delete, name="template_delete"),
    path("schedules/", views.schedule_list, name="schedule_list"),
    path("schedules/new/", views.schedule_create, name="schedule_create"),
    path("schedules/<int:pk>/", views.schedule_edit, name="schedule_edit"),
    path("schedules/<int:pk>/delete/", views.schedule_delete, name="schedule_delete"),
    path("schedules/<int:pk>/run/", views.schedule_run, name="schedule_run"),
    path("targets/", views.target_list, name="target_list"),
    path("targets/agents/new/", views.agent_create, name="agent_create"),
    path("targets/agents/<int:pk>/delete/", views.agent_delete, name="agent_delete"),
    path("targets/databases/new/", views.database_create, name="database_create"),
    path("targets/databases/<int:pk>/delete/", views.database_delete, name="database_delete"),
    path("weekly/", views.weekly_list, name="weekly_list"),
    path("weekly/new/", views.weekly_create, name="weekly_create"),
    path("weekly/<int:pk>/", views.weekly_detail, name="weekly_detail"),
    path("weekly/<int:pk>/pdf/", views.weekly_pdf, name="weekly_pdf"),
]
