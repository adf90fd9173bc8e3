"""What the model server tests share: the form as a browser posts it, and reads of the sandbox as its admin."""

from kubernetes import client as k8s

from apps.ai.servers import spec as server_spec

KEY = "sk-kubemate-test-7f3a9c1e5b"


def server_form(project, namespace: str, name: str, **overrides) -> dict:
    """The model server form as its defaults fill it, for an Ollama server with one GPU and a new 5Gi volume."""
    data = {
        "project": project.pk,
        "namespace": namespace,
        "name": name,
        "kind": "ollama",
        "image": "",
        "models": "qwen2.5:0.5b",
        "gpus": 1,
        "gpu_resource": server_spec.GPU_RESOURCE,
        "node_selector": f"{server_spec.GPU_NODE_LABEL}=true",
        "tolerations": f"{server_spec.GPU_TAINT}:NoSchedule",
        "volume": "new",
        "volume_claim": "",
        "volume_size": "5Gi",
        "storage_class": "",
        "access_mode": "ReadWriteOnce",
        "mount_path": "",
        "cpu_request": "2",
        "cpu_limit": "8",
        "memory_request": "8Gi",
        "memory_limit": "32Gi",
        "port": "",
    }
    data.update(overrides)
    return data


def endpoint_form(**overrides) -> dict:
    data = {"name": "bank-llm", "project": "", "kind": "openai", "base_url": "", "api_key": "", "ca_pem": ""}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def live_deployment(sandbox, namespace: str, name: str):
    return k8s.AppsV1Api(sandbox.api_client).read_namespaced_deployment(name, namespace)


def objects_in(sandbox, namespace: str) -> list[str]:
    """Every Deployment, Service and volume claim in the namespace, as Kind/name."""
    apps, core = k8s.AppsV1Api(sandbox.api_client), k8s.CoreV1Api(sandbox.api_client)
    found = [f"Deployment/{d.metadata.name}" for d in apps.list_namespaced_deployment(namespace).items]
    found += [f"Service/{s.metadata.name}" for s in core.list_namespaced_service(namespace).items]
    found += [
        f"PersistentVolumeClaim/{c.metadata.name}"
        for c in core.list_namespaced_persistent_volume_claim(namespace).items
        if not c.metadata.deletion_timestamp
    ]
    return sorted(found)
