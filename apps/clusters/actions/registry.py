"""The actions a person can take on an inventory object, in one table (NetBox's ObjectAction).

Each ``Action`` names the capability it needs, the kinds it applies to and its URL. The detail
page's buttons come from ``permitted_actions`` and the action views resolve the same ``Action``
(``resolve``), so a button and its view cannot disagree on who may do what to which kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from django.http import Http404
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.translation import gettext_lazy as _

from apps.accounts import access
from apps.accounts.capabilities import (
    NODES_CORDON,
    NODES_DRAIN,
    PODS_DELETE,
    PODS_EXEC,
    PODS_LOGS,
    SECRETS_READ,
    WORKLOADS_RESTART,
    WORKLOADS_SCALE,
    YAML_EDIT,
)
from apps.clusters import kinds
from apps.clusters.actions import drain
from apps.clusters.actions.targets import Target
from apps.clusters.kinds import BY_KIND, KINDS
from apps.clusters.models import Resource

# In action URLs kinds are written in lower case, and "-" stands for the namespace of cluster-scoped objects.
KIND_SLUGS = {k.kind.lower(): k.kind for k in KINDS}
CLUSTER_SCOPED = "-"
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


# Stand-ins that every URL converter of the actions accepts and no real namespace or name contains.
_NS, _NAME = "kubemate0ns0standin", "kubemate0name0standin"
_SAFE = "!$&'()*+,;=/~:@"  # django.urls.resolvers: RFC 3986 sub-delimiters and "/~:@" stay as they are


@lru_cache(maxsize=1024)
def _url_pattern(url_name: str, cluster_id: int, kind: str, _prefix: str, _urlconf) -> str:
    if url_name.startswith(("clusters:pod_", "terminal:")):
        args = [cluster_id, _NS, _NAME]
    elif url_name.startswith("clusters:node_"):
        args = [cluster_id, _NAME]
    else:
        args = [cluster_id, kind, _NS, _NAME]
    return reverse(url_name, args=args)


@dataclass(frozen=True)
class Action:
    name: str
    label: object
    icon: str
    url_name: str
    # The capability the action needs; "" means the one that reads the kind (see kinds.Kind.capability).
    capability: str = ""
    # The kinds it applies to; empty means every inventory kind.
    kinds: tuple[str, ...] = ()
    # How the button is drawn: a link (GET page), a button that posts, or the scale form.
    widget: str = "post"
    confirm: object = ""
    danger: bool = False
    # The capability is marked dangerous: the view asks for the password again (apps/core/reauth.py), and the
    # confirmation dialog takes it.
    reauth: bool = False
    # Shown only when this holds for the object's summary (cordon or uncordon).
    when: Callable[[dict], bool] | None = None

    def applies_to(self, kind: str) -> bool:
        return kind in BY_KIND and BY_KIND[kind].synced and (not self.kinds or kind in self.kinds)

    def capability_for(self, kind: str) -> str:
        return self.capability or access.capability_for(kind)

    def permits(self, user, cluster, kind: str, namespace: str, name: str) -> bool:
        return self.applies_to(kind) and access.may(
            user, self.capability_for(kind), cluster=cluster, namespace=access.place_of(kind, namespace, name)
        )

    def url(self, cluster, kind: str, namespace: str, name: str) -> str:
        """The action's URL for one object: reversed once per action, cluster and kind with stand-ins for the
        namespace and name, which are then put in quoted as ``reverse`` quotes them (a list page asks for
        hundreds of these)."""
        return fill(self.url_pattern(cluster, kind), *quoted(namespace, name))

    def url_pattern(self, cluster, kind: str) -> str:
        return _url_pattern(self.url_name, cluster.pk, kind.lower(), get_script_prefix(), get_urlconf())


def quoted(namespace: str, name: str) -> tuple[str, str]:
    """A namespace and name as ``reverse`` puts them in a URL ("-" for a cluster-scoped object)."""
    return quote(namespace or CLUSTER_SCOPED, safe=_SAFE), quote(name, safe=_SAFE)


def fill(pattern: str, namespace_quoted: str, name_quoted: str) -> str:
    """An action URL from its pattern (``Action.url_pattern``) and the object's ``quoted`` namespace and name."""
    return pattern.replace(_NS, namespace_quoted).replace(_NAME, name_quoted)


ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action(
            "scale",
            _("Scale"),
            "ti-arrows-vertical",
            "clusters:workload_scale",
            WORKLOADS_SCALE,
            ("Deployment", "StatefulSet"),
            widget="scale",
        ),
        Action(
            "restart",
            _("Restart"),
            "ti-refresh",
            "clusters:workload_restart",
            WORKLOADS_RESTART,
            WORKLOADS,
            confirm=_("Restart %(name)s? Its pods are replaced one by one."),
        ),
        Action("logs", _("Logs"), "ti-file-text", "clusters:pod_logs", PODS_LOGS, ("Pod",), widget="link"),
        # The web terminal (apps/terminal): a shell in a container, as the person.
        Action(
            "terminal", _("Terminal"), "ti-terminal-2", "terminal:terminal_page", PODS_EXEC, ("Pod",), widget="link"
        ),
        Action(
            "delete",
            _("Delete"),
            "ti-trash",
            "clusters:pod_delete",
            PODS_DELETE,
            ("Pod",),
            confirm=_("Delete pod %(name)s? If a controller owns it, a new pod replaces it."),
            danger=True,
            reauth=True,
        ),
        Action(
            "uncordon",
            _("Uncordon"),
            "ti-player-play",
            "clusters:node_uncordon",
            NODES_CORDON,
            ("Node",),
            confirm=_("Uncordon node %(name)s? New pods may be placed on it again."),
            when=lambda summary: bool(summary.get("unschedulable")) and not summary.get("drain_stopped"),
        ),
        Action(
            "cordon",
            _("Cordon"),
            "ti-player-pause",
            "clusters:node_cordon",
            NODES_CORDON,
            ("Node",),
            confirm=_("Cordon node %(name)s? Running pods stay; no new pods are placed on it."),
            when=lambda summary: not summary.get("unschedulable"),
        ),
        Action(
            "drain",
            _("Drain"),
            "ti-logout",
            "clusters:node_drain",
            NODES_DRAIN,
            ("Node",),
            confirm=_("Drain node %(name)s? It is cordoned and its pods are evicted, respecting disruption budgets."),
            danger=True,
            reauth=True,
            when=lambda summary: not summary.get("drain_stopped"),
        ),
        # A drain that stopped before the end left the node cordoned: take it up, or undo it.
        Action(
            "drain-resume",
            _("Resume drain"),
            "ti-player-track-next",
            "clusters:node_drain_resume",
            NODES_DRAIN,
            ("Node",),
            confirm=_(
                "Resume the drain of node %(name)s? The pods still on it are evicted, respecting disruption budgets."
            ),
            danger=True,
            reauth=True,
            when=lambda summary: bool(summary.get("drain_stopped")),
        ),
        Action(
            "drain-undo",
            _("Uncordon (undo the drain)"),
            "ti-arrow-back-up",
            "clusters:node_drain_undo",
            NODES_CORDON,
            ("Node",),
            confirm=_("Uncordon node %(name)s? New pods may land on it again; evicted pods stay where they run now."),
            when=lambda summary: bool(summary.get("drain_stopped")),
        ),
        # Every inventory kind but Namespace: no capability's RBAC rules read namespace objects, so the
        # cluster would refuse that page to everyone acting as themselves.
        Action(
            "yaml",
            _("View YAML"),
            "ti-code",
            "clusters:resource_yaml",
            kinds=tuple(k.kind for k in KINDS if k.kind != "Namespace"),
            widget="link",
        ),
        # The kinds the "yaml.edit" capability's RBAC rules cover.
        Action(
            "yaml-edit",
            _("Edit YAML"),
            "ti-edit",
            "clusters:resource_yaml_edit",
            YAML_EDIT,
            (*WORKLOADS, "Service", "ConfigMap", "Job", "CronJob"),
            widget="link",
        ),
        # A secret's values, one key at a time, from the Keys card of its page (not a button of its own).
        Action(
            "secret-reveal",
            _("Reveal"),
            "ti-eye",
            "clusters:secret_reveal",
            SECRETS_READ,
            ("Secret",),
            widget="inline",
            reauth=True,
        ),
        # Field encryption (apps/fieldcrypt): the console asks for YAML editing, the cluster then decides whether
        # the person may change this object, since the envelope is written as them.
        Action(
            "encrypt-field",
            _("Encrypt a field"),
            "ti-lock",
            "clusters:encrypt_field",
            YAML_EDIT,
            ("ConfigMap", "Secret"),
            widget="encrypt",
            reauth=True,
        ),
    )
}


