"""Every write of the releases app: create, deploy, roll back, delete; each deploy queues the rollout wait
(the ``releases.wait_rollout`` task, its body in rollout.py) as a Job.

Cluster calls act as the user (``kube.client(cluster, as_user=actor)``), so
the cluster's RBAC has the last word. The database side of each change (the
release's spec, a Revision, the audit event, the rollout Job) commits in one
transaction. Callers check the console capability first (``access.require``).
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import json
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from apps.accounts.models import Project
from apps.clusters import kube
from apps.clusters.models import Resource
from apps.core import audit, crypto, deferred, gates
from apps.core.deferred import N_, fit
from apps.core.deferred import text as D
from apps.core.jobs import start_job
from apps.core.models import AuditEvent, Job
from apps.fieldcrypt import k8s as fieldcrypt_k8s
from apps.fieldcrypt import services as fieldcrypt
from apps.releases import k8s, render
from apps.releases.models import Release, Revision
from apps.releases.tasks import wait_rollout


class ReleaseError(deferred.Failure):
    """Kubernetes refused or could not do it; the message is the sentence to show (``stored``: to keep in a row)."""


class HandEditConflict(ReleaseError):
    """The live Deployment was changed outside Kubemate since the last release; deploying needs ``force``."""


@dataclass(frozen=True)
class DeployOutcome:
    revision: Revision | None
    job: Job | None
    message: str
    # Four-eyes approval: the change waits as this change request instead of being applied (apps/core/gates.py).
    change_request: int | None = None

    @property
    def unchanged(self) -> bool:
        return self.revision is None and self.change_request is None

    @property
    def waiting(self) -> bool:
        return self.change_request is not None


# --- rendering -------------------------------------------------------------------------------------------


def secret_values(spec: dict) -> dict[str, str]:
    return {key: crypto.decrypt(token) for key, token in (spec.get("secret_env") or {}).items()}


def secret_checksum(values: dict[str, str]) -> str:
    """A keyed digest of the sensitive values: changes when they change, reveals nothing about them."""
    if not values:
        return ""
    data = json.dumps(values, sort_keys=True).encode()
    return hmac.new(settings.SECRET_KEY.encode(), data, hashlib.sha256).hexdigest()[:16]


def decrypt_args(release: Release, spec: dict) -> dict:
    """The decryption step's image and key Secret, when the release encrypts in the cluster (apps/fieldcrypt)."""
    if not render.encrypted_in_cluster(spec):
        return {}
    return {
        "decrypt_image": settings.KUBEMATE_DECRYPT_IMAGE,
        "key_secret": fieldcrypt_k8s.key_secret_name(release.project),
    }


def rendered(release: Release, spec: dict, *, reveal: bool, actor=None) -> list[dict]:
    """The release's manifests for ``spec``; sensitive values in clear only with ``reveal`` (for applying).

    A release encrypting in the cluster never has them in clear in the cluster: ``reveal`` gives envelopes
    sealed with the project's key, and lets the release's ServiceAccount read that key."""
    values = secret_values(spec)
    shown = values if reveal else render.masked(spec)
    if reveal and render.encrypted_in_cluster(spec):
        account = spec["cluster_encryption"].get("service_account") or "default"
        fieldcrypt.ensure_reader(
            actor=actor, project=release.project, namespace=release.namespace, service_account=account
        )
        shown = fieldcrypt.seal_values(release.project, values)
    return render.manifests(
        release.name, release.namespace, spec, shown, checksum=secret_checksum(values), **decrypt_args(release, spec)
    )


def deploy_action(rollback_of) -> str:
    return "releases.rollback" if rollback_of else "releases.deploy"


