from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.accounts.preferences import set_language
from apps.core import views as core_views
from kubemate import dashboard

admin.site.site_header = "Kubemate"
admin.site.site_title = "Kubemate"

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="registration/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oidc/", include("apps.accounts.oidc.urls")),
    path("i18n/setlang/", set_language, name="set_language"),
    path("admin/", admin.site.urls),
    path("", include("apps.accounts.urls_security")),
    path("accounts/", include("apps.accounts.urls")),
    path("clusters/", include("apps.clusters.urls")),
    path("releases/", include("apps.releases.urls")),
    path("terminal/", include("apps.terminal.urls")),
    path("observability/", include("apps.observability.urls")),
    path("inspection/", include("apps.inspection.urls")),
    path("cicd/", include("apps.cicd.urls")),
    path("backups/", include("apps.backups.urls")),
    path("ai/", include("apps.ai.urls")),
    path("compliance/", include("apps.compliance.urls")),
    path("", dashboard.dashboard, name="dashboard"),
    path("dashboard/facts/", dashboard.dashboard_facts, name="dashboard_facts"),
    path("", include("apps.core.urls")),
]

handler400 = "apps.core.errors.bad_request"
handler404 = "apps.core.errors.not_found"
handler500 = "apps.core.errors.server_error"
