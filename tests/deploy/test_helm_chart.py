"""The Helm chart deploy/helm/kubemate: linted, rendered and read back, checked by the real API, installed.

Helm is the one `deploy/sandbox/build --only helm` builds (v4.3.2 from its Go module). The rendering tests need
no cluster; the dry-run and install tests run against the sandbox (kwok plays the pods; its `pod-complete` stage
finishes Job pods, so the migration hook runs to Succeeded as in a real cluster). Their namespaces enforce the
`restricted` Pod Security Standard, so the apiserver itself refuses a pod that is not locked down.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from base64 import urlsafe_b64encode
from pathlib import Path

import pytest
import yaml

from tests.helpers import free_port, unique

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "kubemate"
SECRET = "kubemate-secrets"
SECRET_KEYS = {
    "SECRET_KEY",
    "KUBEMATE_ENCRYPTION_KEYS",
    "DATABASE_URL",
    "REDIS_URL",
    "EMAIL_HOST_PASSWORD",
    "KUBEMATE_LDAP_BIND_PASSWORD",
    "KUBEMATE_OIDC_CLIENT_SECRET",
    "KUBEMATE_MILVUS_TOKEN",
}


def built_tool(name: str) -> Path:
    """The path `deploy/sandbox/build --print-paths` gives for a tool; the test fails when it is not built."""
    out = subprocess.run(
        [str(REPO / "deploy" / "sandbox" / "build"), "--print-paths"], capture_output=True, text=True, check=True
    ).stdout
    paths = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    path = Path(paths[name])
    if not path.exists():
        pytest.fail(f"{path} is missing: build it with `deploy/sandbox/build --only {name.lower()}`")
    return path


@pytest.fixture(scope="module")
def helm(tmp_path_factory):
    """Run the built helm with its own config, cache and data folders (nothing of the caller's is read)."""
    binary = built_tool("HELM")
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    env.pop("KUBECONFIG", None)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(binary), *args], capture_output=True, text=True, env=env, timeout=400)
        if check:
            assert proc.returncode == 0, f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc

    return run


def sets(values: dict[str, str]) -> list[str]:
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