def change_for(
    actor,
    release: Release,
    spec: dict,
    live: dict | None,
    last: Revision | None,
    *,
    rollback_of,
    force,
    replicas_seen,
    action: str = "",
    summary: str = "",
    payload: dict | None = None,
) -> gates.Change:
    """A deploy or rollback (or ``action``: a canary's promotion, with its own summary and payload) described for
    four-eyes approval: the objects it applies (secrets masked), the diff against the last revision, and the state
    it is made against (the live Deployment's generation, the last revision, the release's spec)."""
    manifests = rendered(release, spec, reveal=False)
    before = revision_yaml(last).splitlines() if last else []
    diff = "\n".join(
        difflib.unified_diff(
            before,
            render.to_yaml(manifests).splitlines(),
            f"revision {last.number}" if last else "nothing yet",
            "requested",
            lineterm="",
        )
    )
    if not summary and rollback_of:
        summary = D(N_("Roll %(name)s back to revision %(number)s"), name=release.name, number=rollback_of)
    elif not summary:
        summary = D(N_("Deploy %(name)s with image %(image)s"), name=release.name, image=spec.get("image", ""))
    return gates.Change(
        action=action or deploy_action(rollback_of),
        cluster=release.project.cluster,
        namespace=release.namespace,
        actor=actor,
        kind="Release",
        name=release.name,
        summary=summary,
        payload=payload
        or {
            "release": release.pk,
            "spec": spec,
            "rollback_of": rollback_of,
            "force": force,
            "replicas_seen": replicas_seen,
        },
        manifests=manifests,
        diff=diff[:200_000],
        base=base_state(release, live, last),
    )


def base_state(release: Release, live: dict | None, last: Revision | None) -> dict:
    """What a change to ``release`` is made against: a hand edit bumps the Deployment's generation, a deploy in
    between adds a revision, an edit of the form changes the spec."""
    return {
        "generation": ((live or {}).get("metadata") or {}).get("generation"),
        "revision": last.number if last else 0,
        "spec_hash": spec_hash(release, release.spec),
    }


def spec_hash(release: Release, spec: dict) -> str:
    manifests = rendered(release, spec, reveal=False)
    return hashlib.sha256(json.dumps(manifests, sort_keys=True).encode()).hexdigest()


def preview_yaml(name: str, namespace: str, spec: dict) -> str:
    """YAML of what a deploy would apply, sensitive values masked (the form's live preview)."""
    return render.to_yaml(render.manifests(name or "my-app", namespace or "default", spec, render.masked(spec)))


def revision_yaml(revision: Revision) -> str:
    return render.to_yaml(rendered(revision.release, revision.spec, reveal=False))


# --- writes ----------------------------------------------------------------------------------------------


def _audit(actor, action: str, release: Release, *, request=None, detail=None, error: str = "") -> None:
    audit.record(
        actor=actor,
        action=action,
        result=AuditEvent.Result.FAILURE if error else AuditEvent.Result.SUCCESS,
        cluster=release.project.cluster.name,
        namespace=release.namespace,
        kind="Release",
        name=release.name,
        detail={**(detail or {}), **({"error": error} if error else {})},
        request=request,
    )


def check_with_kubernetes(*, actor, project: Project, namespace: str, name: str, spec: dict) -> None:
    """Kubernetes' own validation, admission policies included, before anything is saved: every object of the
    release goes to the cluster as a server-side dry run, as ``actor``; a refusal raises ReleaseError."""
    release = Release(project=project, namespace=namespace, name=name, spec=spec)  # never saved
    try:
        with kube.client(project.cluster, as_user=actor) as k:
            # Values in clear for the dry run, unless they are to be encrypted in the cluster: then the masks
            # (no key is made and nobody granted for a release that may never be saved).
            for manifest in rendered(release, spec, reveal=not render.encrypted_in_cluster(spec)):
                k.apply(manifest, dry_run=True)
    except kube.KubeError as exc:
        raise ReleaseError(
            _("Kubernetes would refuse this release, so nothing was saved: %(reason)s")
            % {"reason": deferred.render(refused_sentence(exc, release))}
        ) from None


def create_release(*, actor, project: Project, namespace: str, name: str, spec: dict, request=None) -> Release:
    """Save a release Kubernetes accepts (checked first by a dry run); the first deploy is the caller's."""
    check_with_kubernetes(actor=actor, project=project, namespace=namespace, name=name, spec=spec)
    with transaction.atomic():
        release = Release.objects.create(project=project, namespace=namespace, name=name, spec=spec, created_by=actor)
        _audit(actor, "releases.release.create", release, request=request, detail={"image": spec.get("image", "")})
    return release


