"""The question form: the question, the knowledge bases to search and the model server, each choice limited to
what the person may use with ``ai.ask``."""

from __future__ import annotations

from django import forms
from django.core.validators import MaxLengthValidator
from django.utils.translation import gettext_lazy as _

from apps.ai.assistant import services


class AskForm(forms.Form):
    question = forms.CharField(
        label=_("Question"),
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "class": "form-control",
                "placeholder": _("e.g. How do I renew the API server certificate?"),
            }
        ),
    )
    knowledge_bases = forms.ModelMultipleChoiceField(
        label=_("Knowledge bases"),
        queryset=None,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
    )
    endpoint = forms.ModelChoiceField(
        label=_("Model server"), queryset=None, empty_label=None, widget=forms.Select(attrs={"class": "form-select"})
    )
    model = forms.CharField(label=_("Model"), max_length=200, required=False)

    def __init__(self, *args, user, conversation=None, **kwargs):
        super().__init__(*args, **kwargs)
        longest = services.question_max()
        question = self.fields["question"]
        question.max_length = longest
        question.validators.append(MaxLengthValidator(longest))
        question.widget.attrs["maxlength"] = str(longest)
        self.fields["knowledge_bases"].queryset = services.askable_bases(user)
        self.fields["endpoint"].queryset = services.askable_endpoints(user)
        if conversation is not None and not self.is_bound:
            self.initial.setdefault("knowledge_bases", list(conversation.knowledge_bases.values_list("pk", flat=True)))
            if conversation.endpoint_id:
                self.initial.setdefault("endpoint", conversation.endpoint_id)
            self.initial.setdefault("model", conversation.model)
        elif not self.is_bound:
            self.initial.setdefault("knowledge_bases", [kb.pk for kb in self.fields["knowledge_bases"].queryset[:1]])

    def clean(self):
        data = super().clean()
        endpoint = data.get("endpoint")
        if endpoint is not None:
            names = services.model_names(endpoint)
            model = (data.get("model") or "").strip()
            if model and names and model not in names:
                self.add_error("model", _("This model server does not list that model."))
            data["model"] = model or (names[0] if names else "")
            if not data["model"]:
                self.add_error("endpoint", _("This model server lists no model yet: check it on its page first."))
        return data