def facts(cluster, kind: str, name: str, summary: dict) -> dict:
    """What the buttons depend on beyond the object's summary: a cordoned node whose last drain stopped."""
    if kind != "Node" or not summary.get("unschedulable"):
        return {}
    return {"drain_stopped": drain.stopped_drain(cluster, name)}


@dataclass(frozen=True)
class Button:
    """One permitted action on one object, ready for the template."""

    action: Action
    url: str
    confirm: str
    # What will change, for the confirmation dialog ("" when the question says it all).
    detail: str = ""


def _detail(action: Action, cluster, kind: str, name: str, summary: dict) -> str:
    """The facts the confirmation dialog shows under the question, from the inventory's summary."""
    if action.name == "restart":
        return _("%(desired)s pods are replaced one by one; %(ready)s are ready now.") % {
            "desired": summary.get("desired", 0),
            "ready": summary.get("ready", 0),
        }
    if action.name == "delete" and summary.get("node"):
        return _("It runs on node %(node)s.") % {"node": summary["node"]}
    if kind == "Node" and action.name in ("cordon", "drain", "drain-resume"):
        pods = Resource.objects.filter(cluster=cluster, kind="Pod", summary__node=name).count()
        if action.name == "cordon":
            return _("The %(pods)s pods on it keep running.") % {"pods": pods}
        return _("%(pods)s pods run on it now; DaemonSet pods stay.") % {"pods": pods}
    return ""


