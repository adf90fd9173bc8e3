"""What a model server is as a release: each kind's defaults, and the release spec the form's answers make. Pure: no
database, no cluster.

- Ollama (``ollama/ollama``) listens on 11434, answers ``GET /`` ("Ollama is running") when up, and keeps its models
  in ``/root/.ollama``; models are pulled later or found on the volume (preloaded), so none is named at start.
- vLLM (``vllm/vllm-openai``) serves one model, named by ``--model`` (a Hugging Face id, or a path on the volume,
  mounted at ``/models``), on 8000 with the OpenAI API under ``/v1``; ``GET /health`` answers once the model is
  loaded. Several GPUs split the model (``--tensor-parallel-size``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from apps.ai.models import Endpoint
from apps.releases import render

GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = "nvidia.com/gpu.present"  # set by NVIDIA's GPU feature discovery / GPU operator
GPU_TAINT = "nvidia.com/gpu"  # the taint GPU node pools usually carry (NoSchedule)


@dataclass(frozen=True)
class ServerKind:
    kind: str
    image: str
    port: int
    probe_path: str
    mount_path: str
    api_path: str  # where the API lives under the Service address ("/v1" for OpenAI-compatible servers)
    liveness_delay: int  # loading a model takes a while: no restart before this
    progress_deadline: int


KINDS = {
    Endpoint.Kind.OLLAMA: ServerKind(
        kind=Endpoint.Kind.OLLAMA,
        image="ollama/ollama:0.12.10",
        port=11434,
        probe_path="/",
        mount_path="/root/.ollama",
        api_path="",
        liveness_delay=30,
        progress_deadline=900,
    ),
    Endpoint.Kind.VLLM: ServerKind(
        kind=Endpoint.Kind.VLLM,
        image="vllm/vllm-openai:v0.11.0",
        port=8000,
        probe_path="/health",
        mount_path="/models",
        api_path="/v1",
        liveness_delay=600,
        progress_deadline=1800,
    ),
}


@dataclass(frozen=True)
class Volume:
    mode: str  # "none", "new" or "existing"
    claim: str = ""
    size: str = ""
    storage_class: str = ""
    access_mode: str = "ReadWriteOnce"
    mount_path: str = ""


@dataclass(frozen=True)
class ServerSettings:
    """The model server form's answers, with the kind's defaults already put in where a field was left empty."""

    name: str
    kind: str
    image: str
    models: tuple[str, ...]
    gpus: int
    gpu_resource: str
    node_selector: dict
    tolerations: tuple[dict, ...]
    volume: Volume
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    port: int


def default_claim(name: str) -> str:
    return f"{name}-models"


def base_url(kind: str, name: str, namespace: str, port: int) -> str:
    """The address of the server's Service inside the cluster (what pods, and the assistant, call)."""
    return f"http://{name}.{namespace}.svc.cluster.local:{port}{KINDS[kind].api_path}"


def served_name(model: str) -> str:
    """The name vLLM answers to for ``model``: a path on the volume is served under its last part."""
    return posixpath.basename(model.rstrip("/")) if model.startswith("/") else model


def _args(settings: ServerSettings) -> list[str]:
    if settings.kind != Endpoint.Kind.VLLM:
        return []
    model = settings.models[0]
    args = ["--model", model, "--port", str(settings.port)]
    if served_name(model) != model:
        args += ["--served-model-name", served_name(model)]
    if settings.gpus > 1:
        args += ["--tensor-parallel-size", str(settings.gpus)]
    return args


def _env(settings: ServerSettings) -> list[dict]:
    if settings.kind == Endpoint.Kind.OLLAMA:
        env = [{"name": "OLLAMA_HOST", "value": f"0.0.0.0:{settings.port}"}]
        if settings.volume.mode != "none":
            env.append({"name": "OLLAMA_MODELS", "value": posixpath.join(settings.volume.mount_path, "models")})
        return env
    # Weights downloaded by name land on the volume (kept across restarts), not in the container's layer.
    return [{"name": "HF_HOME", "value": settings.volume.mount_path}] if settings.volume.mode != "none" else []


def release_spec(settings: ServerSettings) -> dict:
    """The release spec (apps/releases/render.py) of a model server: one replica, the GPUs requested and limited,
    placed on GPU nodes and tolerating their taint, the model volume, probes on the kind's health path and a
    Service on the server's port."""
    kind = KINDS[settings.kind]
    probe = {"type": "http", "path": kind.probe_path, "port": settings.port}
    spec = render.default_spec()
    spec.update(
        image=settings.image,
        replicas=1,
        ports=[settings.port],
        env=_env(settings),
        resources={
            "cpu_request": settings.cpu_request,
            "cpu_limit": settings.cpu_limit,
            "memory_request": settings.memory_request,
            "memory_limit": settings.memory_limit,
        },
        readiness={**probe, "initial_delay": 5, "period": 10},
        liveness={**probe, "initial_delay": kind.liveness_delay, "period": 30},
        service={"enabled": True, "port": settings.port},
        node_selector=dict(settings.node_selector),
        progress_deadline_seconds=kind.progress_deadline,
    )
    if settings.gpus:
        spec["extra_resources"] = {settings.gpu_resource: settings.gpus}
    if settings.tolerations:
        spec["tolerations"] = [dict(t) for t in settings.tolerations]
    volume = settings.volume
    if volume.mode != "none":
        spec["volume"] = {
            "claim": volume.claim,
            "create": volume.mode == "new",
            "size": volume.size if volume.mode == "new" else "",
            "storage_class": volume.storage_class if volume.mode == "new" else "",
            "access_mode": volume.access_mode,
            "mount_path": volume.mount_path,
        }
    args = _args(settings)
    if args:
        spec["args"] = args
    return spec
