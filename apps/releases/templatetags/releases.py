"""{% release_for resource as release %}: the Release that manages an inventory object, for the cluster pages."""

from django import template

from apps.releases.render import RELEASE_LABEL
from apps.releases.services import release_for_resource

register = template.Library()


@register.simple_tag
def release_for(resource):
    """The Release named by the object's ``kubemate.io/release`` label in the same cluster and namespace, or None."""
    name = (resource.labels or {}).get(RELEASE_LABEL)
    if not name or not resource.namespace:
        return None
    return release_for_resource(resource.cluster_id, resource.namespace, name)
