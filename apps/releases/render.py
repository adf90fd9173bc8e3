"""Pure manifest rendering: a release's spec in, Kubernetes objects out. No database, no cluster.

The spec (Release.spec) holds::

    image, replicas, ports [int], env [{name, value} | {name, configmap, key} | {name, secret, key}],
    secret_env {NAME: token}, cluster_encryption {enabled, service_account},
    resources {cpu_request, cpu_limit, memory_request, memory_limit},
    readiness / liveness {type: none|http|tcp, path, port, initial_delay, period},
    service {enabled, port}, route {enabled, hostname, path, gateway_namespace, gateway_name},
    autoscaling {enabled, min, max, cpu_percent, memory_percent}, node_selector {key: value},
    progress_deadline_seconds

and, optional (absent in older specs, which render exactly as before)::

    extra_resources {resource name: count}   e.g. {"nvidia.com/gpu": 1}, in requests and limits alike
    tolerations [{key, operator: Exists|Equal, value, effect}]
    volume {claim, create, size, storage_class, access_mode, mount_path}
        a PersistentVolumeClaim mounted at mount_path; with ``create`` the release renders (and owns) the claim;
        a ReadWriteOnce claim makes the Deployment replace its pods (strategy Recreate): two pods on different
        nodes cannot mount it at once
    command [str], args [str]

Sensitive values arrive here already decrypted (``secret_values``) or masked for a preview.
"""

from __future__ import annotations

import copy
import re

import yaml

MANAGED_BY = "kubemate"
RELEASE_LABEL = "kubemate.io/release"
CHECKSUM_ANNOTATION = "kubemate.io/env-checksum"
CONTAINER = "app"
MASK = "********"

DEFAULT_SPEC: dict = {
    "image": "",
    "replicas": 2,
    "ports": [8080],
    "env": [],
    "secret_env": {},
    "cluster_encryption": {"enabled": False, "service_account": "default"},
    "resources": {"cpu_request": "100m", "cpu_limit": "500m", "memory_request": "128Mi", "memory_limit": "256Mi"},
    "readiness": {"type": "http", "path": "/", "port": 8080, "initial_delay": 5, "period": 10},
    "liveness": {"type": "tcp", "path": "", "port": 8080, "initial_delay": 15, "period": 20},
    "service": {"enabled": True, "port": 80},
    "route": {"enabled": False, "hostname": "", "path": "/", "gateway_namespace": "", "gateway_name": ""},
    "autoscaling": {"enabled": False, "min": 2, "max": 5, "cpu_percent": 70, "memory_percent": None},
    "node_selector": {},
    "progress_deadline_seconds": 600,
}


def default_spec() -> dict:
    return copy.deepcopy(DEFAULT_SPEC)


def labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": MANAGED_BY, RELEASE_LABEL: name}


def selector(name: str) -> dict[str, str]:
    # Immutable once the Deployment exists: keep it to the two labels that never change.
    return {"app.kubernetes.io/name": name, RELEASE_LABEL: name}


def secret_name(name: str) -> str:
    return f"{name}-env"


def _meta(name: str, namespace: str, object_name: str | None = None) -> dict:
    return {"name": object_name or name, "namespace": namespace, "labels": labels(name)}


def _probe(probe: dict) -> dict | None:
    kind = (probe or {}).get("type") or "none"
    if kind == "none":
        return None
    if kind == "http":
        action = {"httpGet": {"path": probe.get("path") or "/", "port": int(probe["port"])}}
    else:
        action = {"tcpSocket": {"port": int(probe["port"])}}
    return {
        **action,
        "initialDelaySeconds": int(probe.get("initial_delay") or 0),
        "periodSeconds": int(probe.get("period") or 10),
    }


def _env(spec: dict, name: str) -> list[dict]:
    env = []
    for item in spec.get("env") or []:
        if "configmap" in item:
            env.append(
                {
                    "name": item["name"],
                    "valueFrom": {"configMapKeyRef": {"name": item["configmap"], "key": item["key"]}},
                }
            )
        elif "secret" in item:
            env.append(
                {"name": item["name"], "valueFrom": {"secretKeyRef": {"name": item["secret"], "key": item["key"]}}}
            )
        else:
            env.append({"name": item["name"], "value": str(item.get("value", ""))})
    for key in sorted(spec.get("secret_env") or {}):
        if encrypted_in_cluster(spec):  # the Secret holds envelopes: the app reads the decrypted file
            env.append({"name": f"{key}_FILE", "value": f"{DECRYPTED_DIR}/{key}"})
        else:
            env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": secret_name(name), "key": key}}})
    return env