def render(helm, *, namespace: str = "kubemate", **values: str) -> list[dict]:
    values = {"existingSecret": SECRET, **values}
    out = helm("template", "kubemate", str(CHART), "--namespace", namespace, *sets(values)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod_specs(docs: list[dict]) -> dict[str, dict]:
    return {
        f"{doc['kind']}/{doc['metadata']['name']}": doc["spec"]["template"]["spec"]
        for doc in docs
        if doc["kind"] in {"Deployment", "Job", "StatefulSet", "DaemonSet", "CronJob"}
    }


def env_of(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


# Rendering ----------------------------------------------------------------------------------------------------


def test_the_chart_passes_strict_lint_in_each_shape(helm):
    for values in (
        {"existingSecret": SECRET},
        {"existingSecret": SECRET, "host": "kubemate.bank.example", "route.enabled": "true"},
        {"existingSecret": SECRET, "host": "kubemate.bank.example", "ingress.enabled": "true"},
        {"existingSecret": SECRET, "managedClusterRBAC.enabled": "true", "web.replicas": "1"},
    ):
        out = helm("lint", "--strict", str(CHART), *sets(values)).stdout
        assert "1 chart(s) linted, 0 chart(s) failed" in out


def test_without_a_secret_name_the_chart_refuses_to_render(helm):
    proc = helm("template", "kubemate", str(CHART), check=False)

    assert proc.returncode != 0
    assert "existingSecret is required" in proc.stderr
    assert "the chart never renders secrets" in proc.stderr


def test_the_chart_version_follows_the_console(helm):
    import kubemate

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == kubemate.__version__
    deployment = by_kind(render(helm), "Deployment")["kubemate-web"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        f"registry.local/kubemate/kubemate:{kubemate.__version__}"
    )


def test_rendered_objects_reference_the_secret_and_render_none(helm):
    docs = render(helm)

    kinds = sorted({doc["kind"] for doc in docs})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Job",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    assert not [doc for doc in docs if doc["kind"] == "Secret"]
    config = by_kind(docs, "ConfigMap")["kubemate"]["data"]
    assert not SECRET_KEYS & set(config), "a secret setting is in the ConfigMap"
    for name, spec in pod_specs(docs).items():
        for container in spec["containers"]:
            env = env_of(container)
            for key in ("SECRET_KEY", "KUBEMATE_ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL"):
                assert env[key]["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": key}, (name, key)
            optional = ("EMAIL_HOST_PASSWORD", "KUBEMATE_LDAP_BIND_PASSWORD", "KUBEMATE_OIDC_CLIENT_SECRET")
            for key in (*optional, "KUBEMATE_MILVUS_TOKEN"):
                assert env[key]["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": key, "optional": True}
            assert not [item for item in env.values() if item["name"] in SECRET_KEYS and "value" in item]
            assert "secretRef" not in json.dumps(container.get("envFrom", []))


def test_the_database_and_redis_urls_may_come_from_secrets_of_their_own(helm):
    docs = render(
        helm,
        **{
            "externalDatabase.existingSecret": "pg-app",
            "externalDatabase.existingSecretKey": "uri",
            "externalRedis.existingSecret": "redis-auth",
            "externalRedis.existingSecretKey": "url",
        },
    )

    for spec in pod_specs(docs).values():
        env = env_of(spec["containers"][0])
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "pg-app", "key": "uri"}
        assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "redis-auth", "key": "url"}
        assert env["SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == SECRET


def test_every_pod_is_locked_down(helm):
    docs = render(helm)
    specs = pod_specs(docs)

    assert set(specs) == {"Deployment/kubemate-web", "Deployment/kubemate-worker", "Job/kubemate-migrate"}
    for name, spec in specs.items():
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["enableServiceLinks"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == 10001, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], name
    # The writable paths of the settings are mounted where the ConfigMap points them.
    config = by_kind(docs, "ConfigMap")["kubemate"]["data"]
    for deployment in ("Deployment/kubemate-web", "Deployment/kubemate-worker"):
        mounts = [mount["mountPath"] for mount in specs[deployment]["containers"][0]["volumeMounts"]]
        for setting in ("KUBEMATE_CICD_STORAGE", "KUBEMATE_BACKUP_WORKDIR", "KUBEMATE_AI_DOCUMENTS_DIR"):
            assert any(config[setting].startswith(path + "/") or config[setting] == path for path in mounts), setting
    limits = {name: spec["containers"][0]["resources"]["limits"]["memory"] for name, spec in specs.items()}
    assert limits["Deployment/kubemate-web"] == "256Mi"
    assert limits["Deployment/kubemate-worker"] == "512Mi"
    account = by_kind(docs, "ServiceAccount")["kubemate-app"]
    assert account["automountServiceAccountToken"] is False
    assert specs["Deployment/kubemate-web"]["serviceAccountName"] == "kubemate-app"
    assert not [doc for doc in docs if doc["kind"] in {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}]


def test_the_schema_refuses_weakened_security_and_secrets_in_the_configmap(helm):
    for key, value in (
        ("securityContext.readOnlyRootFilesystem", "false"),
        ("securityContext.allowPrivilegeEscalation", "true"),
        ("podSecurityContext.runAsNonRoot", "false"),
        ("config.env.DATABASE_URL", "postgres://kubemate:pw@db/kubemate"),
        ("config.env.SECRET_KEY", "x"),
        ("web.replicas", "-1"),
        ("image.pullPolicy", "Sometimes"),
        ("no.such.value", "1"),
    ):
        proc = helm("template", "kubemate", str(CHART), *sets({"existingSecret": SECRET, key: value}), check=False)
        assert proc.returncode != 0, key
        assert "values don't meet the specifications of the schema" in proc.stderr, (key, proc.stderr)
    # An ordinary setting from the table is accepted and lands in the ConfigMap.
    docs = render(helm, **{"config.env.KUBEMATE_LDAP_URI": "ldaps://ldap.bank.example"})
    assert by_kind(docs, "ConfigMap")["kubemate"]["data"]["KUBEMATE_LDAP_URI"] == "ldaps://ldap.bank.example"


def test_the_configmap_holds_what_production_requires(helm):
    docs = render(helm, namespace="ops", host="kubemate.bank.example", **{"config.timeZone": "Asia/Shanghai"})
    data = by_kind(docs, "ConfigMap")["kubemate"]["data"]

    assert data["DJANGO_SETTINGS_MODULE"] == "kubemate.settings.production"
    assert data["ALLOWED_HOSTS"].split(",") == [
        "kubemate.bank.example",
        "kubemate",
        "kubemate.ops",
        "kubemate.ops.svc",
        "kubemate.ops.svc.cluster.local",
    ]
    assert data["KUBEMATE_PUBLIC_URL"] == "https://kubemate.bank.example"
    assert data["CSRF_TRUSTED_ORIGINS"] == "https://kubemate.bank.example"
    assert data["TIME_ZONE"] == "Asia/Shanghai"
    assert data["LANGUAGE_CODE"] == "en"


def test_pods_roll_when_the_configuration_changes(helm):
    def checksums(docs):
        return {
            name: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for name, d in by_kind(docs, "Deployment").items()
        }

    before = checksums(render(helm))
    after = checksums(render(helm, **{"config.timeZone": "Europe/Zurich"}))
    again = checksums(render(helm))

    assert set(before) == {"kubemate-web", "kubemate-worker"}
    assert before == again
    assert all(before[name] != after[name] for name in before)


def test_web_probes_liveness_on_healthz_and_readiness_on_readyz(helm):
    docs = render(helm, namespace="ops")
    container = by_kind(docs, "Deployment")["kubemate-web"]["spec"]["template"]["spec"]["containers"][0]
    allowed = by_kind(docs, "ConfigMap")["kubemate"]["data"]["ALLOWED_HOSTS"].split(",")

    assert container["args"] == ["web"]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        headers = {h["name"]: h["value"] for h in container[probe]["httpGet"]["httpHeaders"]}
        assert headers["Host"] == "kubemate.ops.svc"
        assert headers["Host"] in allowed
        assert headers["X-Forwarded-Proto"] == "https"
        assert container[probe]["httpGet"]["port"] == "http"
    service = by_kind(docs, "Service")["kubemate"]
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}
    ]
    assert service["spec"]["selector"] == by_kind(docs, "Deployment")["kubemate-web"]["spec"]["selector"]["matchLabels"]


