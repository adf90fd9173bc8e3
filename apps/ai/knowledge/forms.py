"""The knowledge base form, the upload form, the list's filters and the search form, validated with sentences that
say what to write instead."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.accounts.models import Project
from apps.ai import retrieval
from apps.ai.knowledge import chunking, extract, services
from apps.ai.models import Document, KnowledgeBase
from apps.backups.models import Target

NAME_MAX = 100
DESCRIPTION_MAX = 2_000
DOCUMENT_CHOICES_MAX = 500


def _select(field: forms.Field) -> None:
    field.widget.attrs.setdefault("class", "form-select")


class KnowledgeBaseForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=NAME_MAX)
    project = forms.ModelChoiceField(
        label=gettext_lazy("Project"),
        queryset=Project.objects.none(),
        help_text=gettext_lazy("Only this project's people read it, in search and in the assistant's answers."),
        error_messages={
            "invalid_choice": gettext_lazy(
                "Choose one of your projects where you may build knowledge bases from the list."
            )
        },
    )
    description = forms.CharField(
        label=gettext_lazy("Description"), max_length=DESCRIPTION_MAX, required=False, widget=forms.Textarea
    )
    target = forms.ModelChoiceField(
        label=gettext_lazy("Storage target"),
        queryset=Target.objects.order_by("name"),
        required=False,
        empty_label=gettext_lazy("The console's disk"),
        help_text=gettext_lazy(
            "Where uploaded documents are kept: an S3 target of the backups, or the console's disk. Documents already "
            "uploaded stay where they are."
        ),
    )
    chunk_size = forms.IntegerField(
        label=gettext_lazy("Chunk size (characters)"),
        min_value=chunking.SIZE_MIN,
        max_value=chunking.SIZE_MAX,
        initial=800,
        help_text=gettext_lazy(
            "Text is cut into chunks of at most this many characters, at paragraph or sentence ends."
        ),
    )
    chunk_overlap = forms.IntegerField(
        label=gettext_lazy("Overlap (characters)"),
        min_value=0,
        initial=120,
        help_text=gettext_lazy(
            "How much of the end of a chunk the next one repeats, so no sentence loses its context."
        ),
    )

    def __init__(self, *args, user, kb: KnowledgeBase | None = None, **kwargs):
        if kb is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": kb.name,
                "project": kb.project_id,
                "description": kb.description,
                "target": kb.target_id,
                "chunk_size": kb.chunk_size,
                "chunk_overlap": kb.chunk_overlap,
            }
        super().__init__(*args, **kwargs)
        self.kb = kb
        if kb is None:
            self.fields["project"].queryset = services.writable_projects(user)
        else:
            del self.fields["project"]  # its chunks carry the project: a knowledge base does not move
        _select(self.fields["target"])
        if "project" in self.fields:
            _select(self.fields["project"])
        self.fields["description"].widget.attrs["rows"] = 3

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name or not all(ch.isprintable() for ch in name):
            raise ValidationError(_("Give it a name people recognise, such as Payments runbooks."))
        return name

    def clean(self):
        data = super().clean()
        size, overlap = data.get("chunk_size"), data.get("chunk_overlap")
        if size is not None and overlap is not None and overlap > chunking.overlap_max(size):
            self.add_error(
                "chunk_overlap",
                _("The overlap is at most half the chunk size (%(limit)s).") % {"limit": chunking.overlap_max(size)},
            )
        return data


class UploadForm(forms.Form):
    document = forms.FileField(
        label=gettext_lazy("Document"),
        help_text=gettext_lazy("Text, Markdown, HTML, PDF or Word (docx), at most %(limit)s MiB."),
        error_messages={"required": gettext_lazy("Choose a file to upload.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["document"]
        field.help_text = field.help_text % {"limit": extract.max_bytes() // extract.MiB}
        field.widget.attrs.update({"accept": extract.accepted(), "class": "form-control"})

    def clean_document(self):
        """The format and size, before the file is copied anywhere (the content is checked when it is stored)."""
        upload = self.cleaned_data["document"]
        try:
            extract.check_upload(services.clean_name(upload.name), upload.size)
        except extract.ExtractError as exc:
            raise ValidationError(str(exc)) from None
        return upload


class FilterForm(forms.Form):
    project = forms.ModelChoiceField(
        label=gettext_lazy("Project"), queryset=Project.objects.none(), required=False, empty_label=gettext_lazy("All")
    )
    q = forms.CharField(label=gettext_lazy("Name"), max_length=100, required=False)

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
        _select(self.fields["project"])

    def filter(self, rows):
        if not self.is_valid():
            return rows
        if self.cleaned_data["project"] is not None:
            rows = rows.filter(project=self.cleaned_data["project"])
        if self.cleaned_data["q"]:
            rows = rows.filter(name__icontains=self.cleaned_data["q"])
        return rows


class SearchForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Question or words"), max_length=retrieval.QUESTION_MAX, required=False)
    kb = forms.ModelChoiceField(
        label=gettext_lazy("Knowledge base"),
        queryset=KnowledgeBase.objects.none(),
        required=False,
        empty_label=gettext_lazy("Every knowledge base I may read"),
    )
    top_k = forms.IntegerField(
        label=gettext_lazy("Results"), min_value=1, max_value=retrieval.TOP_K_MAX, initial=5, required=False
    )
    document = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Only these documents"), queryset=Document.objects.none(), required=False
    )

    def __init__(self, *args, bases, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kb"].queryset = bases.order_by("-builtin", "name")
        _select(self.fields["kb"])
        chosen = self.data.get("kb") if self.is_bound else None
        documents = Document.objects.none()
        if chosen and str(chosen).isdigit():
            documents = Document.objects.filter(knowledge_base__in=bases, knowledge_base_id=int(chosen)).order_by(
                "name"
            )[:DOCUMENT_CHOICES_MAX]
            documents = Document.objects.filter(pk__in=[d.pk for d in documents]).order_by("name")
        self.fields["document"].queryset = documents
        self.fields["document"].widget.attrs.update({"class": "form-select", "size": 4})

    def clean_q(self) -> str:
        return " ".join((self.cleaned_data.get("q") or "").split())

    def clean_top_k(self) -> int:
        return self.cleaned_data.get("top_k") or 5
