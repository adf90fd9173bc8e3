from django.urls import path

from apps.terminal import views

app_name = "terminal"

urlpatterns = [
    path("<int:cluster_id>/<str:namespace>/<str:name>/", views.terminal_page, name="terminal_page"),
]