# Field encryption in the cluster (apps/fieldcrypt): the release's Secret holds envelopes; an init container
# (kubemate-decrypt, deploy/decrypt) running as the release's ServiceAccount reads the project's key and writes
# each value to an in-memory volume the app container mounts read-only.
DECRYPT_CONTAINER = "kubemate-decrypt"
DECRYPTED_VOLUME = "kubemate-decrypted"
DECRYPTED_DIR = "/kubemate/decrypted"
DATA_VOLUME = "data"
SINGLE_NODE_MODES = ("ReadWriteOnce", "ReadWriteOncePod")


def encrypted_in_cluster(spec: dict) -> bool:
    return bool((spec.get("cluster_encryption") or {}).get("enabled")) and bool(spec.get("secret_env"))


def _decrypt_step(name: str, spec: dict, image: str, key_secret: str) -> dict:
    env = [{"name": "KUBEMATE_KEY_SECRET", "value": key_secret}]
    env += [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": secret_name(name), "key": key}}}
        for key in sorted(spec.get("secret_env") or {})
    ]
    return {
        "name": DECRYPT_CONTAINER,
        "image": image,
        "args": ["files", "--out", DECRYPTED_DIR],
        "env": env,
        "volumeMounts": [{"name": DECRYPTED_VOLUME, "mountPath": DECRYPTED_DIR}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
    }


def _resources(spec: dict) -> dict:
    values = spec.get("resources") or {}
    requests = {k: values[f"{k}_request"] for k in ("cpu", "memory") if values.get(f"{k}_request")}
    limits = {k: values[f"{k}_limit"] for k in ("cpu", "memory") if values.get(f"{k}_limit")}
    # Extended resources (GPUs) cannot be overcommitted: Kubernetes wants the request equal to the limit.
    for resource, count in sorted((spec.get("extra_resources") or {}).items()):
        if count:
            requests[resource] = limits[resource] = str(int(count))
    return {**({"requests": requests} if requests else {}), **({"limits": limits} if limits else {})}


def volume_of(spec: dict) -> dict | None:
    """The spec's volume when it names a claim and where to mount it."""
    volume = spec.get("volume") or {}
    return volume if volume.get("claim") and volume.get("mount_path") else None


def claim_name(spec: dict) -> str | None:
    """The PersistentVolumeClaim the release creates and owns, if any (not one it only mounts)."""
    volume = volume_of(spec)
    return volume["claim"] if volume and volume.get("create") else None


def recreates(spec: dict) -> bool:
    """Pods are replaced, not rolled: the old pod holds a single-node volume the new one needs."""
    volume = volume_of(spec)
    return bool(volume) and (volume.get("access_mode") or "ReadWriteOnce") in SINGLE_NODE_MODES


def _toleration(item: dict) -> dict:
    toleration = {"key": item.get("key", ""), "operator": item.get("operator") or "Exists"}
    if toleration["operator"] == "Equal":
        toleration["value"] = item.get("value", "")
    if item.get("effect"):
        toleration["effect"] = item["effect"]
    if not toleration["key"]:
        del toleration["key"]  # an empty key with Exists tolerates every taint
    return toleration


def deployment(
    name: str, namespace: str, spec: dict, *, checksum: str = "", decrypt_image: str = "", key_secret: str = ""
) -> dict:
    container: dict = {"name": CONTAINER, "image": spec["image"]}
    if spec.get("command"):
        container["command"] = [str(part) for part in spec["command"]]
    if spec.get("args"):
        container["args"] = [str(part) for part in spec["args"]]
    ports = [{"name": f"port-{p}", "containerPort": int(p), "protocol": "TCP"} for p in spec.get("ports") or []]
    if ports:
        container["ports"] = ports
    env = _env(spec, name)
    if env:
        container["env"] = env
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    for key, field in (("readiness", "readinessProbe"), ("liveness", "livenessProbe")):
        probe = _probe(spec.get(key) or {})
        if probe:
            container[field] = probe
    pod_spec: dict = {"containers": [container]}
    if encrypted_in_cluster(spec):
        mount = {"name": DECRYPTED_VOLUME, "mountPath": DECRYPTED_DIR, "readOnly": True}
        container["volumeMounts"] = [mount]
        pod_spec["initContainers"] = [_decrypt_step(name, spec, decrypt_image, key_secret)]
        pod_spec["volumes"] = [{"name": DECRYPTED_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "4Mi"}}]
        pod_spec["serviceAccountName"] = spec["cluster_encryption"].get("service_account") or "default"
    volume = volume_of(spec)
    if volume:
        container.setdefault("volumeMounts", []).append({"name": DATA_VOLUME, "mountPath": volume["mount_path"]})
        claim = {"name": DATA_VOLUME, "persistentVolumeClaim": {"claimName": volume["claim"]}}
        pod_spec.setdefault("volumes", []).append(claim)
    if spec.get("node_selector"):
        pod_spec["nodeSelector"] = dict(spec["node_selector"])
    if spec.get("tolerations"):
        pod_spec["tolerations"] = [_toleration(item) for item in spec["tolerations"]]
    template_meta: dict = {"labels": labels(name)}
    if checksum:
        template_meta["annotations"] = {CHECKSUM_ANNOTATION: checksum}
    body: dict = {
        "selector": {"matchLabels": selector(name)},
        "progressDeadlineSeconds": int(spec.get("progress_deadline_seconds") or 600),
        "template": {"metadata": template_meta, "spec": pod_spec},
    }
    if recreates(spec):
        body["strategy"] = {"type": "Recreate"}
    # With an autoscaler the replica count belongs to it; applying one here would fight it.
    if not (spec.get("autoscaling") or {}).get("enabled"):
        body = {"replicas": int(spec.get("replicas") or 1), **body}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, namespace), "spec": body}


