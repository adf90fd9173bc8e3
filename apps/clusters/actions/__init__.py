"""Day-2 actions on cluster objects (services.py). The package registers, when it is loaded (the URL configuration
loads it in every web process), how a YAML edit approved under four-eyes approval is applied (approvals.py, through
apps/core/gates.py): the clusters app's own AppConfig sits in a layer below these actions and may not name them."""

from apps.core import gates


def _apply(*args, **kwargs):
    from apps.clusters.actions.approvals import apply

    return apply(*args, **kwargs)


def _stale(*args, **kwargs):
    from apps.clusters.actions.approvals import stale

    return stale(*args, **kwargs)


def _rendered(*args, **kwargs):
    from apps.clusters.actions.approvals import rendered

    return rendered(*args, **kwargs)


def _lazy(name: str):
    def call(*args, **kwargs):
        from apps.clusters.actions import approvals

        return getattr(approvals, name)(*args, **kwargs)

    return call


gates.register_applier("yaml.edit", apply=_apply, stale=_stale, rendered=_rendered)
gates.register_applier(
    "nodes.drain", apply=_lazy("apply_drain"), stale=_lazy("stale_drain"), rendered=_lazy("rendered_drain")
)
