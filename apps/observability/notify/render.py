"""What a notification receiver becomes outside Kubemate: pure functions, no cluster, no database writes.

For a cluster run by the Prometheus Operator, each of the receiver's namespaces gets a Secret (what Alertmanager
must present: the SMTP password, a webhook's bearer token, or the token Kubemate's relay asks of it) and an
AlertmanagerConfig of the same name that routes the namespace's alerts of the chosen severities to the receiver
(the operator adds the namespace matcher itself). For a plain Alertmanager, ``alertmanager_yml`` renders one whole
configuration from the same receivers, with every secret referenced as a file under a folder given as a parameter
(``secret_files`` says what goes in each), so the text can be shown and downloaded: it holds no secret.

DingTalk and WeCom robots are not Alertmanager receivers: their alerts go, as a webhook, to Kubemate's relay
(``relay_url``), which words them as the robot's markdown message.
"""

from __future__ import annotations

import re

import yaml

MANAGED_BY = {"app.kubernetes.io/managed-by": "kubemate"}
NULL_RECEIVER = "kubemate-null"
ROBOTS = ("dingtalk", "wecom")
GROUP_BY = ["alertname", "namespace"]


def secret_key(kind: str) -> str:
    """The key of the receiver's Secret that Alertmanager reads: the SMTP password or a bearer token."""
    return "password" if kind == "email" else "token"


def alertmanager_secret(kind: str, secrets: dict) -> str:
    """The one secret Alertmanager must present for this receiver ("" when none)."""
    if kind == "email":
        return secrets.get("password", "")
    if kind in ROBOTS:
        return secrets.get("relay_token", "")
    return secrets.get("token", "")


def relay_url(relay_base_url: str, receiver_id: int) -> str:
    return f"{relay_base_url.rstrip('/')}/observability/notify/relay/{receiver_id}/"


def severity_regex(severities) -> str:
    return "|".join(re.escape(s) for s in severities) if severities else ".*"


# --- the Prometheus Operator ----------------------------------------------------------------------------------------


def secret_manifest(receiver, namespace: str, secrets: dict) -> dict:
    value = alertmanager_secret(receiver.kind, secrets)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": receiver.object_name, "namespace": namespace, "labels": _labels(receiver)},
        "stringData": {secret_key(receiver.kind): value} if value else {},
    }


def config_manifest(receiver, namespace: str, secrets: dict, relay_base_url: str) -> dict:
    """The AlertmanagerConfig (monitoring.coreos.com/v1alpha1) routing ``namespace``'s alerts to ``receiver``."""
    name = receiver.object_name
    route = {"receiver": name, "groupBy": list(GROUP_BY)}
    if receiver.severities:
        route["matchers"] = [{"name": "severity", "value": severity_regex(receiver.severities), "matchType": "=~"}]
    ref = {"name": name, "key": secret_key(receiver.kind)}
    entry = _camel(receiver_entry(receiver, secrets, relay_base_url, secret=ref, as_file=False))
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels(receiver)},
        "spec": {"route": route, "receivers": [entry]},
    }


def receiver_entry(receiver, secrets: dict, relay_base_url: str, *, secret, as_file: bool) -> dict:
    """The receiver as Alertmanager's configuration writes it (snake_case). ``secret`` stands for the secret
    Alertmanager presents: a Secret key reference (AlertmanagerConfig) or a file path (``as_file``, alertmanager.yml);
    the secret itself is never in the result."""
    has_secret = bool(alertmanager_secret(receiver.kind, secrets))
    options = receiver.options or {}
    entry: dict = {"name": receiver.object_name}
    if receiver.kind == "email":
        mail = {
            "to": ", ".join(options.get("to", [])),
            "from": options.get("from", ""),
            "smarthost": options.get("smarthost", ""),
            "require_tls": bool(options.get("require_tls", True)),
            "send_resolved": receiver.send_resolved,
        }
        if options.get("username"):
            mail["auth_username"] = options["username"]
            if has_secret:
                mail["auth_password_file" if as_file else "auth_password"] = secret
        entry["email_configs"] = [mail]
    else:
        url = relay_url(relay_base_url, receiver.pk) if receiver.kind in ROBOTS else options.get("url", "")
        hook: dict = {"url": url, "send_resolved": receiver.send_resolved}
        if has_secret:
            hook["http_config"] = {
                "authorization": {"type": "Bearer", ("credentials_file" if as_file else "credentials"): secret}
            }
        entry["webhook_configs"] = [hook]
    return entry


CAMEL_EXCEPTIONS = {"require_tls": "requireTLS"}


def _camel(value):
    """Alertmanager's snake_case keys as the AlertmanagerConfig resource spells them (camelCase)."""
    if isinstance(value, list):
        return [_camel(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        head, *rest = key.split("_")
        out[CAMEL_EXCEPTIONS.get(key, head + "".join(w.capitalize() for w in rest))] = _camel(item)
    return out


def _labels(receiver) -> dict:
    return {**MANAGED_BY, "kubemate.io/project": receiver.project.slug, "kubemate.io/receiver": receiver.name}


# --- a plain Alertmanager ------------------------------------------------------------------------------------------


def secret_files(receivers_with_secrets) -> dict[str, str]:
    """{path relative to the secrets folder: secret} for ``(receiver, secrets)`` pairs; written beside the
    configuration, readable by Alertmanager alone (0600)."""
    files = {}
    for receiver, secrets in receivers_with_secrets:
        value = alertmanager_secret(receiver.kind, secrets)
        if value:
            files[f"{receiver.object_name}/{secret_key(receiver.kind)}"] = value
    return files


def alertmanager_yml(receivers_with_secrets, relay_base_url: str, secrets_folder: str) -> str:
    """A whole alertmanager.yml for ``(receiver, secrets)`` pairs: a root route to a receiver that sends nothing,
    one child route per receiver (its namespaces and severities), secrets as files under ``secrets_folder``."""
    folder = secrets_folder.rstrip("/")
    routes, entries = [], [{"name": NULL_RECEIVER}]
    for receiver, secrets in receivers_with_secrets:
        namespaces = receiver.watched_namespaces
        if not namespaces:
            continue
        name = receiver.object_name
        matchers = ['namespace=~"{}"'.format("|".join(re.escape(n) for n in namespaces))]
        if receiver.severities:
            matchers.append(f'severity=~"{severity_regex(receiver.severities)}"')
        routes.append({"receiver": name, "group_by": list(GROUP_BY), "matchers": matchers, "continue": True})
        path = f"{folder}/{name}/{secret_key(receiver.kind)}"
        entry = receiver_entry(receiver, secrets, relay_base_url, secret=path, as_file=True)
        entries.append(entry)
    config = {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": NULL_RECEIVER,
            "group_by": list(GROUP_BY),
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": routes,
        },
        "receivers": entries,
    }
    header = "# Rendered by Kubemate from its notification receivers; secrets are read from files.\n"
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
