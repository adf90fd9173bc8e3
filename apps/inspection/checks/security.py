"""Security checks of what runs: images, privileges, host access. Judged on the pod templates a person edits (a
Deployment, StatefulSet, DaemonSet or CronJob; a Job that no CronJob made; a pod that nothing controls on its own),
so a finding names the object to change and keeps its subject from run to run. Pods a controller made are that
controller's template and are not judged again (a 15,000-pod cluster yields one finding per workload, not per pod).

One streamed pass over each workload kind builds a digest kept for the run (``template_digest``): for each check,
the workloads that fail it with what was found. Only failing workloads are kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from django.utils.translation import gettext_lazy as _

from apps.clusters.inventory.summaries import controller_of
from apps.clusters.models import Cluster
from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.inspection.checks.base import Domain, Finding, Severity, check

CLUSTER = Domain.CLUSTER
TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "Pod")
DANGEROUS_CAPABILITIES = frozenset(
    {"ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "DAC_READ_SEARCH", "NET_RAW", "SYS_RAWIO", "BPF"}
)
MAX_NAMES = 8


# Pods and Jobs whose controller's template is judged on its own row: a CronJob's Jobs, a Job's pods, a StatefulSet's
# and a DaemonSet's pods; a Deployment's ReplicaSet's pods carry pod-template-hash; a static pod's manifest lives on
# its node.
JUDGED_CONTROLLERS = {"Job": frozenset({"CronJob"}), "Pod": frozenset({"StatefulSet", "DaemonSet", "Job", "Node"})}


def _own_spec(kind: str, obj: dict) -> dict:
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return ((((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")) or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def _judged_elsewhere(kind: str, obj: dict, controller: dict) -> bool:
    if kind == "Pod" and controller.get("kind") == "ReplicaSet":
        return "pod-template-hash" in ((obj.get("metadata") or {}).get("labels") or {})
    return controller.get("kind") in JUDGED_CONTROLLERS.get(kind, ())


def templates(ctx, cluster: Cluster) -> Iterator[tuple[str, str, dict]]:
    """(subject, namespace, pod spec) of every pod template a person edits, each once: the workloads' templates,
    bare pods and Jobs, and for pods and Jobs of any other controller (an operator's custom resource, a ReplicaSet
    of its own) the first one seen, named after that controller."""
    for kind in TEMPLATE_KINDS:
        others: set[str] = set()
        for row in ctx.rows(cluster, kind):
            owner = controller_of(row.object) if kind in JUDGED_CONTROLLERS else None
            if not owner:
                yield f"{kind} {row.namespace}/{row.name}", row.namespace, _own_spec(kind, row.object)
                continue
            if _judged_elsewhere(kind, row.object, owner):
                continue
            subject = f"{str(owner.get('kind') or '?')[:63]} {row.namespace}/{str(owner.get('name') or '?')[:253]}"
            if subject not in others:
                others.add(subject)
                yield subject, row.namespace, _own_spec(kind, row.object)


def containers_of(pod_spec: dict) -> list[dict]:
    return [
        c for c in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or []) if isinstance(c, dict)
    ]


def image_problem(image: str) -> tuple[bool, bool]:
    """(latest or untagged, not pinned by digest)."""
    if "@sha256:" in image:
        return False, False
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return (tag in ("", "latest")), True


def _as_root(pod_spec: dict, container: dict) -> bool:
    pod_ctx = pod_spec.get("securityContext") or {}
    ctx = container.get("securityContext") or {}
    user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    if user is not None:
        return str(user).strip() == "0"
    return non_root is not True


def _judge(pod_spec: dict) -> dict[str, list[str]]:
    """For one pod template: check id -> what failed it (container names, volume names, words)."""
    found: dict[str, list[str]] = defaultdict(list)
    for c in containers_of(pod_spec):
        name = str(c.get("name") or "?")[:63]
        ctx = c.get("securityContext") or {}
        latest, unpinned = image_problem(str(c.get("image") or ""))
        if latest:
            found["security.images.latest"].append(f"{name} ({str(c.get('image'))[:120]})")
        if unpinned:
            found["security.images.unpinned"].append(name)
        if ctx.get("privileged") is True:
            found["security.containers.privileged"].append(name)
        if _as_root(pod_spec, c):
            found["security.containers.root"].append(name)
        if ctx.get("allowPrivilegeEscalation") is not False:
            found["security.containers.privilege_escalation"].append(name)
        added = {str(cap).upper() for cap in ((ctx.get("capabilities") or {}).get("add") or [])}
        added = {cap.removeprefix("CAP_") for cap in added}
        if added & DANGEROUS_CAPABILITIES:
            found["security.containers.capabilities"].append(
                f"{name} ({', '.join(sorted(added & DANGEROUS_CAPABILITIES))})"
            )
        if ctx.get("readOnlyRootFilesystem") is not True:
            found["security.containers.writable_root"].append(name)
    for volume in pod_spec.get("volumes") or []:
        if isinstance(volume, dict) and volume.get("hostPath"):
            path = str((volume["hostPath"] or {}).get("path") or "")[:120]
            found["security.pods.host_path"].append(f"{volume.get('name')} ({path})")
    shared = [word for word in ("hostNetwork", "hostPID", "hostIPC") if pod_spec.get(word) is True]
    if shared:
        found["security.pods.host_namespaces"] += shared
    return found


def template_digest(ctx, cluster: Cluster) -> dict[str, list[tuple[str, str, list[str]]]]:
    """check id -> [(subject, namespace, what failed)], one pass over each template kind, kept for the run. Only
    what fails is kept: a handful of words per failing workload and check."""

    def build():
        digest: dict[str, list[tuple[str, str, list[str]]]] = defaultdict(list)
        for subject, namespace, spec in templates(ctx, cluster):
            for check_id, what in _judge(spec).items():
                digest[check_id].append((subject, namespace, what))
        return digest

    return ctx.once(("security", cluster.pk), build)


def _findings(ctx, cluster, check_id: str, message: str) -> Iterator[Finding]:
    for subject, namespace, what in template_digest(ctx, cluster).get(check_id, []):
        shown = ", ".join(what[:MAX_NAMES]) + (" …" if len(what) > MAX_NAMES else "")
        yield Finding(
            subject=subject,
            namespace=namespace,
            message=D(message, workload=subject, what=shown),
            facts={"items": what[:MAX_NAMES]},
        )


def _register(check_id, severity, title, why, fix, message):
    @check(check_id, CLUSTER, severity, title, why, fix)
    def run(ctx, cluster: Cluster) -> Iterator[Finding]:
        return _findings(ctx, cluster, check_id, message)

    return run


_register(
    "security.images.latest",
    Severity.WARNING,
    _("Images carry a version tag"),
    _(
        "An image tagged latest, or with no tag, changes under the same name: a restart may run other code than was "
        "tested, and a rollback cannot go back."
    ),
    _("Tag images with their version (app:1.4.2) or pin them by digest, and deploy by changing the tag."),
    N_("%(workload)s runs images without a version tag: %(what)s."),
)
_register(
    "security.images.unpinned",
    Severity.INFO,
    _("Images are pinned by digest"),
    _(
        "A tag can be pushed again with other content; only a digest (@sha256:…) names exactly the image that was "
        "scanned and approved."
    ),
    _("Deploy images by digest (registry/app@sha256:…), as the CI pipeline that built them records it."),
    N_("%(workload)s runs images not pinned by digest: %(what)s."),
)
_register(
    "security.containers.privileged",
    Severity.CRITICAL,
    _("No container runs privileged"),
    _(
        "A privileged container has every device and capability of its host: whoever controls it controls the node "
        "and the pods on it."
    ),
    _("Remove privileged: true; grant the one capability the container needs, or move the work to the host."),
    N_("%(workload)s runs privileged containers: %(what)s."),
)
_register(
    "security.containers.root",
    Severity.WARNING,
    _("Containers do not run as root"),
    _(
        "A process running as root in a container is root on the host if it escapes, and may change files the image "
        "should not let it change."
    ),
    _("Set securityContext.runAsNonRoot: true and a runAsUser above 0, and build the image with a USER."),
    N_("%(workload)s may run containers as root: %(what)s."),
)
_register(
    "security.containers.privilege_escalation",
    Severity.WARNING,
    _("Containers cannot gain privileges"),
    _(
        "Unless allowPrivilegeEscalation is false, a process may gain more privileges than its parent (setuid "
        "binaries), the first step of most container escapes."
    ),
    _("Set securityContext.allowPrivilegeEscalation: false on each container."),
    N_("%(workload)s lets containers gain privileges: %(what)s."),
)
_register(
    "security.containers.capabilities",
    Severity.CRITICAL,
    _("No container adds dangerous capabilities"),
    _(
        "Capabilities such as SYS_ADMIN or NET_ADMIN give a container most of root's power over the host's kernel "
        "and network."
    ),
    _("Drop ALL capabilities and add back only the narrow one the process needs (NET_BIND_SERVICE, say)."),
    N_("%(workload)s adds dangerous capabilities: %(what)s."),
)
_register(
    "security.containers.writable_root",
    Severity.INFO,
    _("Container file systems are read-only"),
    _("A writable root file system lets an intruder change the application's own files and leave tools behind."),
    _("Set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where the app must write."),
    N_("%(workload)s has containers with a writable root file system: %(what)s."),
)
_register(
    "security.pods.host_path",
    Severity.WARNING,
    _("Pods do not mount host paths"),
    _(
        "A hostPath volume reaches into the node's file system: the pod can read other pods' data or the node's "
        "credentials, and is tied to one node."
    ),
    _("Use a PersistentVolumeClaim, a ConfigMap or an emptyDir instead; keep hostPath for node agents only."),
    N_("%(workload)s mounts host paths: %(what)s."),
)
_register(
    "security.pods.host_namespaces",
    Severity.CRITICAL,
    _("Pods do not share the host's network or processes"),
    _(
        "hostNetwork, hostPID and hostIPC put the pod in the node's own namespaces: it sees the node's traffic and "
        "processes and bypasses network policies."
    ),
    _("Remove hostNetwork, hostPID and hostIPC; expose the service through a Service and a route instead."),
    N_("%(workload)s shares the host's namespaces: %(what)s."),
)