def volume_claim(name: str, namespace: str, spec: dict) -> dict:
    """The PersistentVolumeClaim a release creates (``volume.create``); the cluster's default class when none."""
    volume = spec["volume"]
    body: dict = {
        "accessModes": [volume.get("access_mode") or "ReadWriteOnce"],
        "resources": {"requests": {"storage": volume["size"]}},
    }
    if volume.get("storage_class"):
        body["storageClassName"] = volume["storage_class"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(name, namespace, volume["claim"]),
        "spec": body,
    }


def service(name: str, namespace: str, spec: dict) -> dict:
    ports = spec.get("ports") or [80]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, namespace),
        "spec": {
            "selector": selector(name),
            "ports": [
                {
                    "name": "http",
                    "port": int(spec["service"]["port"]),
                    "targetPort": int(ports[0]),
                    "protocol": "TCP",
                }
            ],
        },
    }


def secret(name: str, namespace: str, values: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(name, namespace, secret_name(name)),
        "type": "Opaque",
        "stringData": {key: values[key] for key in sorted(values)},
    }


def http_route(name: str, namespace: str, spec: dict) -> dict:
    route = spec["route"]
    parent = {"name": route["gateway_name"]}
    if route.get("gateway_namespace"):
        parent = {"namespace": route["gateway_namespace"], **parent}
    body: dict = {
        "parentRefs": [parent],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": route.get("path") or "/"}}],
                "backendRefs": [{"name": name, "port": int(spec["service"]["port"])}],
            }
        ],
    }
    if route.get("hostname"):
        body = {"hostnames": [route["hostname"]], **body}
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta(name, namespace),
        "spec": body,
    }


def autoscaler(name: str, namespace: str, spec: dict) -> dict:
    scaling = spec["autoscaling"]
    metrics = [
        {
            "type": "Resource",
            "resource": {"name": res, "target": {"type": "Utilization", "averageUtilization": int(pct)}},
        }
        for res, pct in (("cpu", scaling.get("cpu_percent")), ("memory", scaling.get("memory_percent")))
        if pct
    ]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(name, namespace),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": int(scaling["min"]),
            "maxReplicas": int(scaling["max"]),
            "metrics": metrics,
        },
    }


def manifests(
    name: str,
    namespace: str,
    spec: dict,
    secret_values: dict[str, str],
    *,
    checksum: str = "",
    decrypt_image: str = "",
    key_secret: str = "",
) -> list[dict]:
    """Every object of the release, in apply order: Secret, PersistentVolumeClaim, Deployment, Service, HTTPRoute,
    HPA.

    With encryption in the cluster, ``secret_values`` are the envelopes (or the mask for a preview)."""
    objects = []
    if secret_values:
        objects.append(secret(name, namespace, secret_values))
    if claim_name(spec):
        objects.append(volume_claim(name, namespace, spec))
    objects.append(
        deployment(name, namespace, spec, checksum=checksum, decrypt_image=decrypt_image, key_secret=key_secret)
    )
    if (spec.get("service") or {}).get("enabled"):
        objects.append(service(name, namespace, spec))
        if (spec.get("route") or {}).get("enabled"):
            objects.append(http_route(name, namespace, spec))
    if (spec.get("autoscaling") or {}).get("enabled"):
        objects.append(autoscaler(name, namespace, spec))
    return objects