def refused_sentence(exc: kube.KubeError, release: Release) -> str:
    """The refusal as it is stored (revision, audit row): a deferred sentence, read in each reader's language;
    raise it through ``deferred.render``."""
    if isinstance(exc, kube.Forbidden) and "exceeded quota" in (exc.detail or ""):
        # Admission by the namespace's ResourceQuota (GPUs, storage, pods), not RBAC: what the quota says helps.
        return D(
            N_("Kubernetes refused: the quota of namespace %(namespace)s does not allow it (%(detail)s)."),
            namespace=release.namespace,
            detail=exc.detail[:500],
        )
    if isinstance(exc, kube.Forbidden):
        return D(
            N_("Kubernetes refused: you may not change the objects of %(name)s in namespace %(namespace)s."),
            name=release.name,
            namespace=release.namespace,
        )
    return str(exc)


def kinds_of(spec: dict) -> set[str]:
    kinds = {"Deployment"}
    if spec.get("secret_env"):
        kinds.add("Secret")
    if (spec.get("service") or {}).get("enabled"):
        kinds.add("Service")
        if (spec.get("route") or {}).get("enabled"):
            kinds.add("HTTPRoute")
    if (spec.get("autoscaling") or {}).get("enabled"):
        kinds.add("HorizontalPodAutoscaler")
    if render.claim_name(spec):
        kinds.add("PersistentVolumeClaim")
    return kinds


def _object_name(release: Release, kind: str, spec: dict) -> str:
    if kind == "Secret":
        return render.secret_name(release.name)
    if kind == "PersistentVolumeClaim":
        return render.claim_name(spec) or release.name
    return release.name


def deploy_release(
    *,
    actor,
    release: Release,
    spec: dict | None = None,
    force: bool = False,
    request=None,
    rollback_of: int | None = None,
    replicas_seen: int | None = None,
    break_glass: str = "",
    approved: bool = False,
) -> DeployOutcome:
    """Apply ``spec`` (default: the release's own) as ``actor``, record a Revision and start the rollout wait.

    Refuses with HandEditConflict when someone changed the live Deployment by
    hand since the last release, unless ``force``. The same spec as the last
    revision, on a cluster nobody touched, changes nothing and says so.

    A replica count someone set in the cluster (a scale from the Deployment's page, ``kubectl scale``) is carried
    into the new revision unless the caller changed the count: ``replicas_seen`` is the count the user was shown
    (the edit form shows the live one); by default the last revision's, and a rollback keeps the live count.

    Where a policy asks for four-eyes approval (apps/compliance/approvals), nothing is applied: the outcome names
    the change request that records it (``waiting``). ``approved`` is the approved request being applied;
    ``break_glass`` the reason of an emergency change by a person who may make one.
    """
    spec = spec if spec is not None else release.spec
    action = "releases.release.rollback" if rollback_of else "releases.release.deploy"
    detail = {"image": spec.get("image", ""), **({"rollback_of": rollback_of} if rollback_of else {})}
    digest = spec_hash(release, spec)
    if release.canaries.filter(state="active").exists():
        raise ReleaseError(
            _("A canary of %(name)s is running: promote or abort it before deploying or rolling back.")
            % {"name": release.name}
        )
    last = last_applied(release)
    try:
        with kube.client(release.project.cluster, as_user=actor) as k:
            live = k8s.read(k, "Deployment", release.namespace, release.name)
            editors = k8s.hand_edits(live) if live else []
            if editors and not force:
                sentence = conflict_sentence(release, live, editors)
                _audit(actor, action, release, request=request, detail={**detail, "conflict": editors}, error=sentence)
                raise HandEditConflict(sentence)
            if replicas_seen is None:
                replicas_seen = spec.get("replicas") if rollback_of else (last.spec.get("replicas") if last else None)
            carried = carry_live_replicas(spec, live, replicas_seen)
            if carried is not spec:
                spec, digest = carried, spec_hash(release, carried)
                detail["replicas_from_cluster"] = carried["replicas"]
            # A failed last revision is deployed again: its rollout is followed anew (the way out the page offers).
            if live and not editors and last and last.spec_hash == digest and last.result != Revision.Result.FAILED:
                return DeployOutcome(
                    None,
                    None,
                    _("Nothing to change: %(name)s already runs revision %(number)s with this specification.")
                    % {"name": release.name, "number": last.number},
                )
            # Described (rendered twice, diffed) only where a policy or a window may hold it back.
            if not approved and gates.watched(deploy_action(rollback_of), release.project.cluster, release.namespace):
                change = change_for(
                    actor, release, spec, live, last, rollback_of=rollback_of, force=force, replicas_seen=replicas_seen
                )
                try:
                    gates.guard(change, request=request, break_glass=break_glass)
                except gates.ApprovalRequired as exc:
                    return DeployOutcome(None, None, str(exc), change_request=exc.request_id)
                except gates.ChangeRefused as exc:
                    raise ReleaseError(exc.stored) from None
            apply_spec(k, release, spec, last)
    except kube.KubeError as exc:
        sentence = refused_sentence(exc, release)
        with transaction.atomic():
            _record_revision(release, spec, digest, actor, Revision.Result.FAILED, sentence, rollback_of)
            _audit(actor, action, release, request=request, detail=detail, error=sentence)
        raise ReleaseError(sentence) from None
    with transaction.atomic():
        revision, job = start_rollout(release, spec, digest, actor, rollback_of=rollback_of)
        _audit(actor, action, release, request=request, detail={**detail, "revision": revision.number, "force": force})
    if rollback_of:
        message = _("Rolling %(name)s back to revision %(old)s as revision %(number)s.")
    else:
        message = _("Deploying %(name)s as revision %(number)s.")
    message = message % {"name": release.name, "number": revision.number, "old": rollback_of}
    if "replicas_from_cluster" in detail:
        message += " " + _("It keeps the %(count)s replicas it was scaled to in the cluster.") % {
            "count": detail["replicas_from_cluster"]
        }
    return DeployOutcome(revision, job, message)


