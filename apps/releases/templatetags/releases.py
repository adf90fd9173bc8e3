"""{% release_for resource as release %}: the Release that manages an inventory object, for the cluster pages."""

from django import template

from apps.clusters.models import Resource
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


@register.simple_tag
def release_managing(cluster, kind: str, namespace: str, name: str):
    """The Release managing the object the inventory holds as ``kind`` ``namespace``/``name``, or None."""
    row = Resource.objects.filter(cluster=cluster, kind=kind, namespace=namespace, name=name).only(
        "cluster_id", "namespace", "labels"
    )
    row = row.first()
    return release_for(row) if row is not None else None