def masked(spec: dict) -> dict[str, str]:
    """Stand-in values for the sensitive variables, for previews and diffs."""
    return dict.fromkeys(spec.get("secret_env") or {}, MASK)


def to_yaml(objects: list[dict]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False, allow_unicode=True)


# --- canary -------------------------------------------------------------------------------------------------
# The canary runs as Deployment and Service "<name>-canary". Its pods carry the release label (so the cluster pages
# link them to the release) but another app.kubernetes.io/name, so neither the stable Service nor the stable
# Deployment's selector ever picks them up.
CANARY_SUFFIX = "-canary"
TRACK_LABEL = "kubemate.io/track"
COOKIE_HEADER = "Cookie"


def canary_name(name: str) -> str:
    return f"{name}{CANARY_SUFFIX}"


def canary_labels(name: str) -> dict[str, str]:
    return {**labels(name), "app.kubernetes.io/name": canary_name(name), TRACK_LABEL: "canary"}


def canary_selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": canary_name(name), RELEASE_LABEL: name}


def canary_deployment(
    name: str,
    namespace: str,
    spec: dict,
    replicas: int,
    *,
    checksum: str = "",
    decrypt_image: str = "",
    key_secret: str = "",
) -> dict:
    """The canary's Deployment: ``spec``'s pods (same Secret, same probes), its own replicas and no autoscaler."""
    body = deployment(
        name, namespace, {**spec, "replicas": replicas, "autoscaling": {"enabled": False}}, checksum=checksum,
        decrypt_image=decrypt_image, key_secret=key_secret,
    )  # fmt: skip
    body["metadata"] = {**body["metadata"], "name": canary_name(name), "labels": canary_labels(name)}
    body["spec"]["selector"] = {"matchLabels": canary_selector(name)}
    body["spec"]["template"]["metadata"]["labels"] = canary_labels(name)
    return body


def canary_service(name: str, namespace: str, spec: dict) -> dict:
    body = service(name, namespace, spec)
    body["metadata"] = {**body["metadata"], "name": canary_name(name), "labels": canary_labels(name)}
    body["spec"]["selector"] = canary_selector(name)
    return body


def cookie_pattern(cookie: str, value: str) -> str:
    """A regular expression for a Cookie header carrying ``cookie=value`` among other cookies."""
    return rf"(^|.*;\s*){re.escape(cookie)}={re.escape(value)}(;.*|$)"


def split_route(name: str, namespace: str, spec: dict, *, mode: str, weight: int, match: tuple[str, str]) -> dict:
    """The release's HTTPRoute with a canary: weights 100-w / w (grey), or a first rule that matches a header or
    cookie and goes to the canary only, before the rule that sends everything else to the stable version."""
    body = http_route(name, namespace, spec)
    rule = body["spec"]["rules"][0]
    port = int(spec["service"]["port"])
    stable = {"name": name, "port": port}
    canary = {"name": canary_name(name), "port": port}
    if mode == "weight":
        rule["backendRefs"] = [{**stable, "weight": 100 - weight}, {**canary, "weight": weight}]
        return body
    path = rule["matches"][0]["path"]
    header_name, header_value = match
    if mode == "cookie":
        header = {"type": "RegularExpression", "name": COOKIE_HEADER, "value": cookie_pattern(*match)}
    else:
        header = {"type": "Exact", "name": header_name, "value": header_value}
    body["spec"]["rules"] = [
        {"matches": [{"path": path, "headers": [header]}], "backendRefs": [canary]},
        {"matches": [{"path": path}], "backendRefs": [stable]},
    ]
    return body


def route_split(route: dict | None) -> list[tuple[str, int]]:
    """(Service, weight) per backend of a live HTTPRoute's last rule, as the cluster holds it (weight 1 when unset)."""
    rules = ((route or {}).get("spec") or {}).get("rules") or []
    if not rules:
        return []
    refs = rules[-1].get("backendRefs") or []
    return [(ref.get("name", ""), int(ref.get("weight", 1))) for ref in refs]


def route_matches(route: dict | None) -> list[tuple[str, str, str, str]]:
    """(header name, match type, value, Service) for each header-matching rule of a live HTTPRoute."""
    out = []
    for rule in ((route or {}).get("spec") or {}).get("rules") or []:
        backends = ", ".join(ref.get("name", "") for ref in rule.get("backendRefs") or [])
        for match in rule.get("matches") or []:
            for header in match.get("headers") or []:
                out.append((header.get("name", ""), header.get("type", "Exact"), header.get("value", ""), backends))
    return out
