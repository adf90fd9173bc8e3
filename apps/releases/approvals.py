"""A deploy or rollback approved under four-eyes approval (apps/compliance/approvals), applied by its recorded
payload as the maker. Registered with apps/core/gates.py in apps.py. ``stale`` refuses a request whose release moved
since it was made: the Deployment edited in the cluster (its generation), another revision deployed, the release's
form changed."""

from __future__ import annotations

from apps.clusters import kube
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.releases import k8s, services
from apps.releases.models import Release


def _release(payload: dict) -> Release | None:
    return Release.objects.select_related("project__cluster").filter(pk=payload.get("release")).first()


def stale(payload: dict, base: dict) -> str | None:
    release = _release(payload)
    if release is None:
        return D(N_("The release was deleted since the request."))
    try:
        with kube.client(release.project.cluster) as k:
            live = k8s.read(k, "Deployment", release.namespace, release.name)
    except kube.KubeError as exc:
        return D(N_("The cluster could not be read to check the request: %(error)s"), error=str(exc)[:300])
    now = services.base_state(release, live, services.last_applied(release))
    if now["generation"] != base.get("generation"):
        return D(
            N_(
                "The Deployment %(name)s was changed in the cluster since the request (generation %(before)s, now "
                "%(now)s): what was reviewed is no longer what would change. The maker must ask again."
            ),
            name=release.name,
            before=base.get("generation") if base.get("generation") is not None else "-",
            now=now["generation"] if now["generation"] is not None else "-",
        )
    if now["revision"] != base.get("revision"):
        return D(
            N_("%(name)s was deployed again since the request (now revision %(number)s). The maker must ask again."),
            name=release.name,
            number=now["revision"],
        )
    if now["spec_hash"] != base.get("spec_hash"):
        return D(N_("The release %(name)s was edited since the request. The maker must ask again."), name=release.name)
    return None


def rendered(payload: dict) -> list[dict] | None:
    release = _release(payload)
    return services.rendered(release, payload["spec"], reveal=False) if release else None


def apply(payload: dict, maker, *, change_request) -> str:
    release = _release(payload)
    outcome = services.deploy_release(
        actor=maker,
        release=release,
        spec=payload["spec"],
        force=bool(payload.get("force")),
        rollback_of=payload.get("rollback_of"),
        replicas_seen=payload.get("replicas_seen"),
        approved=True,
    )
    if outcome.revision is None:
        return D(N_("Nothing to change: %(name)s already runs this specification."), name=release.name)
    return D(N_("Applied as revision %(number)s of %(name)s."), number=outcome.revision.number, name=release.name)


def stale_delete(payload: dict, base: dict) -> str | None:
    release = _release(payload)
    if release is None:
        return D(N_("The release was deleted since the request."))
    now = services.base_state(release, None, services.last_applied(release))
    if (now["revision"], now["spec_hash"]) != (base.get("revision"), base.get("spec_hash")):
        return D(N_("%(name)s was deployed or edited since the request. The maker must ask again."), name=release.name)
    return None


def rendered_delete(payload: dict) -> list[dict] | None:
    release = _release(payload)
    return services.rendered(release, release.spec, reveal=False) if release else None


def apply_delete(payload: dict, maker, *, change_request) -> str:
    release = _release(payload)
    name = release.name
    services.delete_release(actor=maker, release=release, approved=True)
    return D(N_("Release %(name)s and its objects are removed."), name=name)


def _canary(payload: dict):
    from apps.releases.models import Canary

    return Canary.objects.select_related("release__project__cluster").filter(pk=payload.get("canary")).first()


def stale_promote(payload: dict, base: dict) -> str | None:
    from apps.releases.models import Canary

    canary = _canary(payload)
    if canary is None or canary.state != Canary.State.ACTIVE:
        return D(N_("The canary was promoted, aborted or removed since the request."))
    return stale({"release": canary.release_id}, base)


def rendered_promote(payload: dict) -> list[dict] | None:
    canary = _canary(payload)
    return services.rendered(canary.release, payload["spec"], reveal=False) if canary else None


def apply_promote(payload: dict, maker, *, change_request) -> str:
    from apps.releases import analysis, canaries

    canary = _canary(payload)
    with analysis.exclusive(canary):
        outcome = canaries.promote_canary(actor=maker, canary=canary, force=bool(payload.get("force")), approved=True)
    return D(
        N_("Applied as revision %(number)s of %(name)s."), number=outcome.revision.number, name=canary.release.name
    )