def live_replicas(live: dict | None) -> int | None:
    """The replica count the live Deployment asks for (None without one)."""
    if not live:
        return None
    value = (live.get("spec") or {}).get("replicas", 1)
    return value if isinstance(value, int) else None


def carry_live_replicas(spec: dict, live: dict | None, seen: int | None) -> dict:
    """``spec`` with the live replica count when the user left the count they were shown (``seen``) and the cluster
    runs another one; ``spec`` itself otherwise. With autoscaling the autoscaler owns the count: nothing to carry."""
    count = live_replicas(live)
    if (spec.get("autoscaling") or {}).get("enabled") or count is None or seen is None:
        return spec
    if spec.get("replicas") != seen or count == spec.get("replicas"):
        return spec
    return {**spec, "replicas": count}


def replica_drift(release: Release) -> dict | None:
    """The live replica count when it is not the release's (someone scaled the Deployment in the cluster), from the
    inventory; None when they agree, with autoscaling, or before the sync has seen the Deployment."""
    if (release.spec.get("autoscaling") or {}).get("enabled"):
        return None
    row = deployment_row(release)
    if row is None:
        return None
    live = (row.summary or {}).get("desired")
    if live is None or live == release.spec.get("replicas"):
        return None
    return {"live": live, "release": release.spec.get("replicas")}


def apply_spec(k, release: Release, spec: dict, last: Revision | None) -> None:
    """Server-side apply the release's objects for ``spec``; remove the kinds ``last`` had and ``spec`` drops (and
    a claim it created under another name)."""
    for manifest in rendered(release, spec, reveal=True):
        if manifest["kind"] == "Deployment":
            _release_rolling_update(k, manifest)
        k8s.apply(k, manifest)
    previous = last.spec if last else {}
    previous_kinds = kinds_of(previous)
    mounted = (render.volume_of(spec) or {}).get("claim")
    for kind in k8s.RELEASE_KINDS:
        old_name = _object_name(release, kind, previous)
        if kind not in previous_kinds or (kind == "PersistentVolumeClaim" and old_name == mounted):
            continue  # never had it, or still mounts the claim it created (kept, no longer owned)
        if kind not in kinds_of(spec) or old_name != _object_name(release, kind, spec):
            k8s.delete(k, kind, release.namespace, old_name)


