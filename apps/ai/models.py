"""AI state: the model servers Kubemate talks to, the knowledge bases of each project with their documents, and
each person's conversations with the assistant.

- ``Endpoint``: an OpenAI-compatible (or Ollama) model server. Either a release Kubemate deployed from the model
  server form (``release`` set: Ollama or vLLM on the project's GPU nodes) or an external endpoint registered by
  URL with an encrypted API key. ``project`` empty means the whole platform may use it (registered by ``ai.admin``).
- ``KnowledgeBase``: a project's documents, split into chunks, embedded and stored in one Milvus collection with
  their knowledge base, project, document and position. ``version`` grows with every change of what retrieval can
  return, so cached answers of an older version are never served. ``builtin`` marks the operations knowledge base
  (Kubemate's own runbooks), which has no project and is readable by everyone who may ask.
- ``Document``: an uploaded file, kept on the project's S3 target when one is configured, else on disk, and its
  indexing state; indexing is a ``core.Job``.
- ``Conversation`` / ``Message``: a person's questions and the assistant's answers with their citations, whether
  the answer came from the cache, and how long it took.

Keys are stored encrypted (``core.crypto``) and never shown again.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Project
from apps.core import crypto


class Endpoint(models.Model):
    class Kind(models.TextChoices):
        OLLAMA = "ollama", _("Ollama")
        VLLM = "vllm", _("vLLM")
        OPENAI = "openai", _("OpenAI-compatible")

    name = models.CharField(_("name"), max_length=63)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.OPENAI)
    project = models.ForeignKey(
        Project,
        verbose_name=_("project"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="ai_endpoints",
        help_text=_("Empty: every project may use it."),
    )
    release = models.OneToOneField(
        "releases.Release",
        verbose_name=_("release"),
        null=True,
        blank=True,
        # A server is its release: removing the release (from the releases page too) removes the endpoint, which
        # would otherwise linger as an "external" endpoint at an address nothing answers any more.
        on_delete=models.CASCADE,
        related_name="model_server",
    )
    base_url = models.URLField(_("address"), max_length=300, blank=True, help_text=_("e.g. http://10.0.0.5:8000/v1"))
    api_key_encrypted = models.TextField(blank=True, editable=False)
    ca_pem = models.TextField(_("certificate authority (PEM)"), blank=True)
    default_model = models.CharField(_("default model"), max_length=200, blank=True)
    # What the server said it serves, the last time it was asked: [{"name": ..., "size": ..., "family": ...}].
    served_models = models.JSONField(_("models"), default=list, blank=True, editable=False)
    checked_at = models.DateTimeField(_("last checked"), null=True, blank=True, editable=False)
    # A deferred sentence (core.deferred) for the reader's language, or empty when the last check succeeded.
    last_error = models.TextField(_("last error"), blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("registered"), auto_now_add=True)

    class Meta:
        verbose_name = _("model endpoint")
        verbose_name_plural = _("model endpoints")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="ai_endpoint_name_per_project"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(project__isnull=True), name="ai_endpoint_name_platform"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""


class KnowledgeBase(models.Model):
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    project = models.ForeignKey(
        Project,
        verbose_name=_("project"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="knowledge_bases",
    )
    builtin = models.BooleanField(_("built in"), default=False, editable=False)
    target = models.ForeignKey(
        "backups.Target",
        verbose_name=_("storage target"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Where uploaded documents are kept; empty: on the console's disk."),
    )
    chunk_size = models.PositiveIntegerField(_("chunk size (characters)"), default=800)
    chunk_overlap = models.PositiveIntegerField(_("overlap (characters)"), default=120)
    # Grows with every change of what retrieval may return (a document indexed, re-indexed or deleted).
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("knowledge base")
        verbose_name_plural = _("knowledge bases")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="ai_kb_name_per_project"),
            models.UniqueConstraint(fields=["builtin"], condition=models.Q(builtin=True), name="ai_kb_one_builtin"),
        ]

    def __str__(self) -> str:
        return self.name


class Document(models.Model):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        INDEXING = "indexing", _("Indexing")
        INDEXED = "indexed", _("Indexed")
        FAILED = "failed", _("Failed")

    class Storage(models.TextChoices):
        S3 = "s3", _("Object storage")
        DISK = "disk", _("Disk")

    knowledge_base = models.ForeignKey(
        KnowledgeBase, verbose_name=_("knowledge base"), on_delete=models.CASCADE, related_name="documents"
    )
    name = models.CharField(_("name"), max_length=255)
    content_type = models.CharField(_("type"), max_length=100, blank=True)
    size = models.BigIntegerField(_("size"), default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    storage = models.CharField(_("stored on"), max_length=8, choices=Storage.choices, default=Storage.DISK)
    storage_key = models.CharField(max_length=500, blank=True, editable=False)
    target = models.ForeignKey(
        "backups.Target", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.UPLOADED)
    chunk_count = models.PositiveIntegerField(_("chunks"), default=0)
    characters = models.PositiveIntegerField(_("characters"), default=0)
    # Where each chunk came from, by ordinal (Milvus' ``position``): [start, end, page or null], offsets in the
    # extracted text. Kept here, not in Milvus, so the vectors' schema stays the same for every source.
    positions = models.JSONField(_("chunk positions"), default=list, blank=True, editable=False)
    # A deferred sentence (core.deferred) saying why indexing failed, read in the reader's language.
    error = models.TextField(_("error"), blank=True)
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(_("uploaded"), auto_now_add=True)
    indexed_at = models.DateTimeField(_("indexed"), null=True, blank=True)

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["knowledge_base", "name"], name="ai_document_name_per_kb")]

    def __str__(self) -> str:
        return self.name


class Conversation(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="ai_conversations"
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    knowledge_bases = models.ManyToManyField(KnowledgeBase, verbose_name=_("knowledge bases"), blank=True)
    endpoint = models.ForeignKey(
        Endpoint, verbose_name=_("model server"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.CharField(_("model"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("started"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title or str(self.pk)

    def get_absolute_url(self) -> str:
        return reverse("ai:conversation", args=[self.pk])


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", _("Question")
        ASSISTANT = "assistant", _("Answer")

    conversation = models.ForeignKey(
        Conversation, verbose_name=_("conversation"), on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices)
    text = models.TextField(_("text"), blank=True)
    # The retrieved chunks the answer was given: [{"document": id, "knowledge_base": id, "name": ..., "position": n,
    # "score": 0.83, "excerpt": ...}]
    citations = models.JSONField(_("citations"), default=list, blank=True)
    model = models.CharField(_("model"), max_length=200, blank=True)
    cache_hit = models.BooleanField(_("from the cache"), null=True, blank=True)
    retrieval_ms = models.PositiveIntegerField(_("retrieval (ms)"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), null=True, blank=True)
    # A deferred sentence (core.deferred) when no answer came: which part was down.
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.role} {self.pk}"
