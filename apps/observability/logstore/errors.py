"""What the log store door raises: one ``LogStoreError`` whose text is the sentence to show.

A ``deferred.Failure``, like ``prometheus.PrometheusError``: ``str()`` is the sentence in the language active when
it was raised (the page answering now), ``stored`` the deferred form a background reader (a download job, a stored
report) renders in its own language. ``NotConfigured`` and ``Unreachable`` say that asking again now is no use;
they are also reachable as ``LogStoreError.NotConfigured`` and ``LogStoreError.Unreachable`` so a caller that
imported only the base class can tell them apart.
"""

from __future__ import annotations

from apps.core.deferred import Failure


class LogStoreError(Failure):
    """The log store gave no usable answer, or the query was refused before it was sent."""

    NotConfigured: type[LogStoreError]
    Unreachable: type[LogStoreError]


class NotConfigured(LogStoreError):
    """The cluster has no log store address."""


class Unreachable(LogStoreError):
    """The log store did not answer in time, could not be reached, or refused Kubemate's credentials."""


LogStoreError.NotConfigured = NotConfigured
LogStoreError.Unreachable = Unreachable
