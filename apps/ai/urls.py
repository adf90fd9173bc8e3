"""The AI pages, one module of URLs per part (each part's ``urls.py`` lists its own paths), all in the ``ai``
namespace."""

from django.urls import path

from apps.ai import views
from apps.ai.assistant import urls as assistant_urls
from apps.ai.gpu import urls as gpu_urls
from apps.ai.knowledge import urls as knowledge_urls
from apps.ai.servers import urls as servers_urls

app_name = "ai"

urlpatterns = [
    path("", views.home, name="home"),
    *gpu_urls.urlpatterns,
    *servers_urls.urlpatterns,
    *knowledge_urls.urlpatterns,
    *assistant_urls.urlpatterns,
]
