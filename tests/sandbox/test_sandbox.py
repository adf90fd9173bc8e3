"""The sandbox is a real Kubernetes control plane: these tests prove it.

Run: python -m pytest tests/sandbox -p tests.plugins.sandbox
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.sandbox


def wait_until(what, probe, timeout=90.0, interval=0.5):
    """Poll `probe` until it returns a truthy value; fail with its last value."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = probe()
    assert value, f"timed out after {timeout}s waiting for {what}"
    return value


@pytest.fixture
def pod_reader(sandbox, namespace):
    """ServiceAccount `reader` allowed to get/list pods in `namespace`, and nothing else."""
    core = client.CoreV1Api(sandbox.api_client)
    rbac = client.RbacAuthorizationV1Api(sandbox.api_client)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader-pod-reader"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
        ),
    )
    return f"system:serviceaccount:{namespace}:reader"


def self_access(api_client, namespace, verb, resource):
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb=verb, resource=resource)
        )
    )
    return client.AuthorizationV1Api(api_client).create_self_subject_access_review(review).status


def test_rbac_denies_what_a_service_account_was_not_granted(sandbox, namespace, pod_reader):
    token = sandbox.service_account_token(namespace, "reader")
    sa_client = sandbox.client_for_token(token)

    whoami = client.AuthenticationV1Api(sa_client).create_self_subject_review(client.V1SelfSubjectReview())
    assert whoami.status.user_info.username == pod_reader

    assert self_access(sa_client, namespace, "list", "pods").allowed is True
    denied = self_access(sa_client, namespace, "list", "secrets")
    assert denied.allowed is False
    assert self_access(sa_client, "default", "list", "pods").allowed is False

    pods = client.CoreV1Api(sa_client).list_namespaced_pod(namespace)
    assert pods.items == []
    with pytest.raises(ApiException) as forbidden:
        client.CoreV1Api(sa_client).list_namespaced_secret(namespace)
    assert forbidden.value.status == 403
    assert f'User "{pod_reader}" cannot list resource "secrets"' in json.loads(forbidden.value.body)["message"]


def test_impersonation_works_for_admin_and_is_refused_for_a_service_account(sandbox, namespace, pod_reader):
    as_reader = sandbox.new_admin_client(headers={"Impersonate-User": pod_reader})
    whoami = client.AuthenticationV1Api(as_reader).create_self_subject_review(client.V1SelfSubjectReview())
    assert whoami.status.user_info.username == pod_reader
    assert client.CoreV1Api(as_reader).list_namespaced_pod(namespace).items == []
    with pytest.raises(ApiException) as denied_as_reader:
        client.CoreV1Api(as_reader).list_namespaced_secret(namespace)
    assert denied_as_reader.value.status == 403

    token = sandbox.service_account_token(namespace, "reader")
    escalate = sandbox.client_for_token(token, headers={"Impersonate-User": "kubemate-admin"})
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(escalate).list_namespaced_pod(namespace)
    assert refused.value.status == 403
    assert "cannot impersonate" in json.loads(refused.value.body)["message"]


def test_deployment_rolls_out_to_running_pods_on_kwok_nodes(sandbox, namespace):
    apps = client.AppsV1Api(sandbox.api_client)
    core = client.CoreV1Api(sandbox.api_client)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                replicas=3,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="web", image="registry.example.com/web:1.0")]
                    ),
                ),
            ),
        ),
    )

    def rolled_out():
        d = apps.read_namespaced_deployment_status("web", namespace)
        return d.status.ready_replicas == 3 and d.status.updated_replicas == 3 and d

    deployment = wait_until("deployment web to roll out", rolled_out)
    assert deployment.status.available_replicas == 3

    replica_sets = apps.list_namespaced_replica_set(namespace).items
    assert [rs.metadata.owner_references[0].name for rs in replica_sets] == ["web"]

    fake_nodes = {
        n.metadata.name for n in core.list_node().items if n.metadata.annotations.get("kwok.x-k8s.io/node") == "fake"
    }
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    assert {p.status.phase for p in pods} == {"Running"}
    assert {p.spec.node_name for p in pods} <= fake_nodes
    assert all(p.status.pod_ip.startswith("10.244.") for p in pods)
    assert {p.metadata.owner_references[0].name for p in pods} == {replica_sets[0].metadata.name}


def test_job_completes(sandbox, namespace):
    batch = client.BatchV1Api(sandbox.api_client)
    core = client.CoreV1Api(sandbox.api_client)
    batch.create_namespaced_job(
        namespace,
        client.V1Job(
            metadata=client.V1ObjectMeta(name="once"),
            spec=client.V1JobSpec(
                completions=2,
                parallelism=1,
                template=client.V1PodTemplateSpec(
                    spec=client.V1PodSpec(
                        restart_policy="Never",
                        containers=[client.V1Container(name="task", image="registry.example.com/task:1.0")],
                    )
                ),
            ),
        ),
    )

    def completed():
        job = batch.read_namespaced_job_status("once", namespace)
        return (job.status.succeeded or 0) == 2 and job

    job = wait_until("job once to complete", completed)
    conditions = {c.type: c.status for c in job.status.conditions}
    assert conditions["Complete"] == "True"
    assert job.status.completion_time is not None
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=once").items
    assert [p.status.phase for p in pods] == ["Succeeded", "Succeeded"]


