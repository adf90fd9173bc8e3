"""The one door to Kubernetes: API clients from stored credentials, timeouts, and errors as sentences.

Only this module and the apps' ``k8s.py`` modules import ``kubernetes``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import urllib3
import yaml
from django.utils.translation import gettext as _
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from apps.clusters.models import Cluster

CONNECT_TIMEOUT = 3
READ_TIMEOUT = 10


class KubeError(Exception):
    """A Kubernetes failure with a sentence a person can act on."""


class ClusterUnreachable(KubeError):
    pass


class Forbidden(KubeError):
    pass


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class Invalid(KubeError):
    pass


@dataclass(frozen=True)
class ClusterVersion:
    git_version: str


def _translate(exc: ApiException, cluster: Cluster) -> KubeError:
    if exc.status == 401:
        return ClusterUnreachable(_("Cluster %(name)s rejected Kubemate's credentials (401).") % {"name": cluster.name})
    if exc.status == 403:
        return Forbidden(_("You are not allowed to do this in cluster %(name)s.") % {"name": cluster.name})
    if exc.status == 404:
        return NotFound(_("The object no longer exists in cluster %(name)s.") % {"name": cluster.name})
    if exc.status == 409:
        return Conflict(_("Someone else changed the object meanwhile; reload and try again."))
    if exc.status == 422:
        return Invalid(_("Kubernetes refused the change: %(reason)s") % {"reason": exc.reason})
    return ClusterUnreachable(
        _("Cluster %(name)s answered with an error (%(status)s).") % {"name": cluster.name, "status": exc.status}
    )


@contextmanager
def api_client(cluster: Cluster) -> Iterator[client.ApiClient]:
    """An ApiClient for Kubemate's own identity in ``cluster``, closed after use.

    The kubeconfig is decrypted in memory; certificate data the client library
    needs as files lives in a private temporary folder removed on exit.
    """
    configuration = client.Configuration()
    with tempfile.TemporaryDirectory(prefix="kubemate-kube-") as tmp:
        config.kube_config.KubeConfigLoader(
            config_dict=yaml.safe_load(cluster.kubeconfig()), temp_file_path=tmp
        ).load_and_set(configuration)
        configuration.retries = 0
        api = client.ApiClient(configuration)
        try:
            yield api
        finally:
            api.close()


def call(cluster: Cluster, fn, *args, **kwargs):
    """Run one API call with Kubemate's timeouts, translating failures into KubeError."""
    kwargs.setdefault("_request_timeout", (CONNECT_TIMEOUT, READ_TIMEOUT))
    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        raise _translate(exc, cluster) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterUnreachable(
            _("Cluster %(name)s cannot be reached (%(reason)s).")
            % {"name": cluster.name, "reason": exc.__class__.__name__}
        ) from None
