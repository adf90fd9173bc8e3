"""Default settings: the environment-driven base (development, demo, tests)."""

from kubemate.settings.base import *  # noqa: F403