def test_crd_and_custom_objects_are_validated_and_stored(sandbox, namespace):
    ext = client.ApiextensionsV1Api(sandbox.api_client)
    custom = client.CustomObjectsApi(sandbox.api_client)
    group = f"t{uuid.uuid4().hex[:8]}.kubemate.dev"
    crd_name = f"widgets.{group}"
    ext.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": crd_name},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "required": ["size"],
                                        "properties": {"size": {"type": "integer", "minimum": 1}},
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
    )

    def established():
        crd = ext.read_custom_resource_definition(crd_name)
        return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

    wait_until("CRD established", established)

    def create(name, size):
        return custom.create_namespaced_custom_object(
            group,
            "v1",
            namespace,
            "widgets",
            {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"size": size}},
        )

    created = wait_until("custom resource endpoint served", lambda: _try(lambda: create("small", 2)))
    assert created["metadata"]["uid"]
    patched = custom.patch_namespaced_custom_object(group, "v1", namespace, "widgets", "small", {"spec": {"size": 5}})
    assert patched["spec"]["size"] == 5
    listed = custom.list_namespaced_custom_object(group, "v1", namespace, "widgets")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["small"]

    with pytest.raises(ApiException) as invalid:
        create("broken", 0)
    assert invalid.value.status == 422
    assert "spec.size" in invalid.value.body

    ext.delete_custom_resource_definition(crd_name)


def _try(fn):
    try:
        return fn()
    except ApiException as e:
        assert e.status == 404, e.body  # only "not served yet" is expected while waiting
        return None


def test_watch_receives_events_and_stale_resource_version_gets_410_gone(sandbox, namespace):
    core = client.CoreV1Api(sandbox.api_client)

    start_rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched"), data={"a": "1"})
    )
    stream = watch.Watch().stream(
        core.list_namespaced_config_map, namespace, resource_version=start_rv, timeout_seconds=30
    )
    # The controller manager publishes kube-root-ca.crt into every new namespace on its own schedule, so its
    # ADDED event may come before ours: the watch must deliver ours, whatever came first.
    first = next(event for event in stream if event["object"].metadata.name != "kube-root-ca.crt")
    stream.close()
    assert (first["type"], first["object"].metadata.name, first["object"].data) == ("ADDED", "watched", {"a": "1"})

    # Events are not served from the apiserver's watch cache (kube-apiserver's default
    # watch-cache size for events is 0), so a watch on them reads etcd's history.
    def event(name):
        return client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=name),
            involved_object=client.V1ObjectReference(kind="ConfigMap", name="watched", namespace=namespace),
            reason="Test",
            message=name,
            type="Normal",
        )

    old = core.create_namespaced_event(namespace, event("first"))
    stale_rv = old.metadata.resource_version
    core.create_namespaced_event(namespace, event("second"))
    core.create_namespaced_event(namespace, event("third"))

    history = watch.Watch().stream(core.list_namespaced_event, namespace, resource_version=stale_rv, timeout_seconds=30)
    replayed = [next(history)["object"].message, next(history)["object"].message]
    history.close()
    assert replayed == ["second", "third"]

    revision = sandbox.etcd_revision()
    assert revision > int(stale_rv)
    sandbox.etcd("/v3/kv/compaction", {"revision": revision, "physical": True})

    with pytest.raises(ApiException) as gone:
        list(watch.Watch().stream(core.list_namespaced_event, namespace, resource_version=stale_rv, timeout_seconds=10))
    assert gone.value.status == 410
    assert gone.value.reason == "Expired: The resourceVersion for the provided watch is too old."


def test_pod_logs_and_resource_metrics_are_served_through_the_apiserver(sandbox, namespace):
    core = client.CoreV1Api(sandbox.api_client)
    custom = client.CustomObjectsApi(sandbox.api_client)
    core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(
                name="busy",
                annotations={"kwok.x-k8s.io/usage-cpu": "250m", "kwok.x-k8s.io/usage-memory": "300Mi"},
            ),
            spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="registry.example.com/busy:1")]),
        ),
    )
    wait_until("pod busy Running", lambda: core.read_namespaced_pod_status("busy", namespace).status.phase == "Running")

    # apiserver -> kwok's kubelet endpoint (TLS verified against the sandbox CA) -> log file
    log = core.read_namespaced_pod_log("busy", namespace, container="main")
    assert "log emulated by the kubemate sandbox" in log

    # metrics-server (aggregated API) scrapes kwok's per-node resource metrics
    def pod_metrics():
        try:
            return custom.get_namespaced_custom_object("metrics.k8s.io", "v1beta1", namespace, "pods", "busy")
        except ApiException as e:
            assert e.status == 404, e.body  # not scraped yet
            return None

    metrics = wait_until("metrics for pod busy", pod_metrics, timeout=120, interval=0.5)
    usage = metrics["containers"][0]["usage"]
    assert metrics["containers"][0]["name"] == "main"
    assert usage["memory"] == "300Mi"
    assert usage["cpu"].endswith("n") and 200_000_000 <= int(usage["cpu"][:-1]) <= 300_000_000
