"""URL patterns for the cluster inventory pages; joined into the "clusters" namespace by urls.py."""

urlpatterns: list = []
