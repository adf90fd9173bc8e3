"""The etcd restore runbook of a cluster: printable, filled in with the cluster's etcd members (from its etcd access)
and its newest good snapshot, for whole-cluster viewers."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.utils import timezone

from apps.accounts.capabilities import BACKUPS_VIEW
from apps.backups import access
from apps.backups.models import Backup, EtcdAccess, Kind
from apps.core.htmx import render


@dataclass(frozen=True)
class Member:
    name: str
    client_url: str
    peer_url: str
    host: str


def members_of(endpoints: list[str]) -> list[Member]:
    """etcd's members as the runbook names them: from each client URL, the member's host, its peer URL on port
    2380 and a name (the host's first label; members reached by address are called etcd-1, etcd-2...)."""
    found = []
    for n, endpoint in enumerate(endpoints, start=1):
        parts = urlsplit(endpoint)
        host = parts.hostname or endpoint
        try:
            ip_address(host)
            name = f"etcd-{n}"
        except ValueError:
            name = host.split(".")[0]
        shown = f"[{host}]" if ":" in host else host
        found.append(Member(name, endpoint, f"{parts.scheme or 'https'}://{shown}:2380", host))
    return found


@login_required
def runbook(request, cluster_id: int):
    user = request.user
    found = access.cluster(user, cluster_id)
    if not access.on_cluster(user, BACKUPS_VIEW, found):
        raise Http404
    snapshot = (
        Backup.objects.filter(cluster=found, kind=Kind.ETCD, status=Backup.Status.SUCCEEDED, removed_at__isnull=True)
        .select_related("target", "plan")
        .order_by("-started_at", "-pk")
        .first()
    )
    etcd_access = EtcdAccess.objects.filter(cluster=found).first()
    members = members_of(list(etcd_access.endpoints) if etcd_access else [])
    context = {
        "cluster": found,
        "snapshot": snapshot,
        "target": snapshot.target if snapshot else None,
        "etcd_access": etcd_access,
        "members": members,
        "initial_cluster": ",".join(f"{m.name}={m.peer_url}" for m in members),
        "endpoints": ",".join(m.client_url for m in members),
        "token": f"{found.name}-restore-{timezone.now():%Y%m%d}",
        "sealed": f"{snapshot.name}.db.gz.sealed" if snapshot else "snapshot.db.gz.sealed",
        "username": user.get_username(),
    }
    return render(request, "backups/runbook.html", context)
