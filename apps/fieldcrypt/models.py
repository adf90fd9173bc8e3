"""Each project's field-encryption keys: versioned, the newest unretired one seals, older ones still open."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core import crypto


class ProjectKey(models.Model):
    """One version of a project's data key; the key itself is stored encrypted at rest (core.crypto)."""

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="field_keys")
    version = models.PositiveIntegerField(_("version"))
    key_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    retired_at = models.DateTimeField(_("retired"), null=True, blank=True)

    class Meta:
        ordering = ["project", "-version"]
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="fieldcrypt_key_version")]
        verbose_name = _("field encryption key")

    def __str__(self) -> str:
        return f"{self.project} v{self.version}"

    @property
    def key(self) -> bytes:
        return bytes.fromhex(crypto.decrypt(self.key_encrypted))

    def set_key(self, key: bytes) -> None:
        self.key_encrypted = crypto.encrypt(key.hex())


class KeyReader(models.Model):
    """A ServiceAccount allowed to read the project's key Secret (the app whose pod decrypts)."""

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="field_key_readers")
    namespace = models.CharField(_("namespace"), max_length=63)
    service_account = models.CharField(_("service account"), max_length=253)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "namespace", "service_account"], name="fieldcrypt_reader")
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service_account}"


class SealedField(models.Model):
    """A ConfigMap or Secret field whose value Kubemate replaced by its envelope (re-sealed on rotation)."""

    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="sealed_fields")
    kind = models.CharField(_("kind"), max_length=20, choices=[("ConfigMap", "ConfigMap"), ("Secret", "Secret")])
    namespace = models.CharField(_("namespace"), max_length=63)
    name = models.CharField(_("name"), max_length=253)
    field = models.CharField(_("field"), max_length=253)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "namespace", "name", "field", "project"], name="fieldcrypt_field")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name} {self.field}"