def _release_rolling_update(k, manifest: dict) -> None:
    """Before a live Deployment that rolls (RollingUpdate, defaulted with maxSurge and maxUnavailable) is applied
    with ``strategy: Recreate``, take ownership of those defaulted fields by applying them once: the Recreate
    apply then removes them. Applied straight away, the cluster refuses (rollingUpdate may not be set with
    Recreate), since no manager owns a defaulted field and apply removes only what its manager owned."""
    if (manifest["spec"].get("strategy") or {}).get("type") != "Recreate":
        return
    meta = manifest["metadata"]
    live = k8s.read(k, "Deployment", meta["namespace"], meta["name"])
    rolling = (((live or {}).get("spec") or {}).get("strategy") or {}).get("rollingUpdate")
    if rolling:
        k8s.apply(
            k,
            {**manifest, "spec": {**manifest["spec"], "strategy": {"type": "RollingUpdate", "rollingUpdate": rolling}}},
        )


def start_rollout(
    release: Release, spec: dict, digest: str, actor, *, rollback_of: int | None = None, note: str = ""
) -> tuple[Revision, Job]:
    """Inside the caller's transaction: store ``spec`` on the release, record an applied Revision, queue the wait."""
    release.spec = spec
    release.save(update_fields=["spec", "updated_at"])
    revision = _record_revision(release, spec, digest, actor, Revision.Result.APPLIED, "", rollback_of)
    job = start_job(
        task=wait_rollout,
        title=D(N_("Roll out %(name)s revision %(number)s"), name=release.name, number=revision.number),
        actor=actor,
        target=f"cluster/{release.project.cluster.name}/namespace/{release.namespace}/release/{release.name}",
        args=(revision.pk,),
    )
    revision.job = job
    revision.note = fit(note, 200)
    revision.save(update_fields=["job", "note"])
    return revision, job


def last_applied(release: Release) -> Revision | None:
    """The last revision that reached the cluster (a refused apply leaves no job behind)."""
    return release.revisions.filter(job__isnull=False).order_by("-number").first()


def conflict_sentence(release: Release, live: dict, editors: list[str]) -> str:
    labels = (live.get("metadata") or {}).get("labels") or {}
    who = ", ".join(editors)
    if labels.get(render.RELEASE_LABEL) != release.name:
        return _(
            "A Deployment named %(name)s already exists in %(namespace)s and Kubemate did not create it (%(who)s); "
            "choose another name, or deploy with force to take it over."
        ) % {"name": release.name, "namespace": release.namespace, "who": who}
    return _("Someone changed %(name)s by hand (%(who)s) since the last release; review and redeploy with force.") % {
        "name": release.name,
        "who": who,
    }


def _record_revision(release, spec, digest, actor, result, message, rollback_of) -> Revision:
    release = Release.objects.select_for_update().get(pk=release.pk)
    number = (release.revisions.aggregate(n=Max("number"))["n"] or 0) + 1
    return Revision.objects.create(
        release=release,
        number=number,
        spec=spec,
        spec_hash=digest,
        actor=actor,
        result=result,
        message=message,
        rollback_of=rollback_of,
    )


def rollback_release(
    *, actor, release: Release, number: int, force: bool = False, request=None, break_glass: str = ""
) -> DeployOutcome:
    """Re-apply revision ``number``'s spec as a new revision ("rollback to N")."""
    target = release.revisions.get(number=number)
    return deploy_release(
        actor=actor,
        release=release,
        spec=target.spec,
        force=force,
        request=request,
        rollback_of=target.number,
        break_glass=break_glass,
    )


def delete_release(*, actor, release: Release, request=None, approved: bool = False, break_glass: str = "") -> None:
    """Remove the release's objects from the cluster as ``actor``, then the release and its history.

    Where a policy asks for four-eyes approval, nothing is removed: ``gates.ApprovalRequired`` names the change
    request (``approved``: it is being applied; an undo of what the same call just made passes it too)."""
    if not approved and gates.watched("releases.delete", release.project.cluster, release.namespace):
        last = last_applied(release)
        manifests = rendered(release, release.spec, reveal=False)
        change = gates.Change(
            action="releases.delete",
            cluster=release.project.cluster,
            namespace=release.namespace,
            actor=actor,
            kind="Release",
            name=release.name,
            summary=D(N_("Remove %(name)s and its objects"), name=release.name),
            payload={"release": release.pk},
            manifests=manifests,
            diff="\n".join(f"- {m['kind']} {m['metadata']['name']}" for m in manifests),
            base=base_state(release, None, last),  # no Deployment generation: removal takes whatever runs
        )
        try:
            gates.guard(change, request=request, break_glass=break_glass)
        except gates.ChangeRefused as exc:
            raise ReleaseError(exc.stored) from None
    try:
        with kube.client(release.project.cluster, as_user=actor) as k:
            for kind in k8s.RELEASE_KINDS:
                if kind in kinds_of(release.spec):
                    k8s.delete(k, kind, release.namespace, _object_name(release, kind, release.spec))
            for kind in ("Service", "Deployment"):
                k8s.delete(k, kind, release.namespace, render.canary_name(release.name))
    except kube.KubeError as exc:
        sentence = refused_sentence(exc, release)
        _audit(actor, "releases.release.delete", release, request=request, error=sentence)
        raise ReleaseError(sentence) from None
    with transaction.atomic():
        _audit(actor, "releases.release.delete", release, request=request)
        release.delete()


