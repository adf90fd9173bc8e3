"""URL patterns for the cluster registry pages; joined into the "clusters" namespace by urls.py."""

urlpatterns: list = []
