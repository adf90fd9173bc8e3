"""The terminal service running in this process (a thread with its own event loop), and a pod to open shells in;
used by tests/terminal and tests/browser."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from aiohttp import web

from apps.accounts.models import Project
from apps.terminal import server
from tests.factories import UserFactory
from tests.helpers import (
    bind,
    create_namespace,
    delete_namespace,
    deployment,
    free_port,
    grant,
    running_pods,
    unique,
    wait_for,
)


@pytest.fixture
def terminal_service(settings):
    """``manage.py terminal_server``'s application on a free loopback port; its URL is the console's setting."""
    loop = asyncio.new_event_loop()
    port = free_port()
    runner = web.AppRunner(server.application())

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    settings.KUBEMATE_TERMINAL_URL = f"ws://127.0.0.1:{port}"
    yield settings.KUBEMATE_TERMINAL_URL
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


@pytest.fixture
def shell_team(sandbox, registered_cluster, admin_user):
    """A project namespace with one running pod (Deployment "web"), its project owner (who holds pods.exec) and a
    viewer of the same project (who does not)."""
    from kubernetes import client as k8s

    namespace = unique("term")
    create_namespace(sandbox, namespace)
    k8s.AppsV1Api(sandbox.api_client).create_namespaced_deployment(namespace, deployment("web"))
    owner, viewer = UserFactory(), UserFactory()
    bind(admin_user, registered_cluster, owner, "project-owner", [namespace])
    grant(viewer, "viewer", project=Project.objects.get(namespaces__contains=[namespace]))
    assert wait_for(lambda: running_pods(sandbox, namespace, "app=web"), timeout=60)
    pod = running_pods(sandbox, namespace, "app=web")[0].metadata.name
    yield {"cluster": registered_cluster, "namespace": namespace, "pod": pod, "owner": owner, "viewer": viewer}
    delete_namespace(sandbox, namespace)
