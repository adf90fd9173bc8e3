"""Field encryption: seal ConfigMap and Secret fields with the project's key, let apps read it, rotate it.

Start here. ``seal_field`` replaces one field's value in the cluster by its envelope (envelope.py), acting as
the person; ``grant_reader`` lets an app's ServiceAccount read the project's key (k8s.py); ``rotate`` adds a
new key version, re-seals every sealed field with it while both versions stay readable (pods starting
meanwhile open either), then retires the old version. Each change is audited as its actor.
"""

from __future__ import annotations

import base64

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.clusters import kube
from apps.core import audit
from apps.fieldcrypt import envelope, k8s
from apps.fieldcrypt.models import KeyReader, ProjectKey, SealedField

SEALABLE = ("ConfigMap", "Secret")


class SealError(Exception):
    """The field cannot be sealed; the message is the sentence."""


def active_key(project) -> ProjectKey:
    """The project's newest unretired key, made (version 1) the first time."""
    with transaction.atomic():
        key = project.field_keys.select_for_update().filter(retired_at__isnull=True).order_by("-version").first()
        if key is None:
            key = ProjectKey(project=project, version=1)
            key.set_key(envelope.new_key())
            key.save()
    return key


def _keys(project) -> dict[int, bytes]:
    return {k.version: k.key for k in project.field_keys.filter(retired_at__isnull=True)}


def _publish(project) -> None:
    readers = list(KeyReader.objects.filter(project=project).values_list("namespace", "service_account"))
    with kube.client(project.cluster) as k:
        k8s.publish(k, project, _keys(project), readers)


def grant_reader(*, actor, project, namespace: str, service_account: str, request=None) -> None:
    """Let the app running as ``namespace/service_account`` read the project's key (and nobody else new)."""
    if namespace not in project.namespaces:
        raise SealError(
            _("Namespace %(namespace)s is not in project %(project)s.")
            % {"namespace": namespace, "project": project.name}
        )
    active_key(project)
    KeyReader.objects.get_or_create(project=project, namespace=namespace, service_account=service_account)
    _publish(project)
    audit.record(
        actor=actor,
        action="fieldcrypt.reader.grant",
        cluster=project.cluster.name,
        namespace=namespace,
        kind="ServiceAccount",
        name=service_account,
        request=request,
    )


def ensure_reader(*, actor, project, namespace: str, service_account: str, request=None) -> None:
    """``grant_reader`` unless that ServiceAccount already reads the key (a release's deploy asks each time)."""
    if not KeyReader.objects.filter(project=project, namespace=namespace, service_account=service_account).exists():
        grant_reader(
            actor=actor, project=project, namespace=namespace, service_account=service_account, request=request
        )


def seal_values(project, values: dict[str, str]) -> dict[str, str]:
    """Each value sealed for its own name with the project's active key (a release's sensitive variables)."""
    key = active_key(project)
    return {name: envelope.seal(key.key, key.version, name, value) for name, value in values.items()}


def _read_value(obj: dict, kind: str, field: str) -> str | None:
    if kind == "Secret":
        raw = (obj.get("data") or {}).get(field)
        return None if raw is None else base64.b64decode(raw).decode("utf-8", "replace")
    return (obj.get("data") or {}).get(field)


def _write_value(k: kube.Client, kind: str, namespace: str, name: str, field: str, value: str) -> None:
    data = base64.b64encode(value.encode()).decode() if kind == "Secret" else value
    k.patch(kind, namespace, name, {"data": {field: data}})


def seal_field(*, actor, project, kind: str, namespace: str, name: str, field: str, request=None) -> None:
    """Replace the field's value in the cluster by its envelope, acting as ``actor``; audited either way."""
    if kind not in SEALABLE or namespace not in project.namespaces:
        raise SealError(_("Only ConfigMap and Secret fields in the project's namespaces can be encrypted."))
    key = active_key(project)
    target = {"cluster": project.cluster.name, "namespace": namespace, "kind": kind, "name": name}
    try:
        # Kubemate's identity reads the value (no console role reads Secret values); the person writes the
        # envelope, so the cluster decides whether they may change this object.
        with kube.client(project.cluster) as k:
            value = _read_value(k.get(kind, namespace, name), kind, field)
        if value is None:
            raise SealError(
                _("%(kind)s %(name)s has no field %(field)s.") % {"kind": kind, "name": name, "field": field}
            )
        if not envelope.is_sealed(value):
            with kube.client(project.cluster, as_user=actor) as k:
                _write_value(k, kind, namespace, name, field, envelope.seal(key.key, key.version, field, value))
    except (SealError, envelope.EnvelopeError, kube.KubeError) as exc:
        audit.record(
            actor=actor,
            action="fieldcrypt.field.seal",
            result="failure",
            detail={"field": field, "error": str(exc)},
            request=request,
            **target,
        )
        raise SealError(str(exc)) from None
    SealedField.objects.get_or_create(project=project, kind=kind, namespace=namespace, name=name, field=field)
    audit.record(
        actor=actor,
        action="fieldcrypt.field.seal",
        detail={"field": field, "key_version": key.version},
        request=request,
        **target,
    )


def rotate(*, actor, project, request=None, while_both_open=None) -> ProjectKey:
    """A new key version seals every sealed field; the old one is retired only after that, so no pod is left
    unable to open what it reads. Kubemate's identity reads the fields and the person writes them again.
    ``while_both_open(old, new)`` runs after every field is re-sealed and before the old version goes (the
    moment to restart pods that read the fields; the tests check both versions open then)."""
    old = active_key(project)
    new = ProjectKey(project=project, version=old.version + 1)
    new.set_key(envelope.new_key())
    new.save()
    _publish(project)  # both versions readable from here on
    keys = _keys(project)
    resealed = 0
    with kube.client(project.cluster) as reader, kube.client(project.cluster, as_user=actor) as k:
        for sealed in SealedField.objects.filter(project=project):
            live = reader.read(sealed.kind, sealed.namespace, sealed.name)
            value = _read_value(live, sealed.kind, sealed.field) if live else None
            if value is None or not envelope.is_sealed(value):
                continue  # the object or field is gone, or someone wrote a plain value since
            plaintext = envelope.open_(keys, sealed.field, value)
            fresh = envelope.seal(new.key, new.version, sealed.field, plaintext)
            _write_value(k, sealed.kind, sealed.namespace, sealed.name, sealed.field, fresh)
            resealed += 1
    if while_both_open is not None:
        while_both_open(old, new)
    project.field_keys.filter(version__lt=new.version, retired_at__isnull=True).update(retired_at=timezone.now())
    _publish(project)
    audit.record(
        actor=actor,
        action="fieldcrypt.key.rotate",
        cluster=project.cluster.name,
        kind="Project",
        name=project.slug,
        detail={"version": new.version, "resealed": resealed},
        request=request,
    )
    return new
