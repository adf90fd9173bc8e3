"""Kubemate: a Kubernetes operations console for regulated private clouds."""

from apps.core.memory import limit_arenas

limit_arenas()  # before any thread starts: apps/core/memory.py

from kubemate.celery import app as celery_app  # noqa: E402

__version__ = "0.2.0"
__all__ = ["__version__", "celery_app"]
