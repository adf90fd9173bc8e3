"""The Kubernetes objects of field encryption, written with Kubemate's own identity (through clusters.kube).

The namespace and Kubemate's rights in it come with Kubemate's identity (deploy/kubernetes/kubemate-rbac.yaml).
Each project's key versions live in the Secret ``kubemate-fieldkey-<project>`` of the namespace
``kubemate-fieldkeys``, which no project role reaches; a Role there grants ``get`` on exactly that Secret and a
RoleBinding gives it to the apps' ServiceAccounts (subjects in their own namespaces). So whoever may read
Secrets in the app's namespace reads only ciphertext; the key is read by the app's ServiceAccount (and
cluster administrators).
"""

from __future__ import annotations

import base64

from apps.clusters import kube

KEY_NAMESPACE = "kubemate-fieldkeys"
LABELS = {"app.kubernetes.io/managed-by": "kubemate"}


def key_secret_name(project) -> str:
    return f"kubemate-fieldkey-{project.slug}"[:253]


def publish(k: kube.Client, project, keys: dict[int, bytes], readers: list[tuple[str, str]]) -> None:
    """Write the key Secret with exactly ``keys`` and let exactly ``readers`` (namespace, ServiceAccount) get it.

    Server-side apply by Kubemate's one field manager: a key version or a reader left out is removed.
    """
    name = key_secret_name(project)
    meta = {"namespace": KEY_NAMESPACE, "labels": LABELS}
    k.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, **meta},
            "type": "Opaque",
            "data": {f"v{version}": base64.b64encode(key).decode() for version, key in sorted(keys.items())},
        }
    )
    rules = [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [name], "verbs": ["get"]}]
    rbac = "rbac.authorization.k8s.io/v1"
    k.apply({"apiVersion": rbac, "kind": "Role", "metadata": {"name": name, **meta}, "rules": rules})
    subjects = [{"kind": "ServiceAccount", "namespace": ns, "name": sa} for ns, sa in sorted(set(readers))]
    binding = {
        "apiVersion": rbac,
        "kind": "RoleBinding",
        "metadata": {"name": name, **meta},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": subjects,
    }
    k.apply(binding)
