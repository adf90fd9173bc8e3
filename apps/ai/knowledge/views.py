"""Knowledge base pages: authorize, validate a form, call a service, render.

Reading (the list, a knowledge base, a document and its original, search) takes ai.view or ai.ask on the project;
the operations knowledge base is everyone's who holds either anywhere. Writing (create, change, delete, upload,
re-index) takes ai.knowledge on the project; the operations knowledge base is rebuilt by ``manage.py
ai_operations_kb``, not edited here. Missing and forbidden objects both answer 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.http import FileResponse, Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.capabilities import AI_ASK, AI_VIEW
from apps.ai import access
from apps.ai.knowledge import extract, indexing, searching, services, storage
from apps.ai.knowledge.forms import FilterForm, KnowledgeBaseForm, SearchForm, UploadForm
from apps.ai.models import Document, KnowledgeBase
from apps.core.deferred import Failure
from apps.core.htmx import render, stop_polling
from apps.core.redis import ServiceUnavailable

LIST = "ai/knowledge/knowledge_list.html"
DETAIL = "ai/knowledge/knowledge_detail.html"
FORM = "ai/knowledge/knowledge_form.html"
PER_PAGE = 50
POSITIONS_SHOWN = 200


def _reader(user) -> bool:
    return access.anywhere(user, AI_VIEW) or access.anywhere(user, AI_ASK)


@login_required
@require_GET
def knowledge_list(request):
    if not _reader(request.user):
        raise Http404
    bases = services.readable(request.user)
    projects = access.projects(request.user, AI_VIEW) | access.projects(request.user, AI_ASK)
    filters = FilterForm(request.GET or None, projects=projects.distinct())
    rows = filters.filter(bases).annotate(
        document_count=Count("documents", distinct=True),
        chunks=Sum("documents__chunk_count"),
        failed=Count("documents", filter=Q(documents__status=Document.Status.FAILED), distinct=True),
        indexing=Count("documents", filter=Q(documents__status=Document.Status.INDEXING), distinct=True),
    )
    page = Paginator(rows.order_by("-builtin", "name", "pk"), PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "query": query.urlencode(),
        "filters": filters,
        "may_create": services.writable_projects(request.user).exists(),
    }
    return render(request, LIST, context, partial="table")


@login_required
@require_http_methods(["GET", "POST"])
def knowledge_new(request):
    if not services.writable_projects(request.user).exists():
        raise Http404
    form = KnowledgeBaseForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            kb = services.create_knowledge_base(
                actor=request.user,
                project=data["project"],
                name=data["name"],
                description=data["description"],
                target=data["target"],
                chunk_size=data["chunk_size"],
                chunk_overlap=data["chunk_overlap"],
                request=request,
            )
        except services.KnowledgeError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, _("Knowledge base %(name)s is created: upload its documents.") % {"name": kb.name}
            )
            return redirect("ai:knowledge_detail", kb.pk)
    return render(request, FORM, {"form": form})


def _documents(kb: KnowledgeBase) -> list[Document]:
    rows = list(kb.documents.select_related("job", "uploaded_by").defer("positions").order_by("name", "pk"))
    for row in rows:
        indexing.follow_job(row)
    return rows


def _detail_context(request, kb: KnowledgeBase) -> dict:
    documents = _documents(kb)
    return {
        "kb": kb,
        "documents": documents,
        "busy": any(d.status == Document.Status.INDEXING for d in documents),
        "may_write": services.may_write(request.user, kb),
    }


@login_required
@require_GET
def knowledge_detail(request, pk: int):
    kb = services.readable_base(request.user, pk)
    context = _detail_context(request, kb)
    if context["may_write"]:
        context["upload_form"] = UploadForm()
    return render(request, DETAIL, context)


@login_required
@require_GET
def knowledge_progress(request, pk: int):
    """The documents table, polled every 2 s while a document is being indexed; 286 (stop polling) once none is."""
    kb = services.readable_base(request.user, pk)
    context = _detail_context(request, kb)
    if not context["busy"]:
        return stop_polling(request, f"{DETAIL}#documents", context)
    return render(request, f"{DETAIL}#documents", context)


@login_required
@require_http_methods(["GET", "POST"])
def knowledge_edit(request, pk: int):
    kb = services.writable_base(request.user, pk)
    form = KnowledgeBaseForm(request.POST or None, user=request.user, kb=kb)
    if request.method == "POST" and form.is_valid():
        values = {field: form.cleaned_data[field] for field in services.CHANGED_FIELDS}
        try:
            changed = services.change_knowledge_base(actor=request.user, kb=kb, values=values, request=request)
        except services.KnowledgeError as exc:
            form.add_error(None, str(exc))
        else:
            if {"chunk_size", "chunk_overlap"} & set(changed) and kb.documents.exists():
                messages.info(
                    request, _("The new chunking applies when the documents are indexed again: re-index them.")
                )
            messages.success(request, _("Knowledge base %(name)s is saved.") % {"name": kb.name})
            return redirect("ai:knowledge_detail", kb.pk)
    return render(request, FORM, {"form": form, "kb": kb})


@login_required
@require_POST
def knowledge_delete(request, pk: int):
    kb = services.writable_base(request.user, pk)
    name = kb.name
    try:
        services.delete_knowledge_base(actor=request.user, kb=kb, request=request)
    except services.KnowledgeError as exc:
        messages.error(request, str(exc))
        return redirect("ai:knowledge_detail", kb.pk)
    messages.success(request, _("Knowledge base %(name)s and its documents are removed.") % {"name": name})
    return redirect("ai:knowledge_list")


@login_required
@require_POST
def knowledge_reindex(request, pk: int):
    kb = services.writable_base(request.user, pk)
    try:
        count = services.reindex_knowledge_base(actor=request.user, kb=kb, request=request)
    except ServiceUnavailable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            ngettext(
                "%(count)s document is being indexed again.", "%(count)s documents are being indexed again.", count
            )
            % {"count": count},
        )
    return redirect("ai:knowledge_detail", kb.pk)


@login_required
@require_POST
def document_upload(request, pk: int):
    kb = services.writable_base(request.user, pk)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("ai:knowledge_detail", kb.pk)
    upload = form.cleaned_data["document"]
    try:
        document = services.upload_document(
            actor=request.user, kb=kb, name=upload.name, chunks=upload.chunks(), request=request
        )
    except (Failure, ServiceUnavailable) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(name)s is uploaded and being indexed.") % {"name": document.name})
    return redirect("ai:knowledge_detail", kb.pk)


@login_required
@require_GET
def document_detail(request, pk: int):
    document = indexing.follow_job(services.readable_document(request.user, pk))
    kb = document.knowledge_base
    positions = [
        {"ordinal": n, "start": p[0], "end": p[1], "page": p[2]}
        for n, p in enumerate(document.positions[:POSITIONS_SHOWN])
    ]
    context = {
        "document": document,
        "kb": kb,
        "positions": positions,
        "more_positions": max(0, len(document.positions) - POSITIONS_SHOWN),
        "may_write": services.may_write(request.user, kb),
    }
    return render(request, "ai/knowledge/document_detail.html", context)


@login_required
@require_GET
def document_download(request, pk: int):
    document = services.readable_document(request.user, pk)
    try:
        handle = storage.open_original(document)
    except storage.StorageFailure as exc:
        messages.error(request, str(exc))
        return redirect("ai:document_detail", document.pk)
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=document.name,
        content_type=document.content_type or extract.content_type(document.name),
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_POST
def document_reindex(request, pk: int):
    document = services.writable_document(request.user, pk)
    try:
        services.reindex_document(actor=request.user, document=document, request=request)
    except (Failure, ServiceUnavailable) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(name)s is being indexed again.") % {"name": document.name})
    return redirect("ai:knowledge_detail", document.knowledge_base_id)


@login_required
@require_POST
def document_delete(request, pk: int):
    document = services.writable_document(request.user, pk)
    name, kb_id = document.name, document.knowledge_base_id
    try:
        services.delete_document(actor=request.user, document=document, request=request)
    except services.KnowledgeError as exc:
        messages.error(request, str(exc))
        return redirect("ai:document_detail", document.pk)
    messages.success(request, _("%(name)s is removed with its chunks.") % {"name": name})
    return redirect("ai:knowledge_detail", kb_id)


@login_required
@require_GET
def knowledge_search(request):
    if not _reader(request.user):
        raise Http404
    bases = services.readable(request.user)
    form = SearchForm(request.GET or None, bases=bases)
    results = None
    if form.is_bound and form.is_valid() and form.cleaned_data["q"]:
        data = form.cleaned_data
        ids = [data["kb"].pk] if data["kb"] else list(bases.values_list("pk", flat=True))
        results = searching.search(
            request.user,
            data["q"],
            ids,
            top_k=data["top_k"],
            documents=[d.pk for d in data["document"]] or None,
        )
    return render(request, "ai/knowledge/knowledge_search.html", {"form": form, "results": results}, partial="results")
