"""Kubeconfig features that make Kubemate's process run commands, read files or weaken TLS are refused.

A kubeconfig can name a command to run (exec, auth-provider), files to read (tokenFile, client-certificate,
certificate-authority), a proxy, identity switches (as, as-groups) or skip TLS checks. Kubemate keeps only
embedded certificates and tokens: every other key is refused with a sentence, pasted or uploaded, before
anything runs; the exec commands here would leave a file behind if they ever ran.
"""

import uuid
from pathlib import Path

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.clusters.models import Cluster
from apps.core.models import AuditEvent
from tests.factories import UserFactory
from tests.helpers import grant, login

pytestmark = pytest.mark.django_db

RAN = Path("/tmp") / f"kubemate-exec-ran-{uuid.uuid4().hex}"
EXEC = {"command": "/bin/sh", "args": ["-c", f"touch {RAN}"], "apiVersion": "client.authentication.k8s.io/v1"}
USER_FEATURES = {
    "exec": {"exec": EXEC},
    "exec-beta": {"exec": {**EXEC, "apiVersion": "client.authentication.k8s.io/v1beta1"}},
    "exec-with-token": {"token": "abc", "exec": EXEC},
    "exec-env": {"exec": {**EXEC, "env": [{"name": "LD_PRELOAD", "value": "/tmp/x.so"}]}},
    "auth-provider-oidc": {"auth-provider": {"name": "oidc", "config": {"idp-issuer-url": "https://169.254.169.254"}}},
    "auth-provider-gcp": {"auth-provider": {"name": "gcp", "config": {"cmd-path": "/bin/sh", "cmd-args": "-c id"}}},
    "auth-provider-azure": {"auth-provider": {"name": "azure", "config": {"tenant-id": "x"}}},
    "token-file": {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"},
    "token-file-traversal": {"tokenFile": "../../../../etc/shadow"},
    "client-certificate-path": {"client-certificate": "/etc/ssl/private/key.pem", "client-key-data": "eA=="},
    "client-key-path": {"client-certificate-data": "eA==", "client-key": "/root/.ssh/id_rsa"},
    "basic-auth": {"username": "admin", "password": "admin"},
    "impersonate-user": {"token": "abc", "as": "system:admin"},
    "impersonate-groups": {"token": "abc", "as-groups": ["system:masters"]},
    "impersonate-uid": {"token": "abc", "as-uid": "0"},
    "impersonate-extra": {"token": "abc", "as-user-extra": {"scopes": ["all"]}},
    "unknown-key": {"token": "abc", "password-file": "/etc/passwd"},
}
CLUSTER_FEATURES = {
    "ca-file": {"certificate-authority": "/etc/kubernetes/pki/ca.crt"},
    "ca-file-traversal": {"certificate-authority": "../../../etc/passwd"},
    "skip-tls": {"insecure-skip-tls-verify": True},
    "skip-tls-string": {"insecure-skip-tls-verify": "true"},
    "http-proxy": {"proxy-url": "http://169.254.169.254:80"},
    "socks-proxy": {"proxy-url": "socks5://127.0.0.1:1080"},
    "disable-compression": {"disable-compression": True},
    "unknown-key": {"certificate-authority-file": "/etc/passwd"},
}


def kubeconfig(user: dict, cluster: dict) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", **cluster}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "ctx",
        }
    )


CASES = {f"user:{name}": (user, {}) for name, user in USER_FEATURES.items()} | {
    f"cluster:{name}": ({"token": "abc"}, cluster) for name, cluster in CLUSTER_FEATURES.items()
}


def form(**overrides) -> dict:
    data = dict.fromkeys(
        ("region", "labels", "context", "api_server", "token", "ca_pem", "prometheus_url", "kubeconfig_text"), ""
    )
    data |= dict.fromkeys(("alertmanager_url", "logs_url", "jaeger_url"), "")
    data |= {"name": "prod-bj-1", "environment": "production", "source": "kubeconfig", "purpose": "own"}
    return data | overrides


@pytest.fixture
def manager_client(client, admin_user):
    manager = UserFactory(username="cluster-manager")
    grant(manager, "platform-admin")
    return login(client, manager, recent_auth=True)


@pytest.mark.parametrize("how", ["pasted", "uploaded"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_kubeconfig_feature_beyond_embedded_credentials_is_refused_before_anything_runs(manager_client, case, how):
    text = kubeconfig(*CASES[case])
    if how == "pasted":
        data = form(kubeconfig_text=text)
    else:
        data = form(kubeconfig_file=SimpleUploadedFile("config", text.encode(), content_type="application/yaml"))

    response = manager_client.post(reverse("clusters:registry_add"), data)

    assert response.status_code == 200
    html = response.content.decode()
    assert "which Kubemate does not accept" in html or "neither a token nor a client certificate" in html
    assert not Cluster.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="clusters.").exists()
    assert not RAN.exists()


def test_the_same_kubeconfig_with_a_plain_token_passes_the_check(manager_client):
    """The control: without the refused key the form gets past this check (and fails later, on the address)."""
    response = manager_client.post(
        reverse("clusters:registry_add"), form(kubeconfig_text=kubeconfig({"token": "a"}, {}))
    )

    assert "which Kubemate does not accept" not in response.content.decode()