def production_env(config: dict[str, str], **overrides: str) -> dict[str, str]:
    """The environment a chart-rendered pod gets: the ConfigMap, plus the installer's Secret."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "KUBEMATE_"))}
    env.update(config)
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        KUBEMATE_ENCRYPTION_KEYS=urlsafe_b64encode(os.urandom(32)).decode(),
        # The maintenance database of the test server: readyz only asks for its version.
        DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/postgres",
        REDIS_URL=settings.REDIS_URL,
        KUBEMATE_CICD_STORAGE="/nonexistent/cicd",
        KUBEMATE_BACKUP_WORKDIR="/nonexistent/backups-work",
        KUBEMATE_AI_DOCUMENTS_DIR="/nonexistent/ai-documents",
    )
    env.update(overrides)
    return env


PROBE_REQUEST = """
import json, sys, django
django.setup()
from django.test import Client
print(json.dumps([Client(headers=headers).get(path).status_code for path, headers in json.loads(sys.argv[1])]))
"""


def test_the_web_probes_pass_the_production_settings(helm):
    """The kubelet's requests, as the chart writes them, through the production settings: 200, where a probe without
    the chart's headers is refused (the pod's address is no allowed host) or redirected to https."""
    docs = render(helm, namespace="ops")
    config = by_kind(docs, "ConfigMap")["kubemate"]["data"]
    container = by_kind(docs, "Deployment")["kubemate-web"]["spec"]["template"]["spec"]["containers"][0]
    requests = [
        (container[p]["httpGet"]["path"], {h["name"]: h["value"] for h in container[p]["httpGet"]["httpHeaders"]})
        for p in ("livenessProbe", "readinessProbe")
    ]
    requests += [("/healthz", {"Host": "10.244.0.7:8000"}), ("/healthz", {"Host": "kubemate.ops.svc"})]

    def ask(env) -> list[int]:
        proc = subprocess.run(
            [sys.executable, "-c", PROBE_REQUEST, json.dumps(requests)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.splitlines()[-1])

    assert ask(production_env(config)) == [200, 200, 400, 301]
    # Redis away: readiness fails, liveness does not.
    assert ask(production_env(config, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"))[:2] == [200, 503]


def test_the_worker_probe_reads_this_pods_heartbeat(helm, monkeypatch):
    """The worker's exec probe, run as written against the test Redis: passes while the worker's own heartbeat
    step (apps/core/heartbeat.py) beats, fails once it stopped, passes when Redis itself is away."""
    from django.conf import settings

    from apps.core.heartbeat import WorkerHeartbeat

    docs = render(helm)
    container = by_kind(docs, "Deployment")["kubemate-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["worker"]
    env = env_of(container)
    assert env["KUBEMATE_WORKER_BEAT"]["value"] == "true"
    assert env["KUBEMATE_WORKER_SYNC"]["value"] == "true"
    command = container["livenessProbe"]["exec"]["command"]
    assert container["startupProbe"]["exec"]["command"] == command
    assert "readinessProbe" not in container
    assert command[:2] == ["python", "-c"]
    pod = unique("kubemate-worker-probe")  # the pod's host name, unique so that no other worker's key matches

    def probe(redis_url: str) -> tuple[int, float]:
        hostname = f"import socket\nsocket.gethostname = lambda: {pod!r}\n"
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", hostname + command[2]],
            env={"PATH": os.environ["PATH"], "REDIS_URL": redis_url},
            capture_output=True,
            text=True,
            timeout=30,
        )
        return proc.returncode, time.monotonic() - started

    monkeypatch.setattr(socket, "gethostname", lambda: pod)
    heartbeat = WorkerHeartbeat(object())
    assert probe(settings.REDIS_URL)[0] == 1  # not started yet: no heartbeat
    heartbeat.start(None)
    try:
        deadline = time.monotonic() + 10
        code, took = probe(settings.REDIS_URL)
        while code != 0 and time.monotonic() < deadline:
            code, took = probe(settings.REDIS_URL)
        assert code == 0
        assert took < 3, f"the probe took {took:.1f} s; it must stay cheap"
    finally:
        heartbeat.stop(None)
    assert probe(settings.REDIS_URL)[0] == 1
    assert probe(f"redis://127.0.0.1:{free_port()}/0")[0] == 0


def test_the_migration_job_is_a_pre_install_and_pre_upgrade_hook(helm):
    docs = render(helm)
    job = by_kind(docs, "Job")["kubemate-migrate"]
    annotations = job["metadata"]["annotations"]

    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {"before-hook-creation", "hook-succeeded"}
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["activeDeadlineSeconds"] == 900
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    container = spec["containers"][0]
    assert container["args"] == ["migrate"]
    # Hooks run before the release's ConfigMap and ServiceAccount exist: the Job carries the settings inline and
    # runs as a ServiceAccount that is an earlier hook itself.
    assert "envFrom" not in container
    inline = {name: item["value"] for name, item in env_of(container).items() if "value" in item}
    assert inline == by_kind(docs, "ConfigMap")["kubemate"]["data"]
    account = by_kind(docs, "ServiceAccount")[spec["serviceAccountName"]]
    assert account["metadata"]["annotations"]["helm.sh/hook"] == annotations["helm.sh/hook"]
    assert int(account["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
    hooks = {d["metadata"]["name"] for d in docs if "helm.sh/hook" in d["metadata"].get("annotations", {})}
    assert hooks == {"kubemate-migrate"}  # the Job and its ServiceAccount; nothing else is a hook
    assert "Job" not in {d["kind"] for d in render(helm, **{"migration.enabled": "false"})}


def test_disruption_budgets_keep_one_pod_of_each(helm):
    docs = render(helm)
    budgets = by_kind(docs, "PodDisruptionBudget")
    deployments = by_kind(docs, "Deployment")

    assert set(budgets) == {"kubemate-web", "kubemate-worker"}
    for name, budget in budgets.items():
        assert budget["spec"]["minAvailable"] == 1
        assert budget["spec"]["selector"] == deployments[name]["spec"]["selector"]
    # With one replica a budget of one would block every node drain: none is rendered.
    single = by_kind(render(helm, **{"web.replicas": "1"}), "PodDisruptionBudget")
    assert set(single) == {"kubemate-worker"}


def test_replicas_spread_over_nodes(helm):
    docs = render(helm, **{"web.replicas": "3", "worker.replicas": "4"})
    deployments = by_kind(docs, "Deployment")

    assert deployments["kubemate-web"]["spec"]["replicas"] == 3
    assert deployments["kubemate-worker"]["spec"]["replicas"] == 4
    for deployment in deployments.values():
        spec = deployment["spec"]["template"]["spec"]
        keys = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}
        assert set(keys) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert keys["kubernetes.io/hostname"]["labelSelector"]["matchLabels"].items() <= labels.items()


def test_network_policies_deny_all_but_the_web_port_and_the_needed_egress(helm):
    docs = render(helm, **{"networkPolicy.egress.database.cidrs[0]": "10.20.0.0/24"})
    policies = by_kind(docs, "NetworkPolicy")
    labels = {name: spec_of["template"]["metadata"]["labels"] for name, spec_of in _workloads(docs).items()}

    assert set(policies) == {"kubemate", "kubemate-web"}
    everything = policies["kubemate"]["spec"]
    assert everything["policyTypes"] == ["Ingress", "Egress"]
    assert everything["ingress"] == []
    for name, pod_labels in labels.items():  # web, worker and the migration hook are all covered
        assert everything["podSelector"]["matchLabels"].items() <= pod_labels.items(), name
    egress = everything["egress"]
    assert all(rule.get("ports") for rule in egress), "an egress rule without ports lets everything out"
    ports = {(port["protocol"], port["port"]) for rule in egress for port in rule["ports"]}
    assert ports == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 6379), ("TCP", 443), ("TCP", 6443)}
    database = next(rule for rule in egress if rule["ports"] == [{"protocol": "TCP", "port": 5432}])
    assert database["to"] == [{"ipBlock": {"cidr": "10.20.0.0/24"}}]
    web = policies["kubemate-web"]["spec"]
    assert web["policyTypes"] == ["Ingress"]
    assert web["podSelector"]["matchLabels"].items() <= labels["Deployment/kubemate-web"].items()
    assert not web["podSelector"]["matchLabels"].items() <= labels["Deployment/kubemate-worker"].items()
    assert web["ingress"] == [
        {
            "ports": [{"protocol": "TCP", "port": 8000}],
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway-system"}}}],
        }
    ]
    assert "NetworkPolicy" not in {d["kind"] for d in render(helm, **{"networkPolicy.enabled": "false"})}


def _workloads(docs: list[dict]) -> dict[str, dict]:
    return {f"{d['kind']}/{d['metadata']['name']}": d["spec"] for d in docs if d["kind"] in {"Deployment", "Job"}}


def test_route_and_ingress_are_off_by_default_and_point_at_the_service(helm):
    assert not {"HTTPRoute", "Ingress"} & {d["kind"] for d in render(helm)}

    docs = render(helm, host="kubemate.bank.example", **{"route.enabled": "true", "ingress.enabled": "true"})
    route = by_kind(docs, "HTTPRoute")["kubemate"]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateway-system"}]
    assert route["spec"]["hostnames"] == ["kubemate.bank.example"]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "kubemate", "port": 8000}]
    ingress = by_kind(docs, "Ingress")["kubemate"]
    assert ingress["spec"]["rules"][0]["host"] == "kubemate.bank.example"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "kubemate", "port": {"name": "http"}}
    proc = helm(
        "template", "kubemate", str(CHART), *sets({"existingSecret": SECRET, "ingress.enabled": "true"}), check=False
    )
    assert proc.returncode != 0 and "ingress.enabled needs a host name" in proc.stderr


def test_the_managed_cluster_identity_is_the_one_the_console_installs(helm):
    """managedClusterRBAC renders deploy/kubernetes/kubemate-rbac.yaml (the chart's copy must not drift from it) with
    the chart's labels; its namespaces are kept on uninstall and the release's own is not rendered."""
    original = REPO / "deploy" / "kubernetes" / "kubemate-rbac.yaml"
    assert (CHART / "files" / "kubemate-rbac.yaml").read_text() == original.read_text(), (
        "the chart's copy differs: cp deploy/kubernetes/kubemate-rbac.yaml deploy/helm/kubemate/files/"
    )
    assert not [d for d in render(helm) if d["kind"] in {"ClusterRole", "Namespace"}]

    docs = render(helm, namespace="kubemate-system", **{"managedClusterRBAC.enabled": "true"})
    expected = [d for d in yaml.safe_load_all(original.read_text()) if d]
    rendered = {(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")): d for d in docs}
    for doc in expected:
        key = (doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace"))
        if key == ("Namespace", "kubemate-system", None):
            assert key not in rendered  # the release's namespace exists already
            continue
        got = rendered[key]
        assert {k: v for k, v in got.items() if k != "metadata"} == {k: v for k, v in doc.items() if k != "metadata"}
        assert doc["metadata"]["labels"].items() <= got["metadata"]["labels"].items()
        assert got["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        if doc["kind"] == "Namespace":
            assert got["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    # The console's own pods still get no token: the identity is for registering this cluster, not for the pods.
    assert all(spec["automountServiceAccountToken"] is False for spec in pod_specs(docs).values())
    without_namespaces = render(
        helm, **{"managedClusterRBAC.enabled": "true", "managedClusterRBAC.createNamespaces": "false"}
    )
    assert "Namespace" not in {d["kind"] for d in without_namespaces}
    assert "ClusterRole" in {d["kind"] for d in without_namespaces}


# Against the sandbox ----------------------------------------------------------------------------------------


def kubectl(sandbox, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(built_tool("KUBECTL")), "--kubeconfig", str(sandbox.kubeconfig), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, f"kubectl {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture
def restricted_namespace(sandbox):
    """A fresh namespace that enforces the restricted Pod Security Standard, deleted at the end."""
    name = unique("kubemate-helm")
    kubectl(sandbox, "create", "namespace", name)
    kubectl(
        sandbox,
        "label",
        "namespace",
        name,
        *(f"pod-security.kubernetes.io/{mode}=restricted" for mode in ("enforce", "warn", "audit")),
    )
    yield name
    # Other tests restart the sandbox's apiserver now and then: try for a while rather than leave the namespace.
    wait_until(
        f"namespace {name} to be deleted",
        lambda: kubectl(sandbox, "delete", "namespace", name, "--wait=false", check=False).returncode == 0,
        timeout=60,
    )


def create_secret(sandbox, namespace: str) -> None:
    values = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "KUBEMATE_ENCRYPTION_KEYS": urlsafe_b64encode(os.urandom(32)).decode(),
        "DATABASE_URL": "postgres://kubemate:secret@postgres.example:5432/kubemate",
        "REDIS_URL": "redis://:secret@redis.example:6379/0",
    }
    kubectl(
        sandbox,
        "-n",
        namespace,
        "create",
        "secret",
        "generic",
        SECRET,
        *(f"--from-literal={key}={value}" for key, value in values.items()),
    )


@pytest.mark.sandbox
def test_the_rendered_chart_passes_the_apiservers_validation(helm, sandbox, restricted_namespace):
    """Server-side dry run of everything the chart renders, hooks and route included: the real API schemas (strict
    field validation, the Gateway API CRDs) and Pod Security admission accept every object."""
    kubectl(sandbox, "get", "crd", "httproutes.gateway.networking.k8s.io")
    values = {
        "existingSecret": SECRET,
        "host": "kubemate.bank.example",
        "route.enabled": "true",
        "ingress.enabled": "true",
        "storage.sharedClaim": "kubemate-shared",
        "networkPolicy.egress.kubernetesApi.cidrs[0]": "10.0.0.0/8",
        "networkPolicy.egress.extraRules[0].ports[0].port": "587",
    }
    manifest = helm("template", "kubemate", str(CHART), "--namespace", restricted_namespace, *sets(values)).stdout
    kinds = sorted({d["kind"] for d in yaml.safe_load_all(manifest) if d})
    assert "HTTPRoute" in kinds and "Job" in kinds

    proc = kubectl(
        sandbox,
        "apply",
        "--server-side",
        "--dry-run=server",
        "--validate=strict",
        "--field-manager=helm-chart-test",
        "-n",
        restricted_namespace,
        "-f",
        "-",
        input=manifest,
    )
    applied = [line for line in proc.stdout.splitlines() if "(server dry run)" in line]
    assert len(applied) == len([d for d in yaml.safe_load_all(manifest) if d]), proc.stdout
    assert "Warning" not in proc.stderr, proc.stderr
    # Nothing was created.
    created = kubectl(
        sandbox, "-n", restricted_namespace, "get", "deployments,jobs,services,networkpolicies", "-o", "name"
    )
    assert created.stdout == ""


def resources(sandbox, namespace: str, kinds: str) -> dict:
    out = kubectl(sandbox, "-n", namespace, "get", kinds, "-o", "json").stdout
    return {f"{i['kind']}/{i['metadata']['name']}": i for i in json.loads(out)["items"]}


def running_pods(sandbox, namespace: str, component: str) -> list[dict]:
    pods = resources(sandbox, namespace, "pods")
    return [
        pod
        for pod in pods.values()
        if pod["metadata"]["labels"].get("app.kubernetes.io/component") == component
        and pod["status"].get("phase") == "Running"
        and not pod["metadata"].get("deletionTimestamp")
    ]


def wait_until(what: str, probe, timeout: float = 90):
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(0.5)
        value = probe()
    assert value, f"timed out after {timeout}s waiting for {what}"
    return value


def migration_hook(helm, namespace: str, kubeconfig) -> dict:
    status = json.loads(
        helm("status", "kubemate", "-n", namespace, "--kubeconfig", str(kubeconfig), "-o", "json").stdout
    )
    hooks = {hook["name"]: hook for hook in status.get("hooks", [])}
    return hooks.get("kubemate-migrate", {})


@pytest.mark.sandbox
def test_helm_installs_and_upgrades_the_console(helm, sandbox, restricted_namespace):
    """helm install --wait into a fresh namespace: the migration hook Job runs to Succeeded (kwok's pod-complete
    stage) and is deleted, every object exists, 2 web and 2 worker pods run, Traefik accepts the route. A changed
    setting then rolls the pods on upgrade, after the hook ran again; uninstall leaves nothing behind."""
    namespace = restricted_namespace
    kubeconfig = str(sandbox.kubeconfig)
    create_secret(sandbox, namespace)
    values = {"existingSecret": SECRET, "host": "kubemate.sandbox.example", "route.enabled": "true"}
    helm("install", "kubemate", str(CHART), "-n", namespace, "--kubeconfig", kubeconfig, *sets(values),
         "--wait", "--timeout", "180s")  # fmt: skip

    hook = migration_hook(helm, namespace, kubeconfig)
    assert hook["last_run"]["phase"] == "Succeeded", hook
    first_run = hook["last_run"]["started_at"]
    manifest = helm("get", "manifest", "kubemate", "-n", namespace, "--kubeconfig", kubeconfig).stdout
    expected = {f"{d['kind']}/{d['metadata']['name']}" for d in yaml.safe_load_all(manifest) if d}
    assert expected == {
        "ConfigMap/kubemate",
        "Deployment/kubemate-web",
        "Deployment/kubemate-worker",
        "HTTPRoute/kubemate",
        "NetworkPolicy/kubemate",
        "NetworkPolicy/kubemate-web",
        "PodDisruptionBudget/kubemate-web",
        "PodDisruptionBudget/kubemate-worker",
        "Service/kubemate",
        "ServiceAccount/kubemate-app",
    }
    present = resources(
        sandbox, namespace, "configmaps,deployments,httproutes,networkpolicies,poddisruptionbudgets,services,sa"
    )
    assert expected <= set(present)
    # The hook and its ServiceAccount were deleted once they succeeded; no Secret was rendered.
    assert "Job/kubemate-migrate" not in resources(sandbox, namespace, "jobs")
    assert "ServiceAccount/kubemate-migrate" not in present
    stored = {
        name for name, item in resources(sandbox, namespace, "secrets").items() if item["type"] != "helm.sh/release.v1"
    }
    assert stored == {f"Secret/{SECRET}"}  # besides Helm's own release records
    assert len(running_pods(sandbox, namespace, "web")) == 2
    assert len(running_pods(sandbox, namespace, "worker")) == 2
    for pod in running_pods(sandbox, namespace, "web") + running_pods(sandbox, namespace, "worker"):
        assert pod["spec"]["serviceAccountName"] == "kubemate-app"
        assert not [v for v in pod["spec"]["volumes"] if "projected" in v], "a token was mounted"
    # Traefik, the sandbox's Gateway API controller, accepts the route and resolves its Service.
    route = "httproute/kubemate"

    def route_conditions():
        got = json.loads(kubectl(sandbox, "-n", namespace, "get", route, "-o", "json").stdout)
        parents = got.get("status", {}).get("parents", [])
        found = {c["type"]: c["status"] for p in parents for c in p["conditions"]}
        return found if found.get("Accepted") == "True" and found.get("ResolvedRefs") == "True" else None

    wait_until("the route to be Accepted with its Service resolved", route_conditions)

    old_checksum = present["Deployment/kubemate-web"]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    helm("upgrade", "kubemate", str(CHART), "-n", namespace, "--kubeconfig", kubeconfig, *sets(values),
         "--set", "config.timeZone=Asia/Shanghai", "--wait", "--timeout", "180s")  # fmt: skip

    hook = migration_hook(helm, namespace, kubeconfig)
    assert hook["last_run"]["phase"] == "Succeeded"
    assert hook["last_run"]["started_at"] > first_run, "the pre-upgrade hook did not run again"
    assert resources(sandbox, namespace, "configmaps")["ConfigMap/kubemate"]["data"]["TIME_ZONE"] == "Asia/Shanghai"

    def rolled():
        pods = running_pods(sandbox, namespace, "web")
        sums = {pod["metadata"]["annotations"]["checksum/config"] for pod in pods}
        return len(pods) == 2 and old_checksum not in sums

    wait_until("the web pods to roll onto the new configuration", rolled)

    helm("uninstall", "kubemate", "-n", namespace, "--kubeconfig", kubeconfig, "--wait", "--timeout", "120s")
    left = resources(sandbox, namespace, "configmaps,deployments,services,networkpolicies,poddisruptionbudgets,sa")
    assert not {name for name in left if name.endswith(("/kubemate", "-web", "-worker", "-app"))}
