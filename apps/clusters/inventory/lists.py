"""One page of an inventory list: visible rows of a kind after search, label, status, namespace and
project filters, sorted and paged in the database."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import Q
from django.db.models.fields.json import KT
from django.utils.translation import gettext as _

from apps.accounts import access
from apps.accounts.models import Project
from apps.clusters.kinds import BY_KIND, KINDS
from apps.clusters.values import is_label_key, is_label_value

# The inventory's kinds by the slug in their URLs (the plural), and back.
BY_SLUG = {k.plural: k for k in KINDS}
SLUG_OF = {k.kind: k.plural for k in KINDS}
PAGE_SIZE = 50
SORTS = {
    "name": ("name", "namespace"),
    "-name": ("-name", "-namespace"),
    "namespace": ("namespace", "name"),
    "-namespace": ("-namespace", "-name"),
    "status": ("status", "namespace", "name"),
    "-status": ("-status", "namespace", "name"),
    # "age" lists the youngest first, like reading a log.
    "age": ("-created", "namespace", "name"),
    "-age": ("created", "namespace", "name"),
}
# Extra columns read straight from the stored object for kinds whose summary is thin.
OBJECT_COLUMNS = {
    "PersistentVolume": {
        "capacity": "object__spec__capacity__storage",
        "claim_namespace": "object__spec__claimRef__namespace",
        "claim": "object__spec__claimRef__name",
        "storage_class": "object__spec__storageClassName",
    },
}
LISTED_FIELDS = (
    "id",
    "kind",
    "namespace",
    "name",
    "status",
    "summary",
    "labels",
    "created",
    "owner_kind",
    "owner_name",
)


class SelectorError(ValueError):
    """A label selector the user typed cannot be read; the message says why."""


def selector_q(text: str) -> Q:
    """Parse ``app=web,tier!=db,canary,!legacy`` into a filter on the labels column."""
    q = Q()
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        negate = False
        if "!=" in term:
            key, value = (part.strip() for part in term.split("!=", 1))
            negate = True
        elif "=" in term:
            key, value = (part.strip() for part in term.replace("==", "=").split("=", 1))
        elif term.startswith("!"):
            key, value, negate = term[1:].strip(), None, True
        else:
            key, value = term, None
        if not is_label_key(key) or (value is not None and not is_label_value(value)):
            raise SelectorError(
                _("“%(term)s” is not a label selector. Write key=value, key!=value, key or !key, separated by commas.")
                % {"term": term}
            )
        match = Q(labels__contains={key: value}) if value is not None else Q(labels__has_key=key)
        q &= ~match if negate else match
    return q


@dataclass
class Listing:
    rows: list
    total: int
    page: int
    pages: int
    error: str = ""

    @property
    def first(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.page * PAGE_SIZE, self.total)


def project_choices(user, cluster) -> list[Project]:
    """The cluster's projects holding a namespace whose workloads the user may see."""
    where = access.q(user, access.capability_for("Pod"), cluster="cluster", namespace="namespaces__overlap")
    projects = Project.objects.filter(cluster=cluster).filter(where).order_by("name")
    return list(projects.only("id", "name", "namespaces"))


def default_sort(kind: str) -> str:
    if kind == "Event":
        return "age"
    return "namespace" if BY_KIND[kind].namespaced else "name"


def resource_listing(user, cluster, kind: str, params) -> Listing:
    """One page of visible rows of ``kind`` after search, label, status, namespace and project filters."""
    rows = access.resources(user, cluster, kind)
    search = (params.get("q") or "").strip()
    if search:
        rows = rows.filter(name__icontains=search)
    if params.get("status"):
        rows = rows.filter(status=params["status"])
    if params.get("namespace") and kind != "Namespace":
        rows = rows.filter(namespace=params["namespace"])
    project_id = params.get("project") or ""
    if project_id.isdigit():
        project = Project.objects.filter(cluster=cluster, pk=int(project_id)).values_list("namespaces", flat=True)
        namespaces = list(project.first() or [])
        rows = rows.filter(name__in=namespaces) if kind == "Namespace" else rows.filter(namespace__in=namespaces)
    error = ""
    if params.get("labels"):
        try:
            rows = rows.filter(selector_q(params["labels"]))
        except SelectorError as exc:
            error, rows = str(exc), rows.none()
    total = rows.count()
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = params.get("page") or "1"
    page = min(max(int(page), 1), pages) if page.isdigit() else 1
    order = SORTS.get(params.get("sort") or default_sort(kind), SORTS[default_sort(kind)])
    extra = {key: KT(path) for key, path in OBJECT_COLUMNS.get(kind, {}).items()}
    start = (page - 1) * PAGE_SIZE
    found = (
        list(rows.only(*LISTED_FIELDS).annotate(**extra).order_by(*order)[start : start + PAGE_SIZE]) if total else []
    )
    return Listing(found, total, page, pages, error)


# The distinct statuses of a kind by skipping through the (cluster, kind, status) index: one probe per status instead
# of reading every row's entry (15,000 pods have three or four statuses).
_DISTINCT_STATUSES = """
WITH RECURSIVE found(status) AS (
    (SELECT status FROM clusters_resource WHERE cluster_id = %(cluster)s AND kind = %(kind)s AND status > ''
     ORDER BY status LIMIT 1)
    UNION ALL
    SELECT (SELECT r.status FROM clusters_resource r
            WHERE r.cluster_id = %(cluster)s AND r.kind = %(kind)s AND r.status > found.status
            ORDER BY r.status LIMIT 1)
    FROM found WHERE found.status IS NOT NULL
)
SELECT status FROM found WHERE status IS NOT NULL LIMIT 1000
"""


def status_choices(user, cluster, kind: str) -> list[str]:
    """The statuses the status filter offers: those of the rows of ``kind`` the user may see."""
    where = access.resources_q(user, cluster, kind)
    if where is None:
        return []
    if not where:
        # Every row of the kind is visible.
        with connection.cursor() as cursor:
            cursor.execute(_DISTINCT_STATUSES, {"cluster": cluster.pk, "kind": kind})
            return sorted(status for (status,) in cursor.fetchall())
    rows = access.resources(user, cluster, kind).exclude(status="").values_list("status", flat=True).distinct()
    return sorted(rows.order_by())
