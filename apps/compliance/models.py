"""Compliance: where the audit log goes beyond the console (syslog receivers of the bank's SIEM)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class SyslogDestination(models.Model):
    """A syslog receiver every audit event is sent to, in order, from the event after ``cursor``.

    The audit log itself is the queue: events stay in PostgreSQL, and ``cursor`` is the chain position (``seq``)
    of the last event the receiver confirmed (forwarding/syslog.py says how a TCP or TLS receiver confirms). A
    receiver that is down holds the cursor where it is; when it is back, delivery resumes from there, in order.
    """

    class Transport(models.TextChoices):
        TLS = "tls", _("TCP with TLS (RFC 5425)")
        TCP = "tcp", _("TCP without encryption")
        UDP = "udp", _("UDP (RFC 5426; a lost datagram is not sent again)")

    class Format(models.TextChoices):
        JSON = "json", _("JSON")
        CEF = "cef", _("CEF (ArcSight Common Event Format)")

    name = models.CharField(_("name"), max_length=63, unique=True)
    host = models.CharField(_("host"), max_length=255)
    port = models.PositiveIntegerField(_("port"), validators=[MinValueValidator(1), MaxValueValidator(65535)])
    transport = models.CharField(_("transport"), max_length=8, choices=Transport.choices, default=Transport.TLS)
    ca_pem = models.TextField(_("CA certificates (PEM)"), blank=True)
    server_name = models.CharField(_("name in the receiver's certificate"), max_length=255, blank=True)
    format = models.CharField(_("format"), max_length=8, choices=Format.choices, default=Format.JSON)
    enabled = models.BooleanField(_("enabled"), default=True)
    cursor = models.BigIntegerField(_("last event delivered"), default=0)
    delivered_at = models.DateTimeField(_("last delivery"), null=True, blank=True)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    # A deferred sentence (apps/core/deferred.py), read in the reader's language.
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("syslog destination")
        verbose_name_plural = _("syslog destinations")

    def __str__(self) -> str:
        return self.name

    @property
    def last_error_text(self) -> str:
        """The last error in the reader's language."""
        from apps.core import deferred

        return deferred.render(self.last_error)