# --- reads for pages ---------------------------------------------------------------------------------------


def autoscaler_row(release: Release) -> Resource | None:
    """The inventory's view of the release's HPA (current and desired replicas), when the sync has seen it."""
    return Resource.objects.filter(
        cluster_id=release.project.cluster_id,
        kind="HorizontalPodAutoscaler",
        namespace=release.namespace,
        name=release.name,
    ).first()


def deployment_row(release: Release) -> Resource | None:
    """The inventory's view of the release's Deployment (desired and ready replicas, images)."""
    return Resource.objects.filter(
        cluster_id=release.project.cluster_id, kind="Deployment", namespace=release.namespace, name=release.name
    ).first()


def pod_rows(release: Release, limit: int = 20) -> list[Resource]:
    """The release's pods as the inventory holds them (stable and canary), for one-click logs."""
    return list(
        Resource.objects.filter(
            cluster_id=release.project.cluster_id,
            kind="Pod",
            namespace=release.namespace,
            labels__contains={render.RELEASE_LABEL: release.name},
        )
        .only("id", "kind", "namespace", "name", "status", "summary", "labels", "created")
        .order_by("name")[:limit]
    )


def route_row(release: Release) -> Resource | None:
    return Resource.objects.filter(
        cluster_id=release.project.cluster_id, kind="HTTPRoute", namespace=release.namespace, name=release.name
    ).first()


def route_status(release: Release) -> list[k8s.RouteParent] | None:
    """What the gateway controllers wrote on the release's HTTPRoute (Accepted, ResolvedRefs per Gateway), as the
    inventory last saw it: no cluster call on a page view. None when the release has no route or the inventory has
    not seen it yet; an empty list while no controller has reported."""
    if not (release.spec.get("route") or {}).get("enabled"):
        return None
    row = (
        Resource.objects.filter(
            cluster_id=release.project.cluster_id, kind="HTTPRoute", namespace=release.namespace, name=release.name
        )
        .only("object")
        .first()
    )
    return None if row is None else k8s.route_parents(row.object)


def release_for_resource(cluster_id: int, namespace: str, name: str) -> Release | None:
    return (
        Release.objects.filter(project__cluster_id=cluster_id, namespace=namespace, name=name)
        .select_related("project")
        .first()
    )


# --- field encryption keys -------------------------------------------------------------------------------


def reseal_secrets(*, actor, project: Project) -> int:
    """Apply again, as ``actor``, the Secret of each release of ``project`` that encrypts in the cluster, sealed
    with the project's active key; the pods are not restarted (they hold plaintext already, and a pod starting
    now opens the old or the new envelope). Returns how many Secrets were written."""
    written = 0
    releases = [r for r in Release.objects.filter(project=project) if render.encrypted_in_cluster(r.spec)]
    if not releases:
        return 0
    with kube.client(project.cluster, as_user=actor) as k:
        for release in releases:
            for manifest in rendered(release, release.spec, reveal=True, actor=actor):
                if manifest["kind"] == "Secret":
                    k8s.apply(k, manifest)
                    written += 1
    return written


def rotate_field_key(*, actor, project: Project, request=None):
    """Rotate the project's field-encryption key (apps/fieldcrypt.services.rotate): the ConfigMap and Secret
    fields and the releases' Secrets are sealed with the new version while both versions open, then the old
    version is retired."""
    return fieldcrypt.rotate(
        actor=actor,
        project=project,
        request=request,
        while_both_open=lambda old, new: reseal_secrets(actor=actor, project=project),
    )
