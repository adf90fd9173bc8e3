"""A web terminal session: who opened a shell in which container, when, how it ended and how much went through."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TerminalSession(models.Model):
    """Made by the console when a person asks for a shell (``services.open_session``); the terminal service claims
    it when the browser's websocket arrives (once, within ``CLAIM_SECONDS``) and ends it with its reason."""

    class State(models.TextChoices):
        WAITING = "waiting", _("Waiting for the browser")
        OPEN = "open", _("Open")
        ENDED = "ended", _("Ended")

    class End(models.TextChoices):
        CLOSED = "closed", _("Closed by the person")
        EXITED = "exited", _("The shell exited")
        IDLE = "idle", _("Idle too long")
        LIMIT = "limit", _("Reached the time limit")
        REFUSED = "refused", _("Refused by the cluster")
        UNREACHABLE = "unreachable", _("The cluster could not be reached")
        EXPIRED = "expired", _("The browser never connected")
        RESTARTED = "restarted", _("The terminal service restarted")
        TOO_LARGE = "too_large", _("Sent more than a terminal takes")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="terminal_sessions")
    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="terminal_sessions")
    namespace = models.CharField(_("namespace"), max_length=63)
    pod = models.CharField(_("pod"), max_length=253)
    container = models.CharField(_("container"), max_length=253)
    command = models.JSONField(_("command"), default=list)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.WAITING)
    end = models.CharField(_("end"), max_length=16, choices=End.choices, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    bytes_in = models.BigIntegerField(_("bytes typed"), default=0)
    bytes_out = models.BigIntegerField(_("bytes shown"), default=0)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("terminal session")
        verbose_name_plural = _("terminal sessions")
        indexes = [models.Index(fields=["state", "created_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} {self.namespace}/{self.pod}/{self.container} ({self.state})"
