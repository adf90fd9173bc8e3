"""URL patterns for the cluster actions pages; joined into the "clusters" namespace by urls.py."""

urlpatterns: list = []
