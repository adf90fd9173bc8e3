"""The one door to Kubernetes: the kind table, the path builder's name checks, and the Client against the sandbox."""

import threading

import pytest
import yaml

from apps.clusters import kinds, kube
from apps.clusters.models import Cluster


def test_paths_of_core_grouped_namespaced_and_cluster_scoped_kinds():
    assert kinds.path("Pod", "team-a", "web-1", sub="log") == "/api/v1/namespaces/team-a/pods/web-1/log"
    assert kinds.path("Deployment", "team-a") == "/apis/apps/v1/namespaces/team-a/deployments"
    assert kinds.path("Deployment") == "/apis/apps/v1/deployments"
    assert kinds.path("Node", "ignored", "node-1") == "/api/v1/nodes/node-1"
    assert kinds.path("ClusterRole", None, "kubemate:developer") == (
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/kubemate:developer"
    )
    assert kinds.BY_KIND["HorizontalPodAutoscaler"].list_path == "/apis/autoscaling/v2/horizontalpodautoscalers"


@pytest.mark.parametrize(
    "name",
    ["..", ".", "a/b", "web?watch=1", "web#x", "web%2f", " web", "-web", "a" * 254, "web\n", "a..b"],
)
def test_names_that_could_steer_a_request_elsewhere_are_refused(name):
    with pytest.raises(kinds.InvalidName):
        kinds.path("Pod", "team-a", name)


@pytest.mark.parametrize("namespace", ["Team-A", "a/b", "..", "a_b", "a" * 64])
def test_namespaces_must_be_dns_labels(namespace):
    with pytest.raises(kinds.InvalidName):
        kinds.path("Pod", namespace, "web")


def test_subresources_need_an_object_and_a_plain_word():
    with pytest.raises(kinds.InvalidName):
        kinds.path("Pod", "team-a", None, sub="log")
    with pytest.raises(kinds.InvalidName):
        kinds.path("Pod", "team-a", "web", sub="log/../../secrets")


def test_one_table_names_each_inventory_kind_once_with_the_capability_that_reads_it():
    plurals = [k.plural for k in kinds.KINDS]
    assert len(plurals) == len(set(plurals)) == 22
    assert all(k.synced and k.capability and k.label and k.label_plural for k in kinds.KINDS)
    assert kinds.BY_KIND["Secret"].capability == "secrets.view_metadata"
    assert kinds.BY_KIND["Node"].capability == "nodes.view"
    assert kinds.BY_KIND["Deployment"].capability == "workloads.view"
    assert len(kinds.BY_KIND) == len(kinds.TABLE) > len(kinds.KINDS)


@pytest.mark.django_db
def test_an_invalid_name_is_refused_before_anything_is_sent(tmp_path):
    """The path is checked before the connection: a cluster that does not exist answers Invalid, not Unreachable."""
    cluster = Cluster(name="nowhere", api_server="https://127.0.0.1:9")
    cluster.set_kubeconfig(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    with kube.client(cluster) as k:
        with pytest.raises(kube.Invalid) as refused:
            k.get("Pod", "team-a", "../../secrets")
        assert "is not a valid Kubernetes object name" in str(refused.value)
        with pytest.raises(kube.ClusterUnreachable) as unreachable:
            k.get("Pod", "team-a", "web")
    assert unreachable.value.reason == "refused"


@pytest.mark.django_db
def test_credentials_that_cannot_be_loaded_are_a_sentence():
    cluster = Cluster(name="broken")
    cluster.set_kubeconfig("apiVersion: v1\nkind: Config\nclusters: []\n")
    with pytest.raises(kube.KubeError) as refused, kube.client(cluster):
        pass
    assert refused.value.reason == "credentials"
    assert str(refused.value).startswith("The credentials cannot be loaded")


@pytest.mark.sandbox
@pytest.mark.django_db
def test_the_client_reads_writes_and_watches(sandbox):
    """With administrator credentials (as the registry uses them once): get, apply, patch, list, delete, watch."""
    admin = Cluster(name="sandbox-admin")
    admin.set_kubeconfig(sandbox.kubeconfig.read_text())
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "door-test", "namespace": "default"},
        "data": {"a": "1"},
    }
    with kube.client(admin) as k:
        k.delete("ConfigMap", "default", "door-test")
        assert k.read("ConfigMap", "default", "door-test") is None
        with pytest.raises(kube.NotFound):
            k.get("ConfigMap", "default", "door-test")
        applied = k.apply(configmap)
        assert applied["data"] == {"a": "1"}
        start = applied["metadata"]["resourceVersion"]

        seen = []

        def watch():
            with kube.client(admin) as w:
                for event in w.watch("ConfigMap", start):
                    name = (event.get("object") or {}).get("metadata", {}).get("name")
                    if name == "door-test":
                        seen.append(event["type"])
                    if "DELETED" in seen:
                        return

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        patched = k.patch("ConfigMap", "default", "door-test", {"data": {"a": "2"}})
        assert patched["data"] == {"a": "2"}
        assert [c["metadata"]["name"] for c in k.list("ConfigMap", "default")].count("door-test") == 1
        assert k.delete("ConfigMap", "default", "door-test") is True
        assert k.delete("ConfigMap", "default", "door-test") is False
        thread.join(20)
    assert seen == ["MODIFIED", "DELETED"]


@pytest.mark.sandbox
@pytest.mark.django_db
def test_acting_as_a_user_the_cluster_decides(sandbox, registered_cluster, operator):
    """A user with no bindings is projected nowhere: as that user the cluster refuses and the review says no."""
    with kube.client(registered_cluster, as_user=operator) as k:
        with pytest.raises(kube.Forbidden) as refused:
            k.list("Pod", "default")
        assert not k.may("list", "", "pods", namespace="default")
    assert refused.value.status == 403
    with kube.client(registered_cluster) as k:
        assert k.may("list", "", "pods")
