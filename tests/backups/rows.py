"""What the backups tests share: a storage target on the tests' versitygw (saved through the service, so checked
with a probe object), a stored target that is never reached, and backup rows of a given age."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.backups import services
from apps.backups.models import Backup, Target
from apps.core import crypto
from tests.helpers import unique


def versitygw_target(admin, s3_server, bucket: str, name: str = "versitygw") -> Target:
    found = Target(
        name=name,
        endpoint=s3_server.endpoint,
        bucket=bucket,
        region=s3_server.region,
        path_style=True,
        prefix="kubemate/test",
    )
    return services.save_target(
        actor=admin, target=found, access_key=s3_server.access_key, secret_key=s3_server.secret_key
    )


def stored_target(**fields) -> Target:
    """A target row as saving leaves it, at an address nothing answers on (pages and freshness only read rows)."""
    values = {
        "name": unique("store"),
        "endpoint": "http://127.0.0.1:9",
        "bucket": "backups",
        "access_key_encrypted": crypto.encrypt("AKIAEXAMPLE"),
        "secret_key_encrypted": crypto.encrypt("secret-example"),
    }
    return Target.objects.create(**{**values, **fields})


def backup_row(plan, hours_ago: float, status=Backup.Status.SUCCEEDED, size=1000, **fields) -> Backup:
    """A finished backup of ``plan`` that started ``hours_ago``."""
    when = timezone.now() - timedelta(hours=hours_ago)
    return Backup.objects.create(
        kind=plan.kind,
        plan=plan,
        cluster=plan.cluster,
        target=plan.target,
        name=f"{plan.name}-{unique('b')}",
        status=status,
        size_bytes=size,
        started_at=when,
        finished_at=when,
        **fields,
    )