def permitted_actions(
    user, cluster, kind: str, namespace: str, name: str, summary: dict | None = None, *, detail: bool = True
) -> list[Button]:
    """The actions ``user`` may take on this object, in the order the buttons show. ``detail=False`` (list rows)
    leaves out the facts the confirmation shows that cost a query."""
    return RowActions(user, cluster, kind, detail=detail)(namespace, name, summary)


class RowActions:
    """``permitted_actions`` for the many rows of one kind in one cluster (a list page).

    Whether a person may take an action depends on the kind and the place only (``access.place_of``: the
    namespace, or the cluster), so it is decided once per place, not once per row; what depends on the row
    (its URL, its summary's ``when``, the confirmation naming it) is worked out per row.
    """

    def __init__(self, user, cluster, kind: str, *, detail: bool = False):
        self.user, self.cluster, self.kind, self.detail = user, cluster, kind, detail
        self._by_place: dict[str | None, list[Action]] = {}
        self._patterns: dict[str, str] = {}
        self._confirms: dict[str, str] = {}

    def permitted_here(self, namespace: str, name: str) -> list[Action]:
        place = access.place_of(self.kind, namespace, name)
        found = self._by_place.get(place)
        if found is None:
            found = self._by_place[place] = [
                action
                for action in ACTIONS.values()
                if action.permits(self.user, self.cluster, self.kind, namespace, name)
            ]
        return found

    def __call__(self, namespace: str, name: str, summary: dict | None = None) -> list[Button]:
        actions = self.permitted_here(namespace, name)
        if not actions:
            return []
        summary = summary or {}
        if any(action.when is not None for action in actions):
            summary = {**summary, **facts(self.cluster, self.kind, name, summary)}
        buttons = []
        ns_quoted, name_quoted = quoted(namespace, name)
        for action in actions:
            if action.when is not None and not action.when(summary):
                continue
            question = self._confirm(action)
            confirm = question % {"name": name} if question else ""
            facts_text = _detail(action, self.cluster, self.kind, name, summary) if confirm and self.detail else ""
            url = fill(self._pattern(action), ns_quoted, name_quoted)
            buttons.append(Button(action, url, confirm, facts_text))
        return buttons

    def _pattern(self, action: Action) -> str:
        found = self._patterns.get(action.name)
        if found is None:
            found = self._patterns[action.name] = action.url_pattern(self.cluster, self.kind)
        return found

    def _confirm(self, action: Action) -> str:
        # The question in the reader's language, translated once per page rather than once per row.
        found = self._confirms.get(action.name)
        if found is None:
            found = self._confirms[action.name] = str(action.confirm)
        return found


def target(user, action_name: str, cluster_id: int, kind_slug: str, namespace: str, name: str) -> Target:
    """The Target an action's URL names (``resolve``'s answer as one object), or 404."""
    cluster, kind, namespace = resolve(user, ACTIONS[action_name], cluster_id, kind_slug, namespace, name)
    return Target(cluster, kind, namespace, name)


def resolve(user, action: Action, cluster_id: int, kind_slug: str, namespace: str, name: str):
    """The cluster, kind and namespace an action's URL names, or 404 when the action does not apply there
    or the user may not take it (missing and forbidden look the same)."""
    kind = KIND_SLUGS.get(kind_slug)
    if kind is None or not action.applies_to(kind):
        raise Http404
    namespaced = BY_KIND[kind].namespaced
    if namespaced == (namespace == CLUSTER_SCOPED):
        raise Http404
    namespace = namespace if namespaced else ""
    try:
        # No object can have such a name: answer like a missing one before any path is built.
        kinds.check_name(name)
        if namespace:
            kinds.check_namespace(namespace)
    except kinds.InvalidName:
        raise Http404 from None
    cluster = access.cluster(user, cluster_id)
    if not action.permits(user, cluster, kind, namespace, name):
        raise Http404
    return cluster, kind, namespace
