"""Demo AI: the local model server (SmolLM2 on llama-cpp-python, started by deploy/local/ai_services) registered as
a platform endpoint, the operations knowledge base built, a Payments knowledge base of three runbooks indexed by the
demo's worker, an Ollama model server deployed in the Payments namespace on the sandbox's GPU node (kwok: it shows
on the GPU pages; nothing answers inside it), and one question asked and answered with citations. Every change goes
through the services as the demo administrator, so it is audited like any other. Idempotent.

Milvus' address and the model server's come from the environment deploy/local/ai_services writes (.run/ai/env),
which `make demo` exports to this command."""

from __future__ import annotations

import os
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Project
from apps.ai.assistant import services as assistant
from apps.ai.knowledge import services as knowledge
from apps.ai.models import Document, Endpoint, KnowledgeBase
from apps.ai.servers import services as servers
from apps.ai.servers import spec as server_spec
from apps.clusters.models import Cluster

RUNBOOKS = {
    "settlement.md": """# Nightly card settlement

The payments gateway settles card transactions every night at 02:30 (Asia/Shanghai). When the settlement batch
fails, rerun it with the job `pay-settle-rerun` in the payments namespace, then tell the treasury desk (ext. 4411)
the batch number and the time it finished. Never rerun it twice: the second run books every transaction again.
""",
    "certificates.md": """# Payment gateway certificates

The gateway's TLS certificate is issued by the bank's internal CA and lasts 398 days. Thirty days before it ends,
open a change request, ask the PKI team for a new certificate, store it in the Secret `pay-gateway-tls` and roll the
`pay-api` release: the pods read the certificate only when they start.
""",
    "capacity.md": """# Capacity for the salary peak

On the 25th of each month salaries are paid and the payments API takes three times its usual traffic. Two days
before, raise the `pay-api` autoscaler's minimum to 6 replicas and check that the database connection pool (200)
still covers every replica; lower it again on the 27th.
""",
}
QUESTION = "What do I do when the nightly settlement batch fails?"


class Command(BaseCommand):
    help = "Register the local model server, build the knowledge bases, deploy a GPU model server, ask a question."

    def add_arguments(self, parser):
        parser.add_argument("--cluster", default="sandbox")
        parser.add_argument("--actor", default="admin")
        parser.add_argument("--wait", type=int, default=180, help="seconds to wait for the worker's indexing")

    def handle(self, *args, cluster, actor, wait, **options):
        admin = get_user_model().objects.filter(username=actor).first()
        found = Cluster.objects.filter(name=cluster).first()
        project = Project.objects.filter(cluster=found, slug="payments").first() if found else None
        if admin is None or project is None:
            raise CommandError(f"run demo_admin, register_sandbox and demo_data first (user {actor}, {cluster})")
        llm_url = getattr(settings, "KUBEMATE_AI_LLM_URL", "") or _env("KUBEMATE_AI_LLM_URL")
        if not settings.KUBEMATE_MILVUS_URI or not llm_url:
            raise CommandError("KUBEMATE_MILVUS_URI and KUBEMATE_AI_LLM_URL are unset: run deploy/local/ai_services up")
        endpoint = Endpoint.objects.filter(name="local-smollm2").first() or servers.register_endpoint(
            actor=admin,
            name="local-smollm2",
            project=None,
            kind=Endpoint.Kind.OPENAI,
            base_url=llm_url,
            api_key_encrypted=None,
            default_model=_env("KUBEMATE_AI_LLM_MODEL") or "smollm2-135m-instruct",
        )
        self.stdout.write(f"Endpoint {endpoint.name}: {llm_url}")
        call_command("ai_operations_kb", stdout=self.stdout)
        kb = KnowledgeBase.objects.filter(project=project, name="Payments runbooks").first()
        if kb is None:
            kb = knowledge.create_knowledge_base(
                actor=admin,
                project=project,
                name="Payments runbooks",
                description="How the payments team runs settlement, certificates and the salary peak.",
                chunk_size=500,
                chunk_overlap=80,
            )
        for name, text in RUNBOOKS.items():
            if not Document.objects.filter(knowledge_base=kb, name=name).exists():
                knowledge.upload_document(actor=admin, kb=kb, name=name, chunks=[text.encode()])
        deadline = time.monotonic() + wait
        while Document.objects.filter(knowledge_base=kb).exclude(status=Document.Status.INDEXED).exists():
            if time.monotonic() > deadline:
                raise CommandError("the demo worker did not index the runbooks in time: see .run/demo/worker.log")
            time.sleep(1)
        self.stdout.write(f"Knowledge base {kb.name}: {kb.documents.count()} documents indexed")
        self._server(admin, project)
        if not admin.ai_conversations.exists():
            reply = assistant.ask(
                actor=admin,
                question=QUESTION,
                knowledge_base_ids=[kb.pk],
                endpoint=endpoint,
                model=endpoint.default_model,
            )
            text = "".join(assistant.answer(reply))
            self.stdout.write(f"Asked {QUESTION!r}: {len(text)} characters, {len(reply.citations)} citations")

    def _server(self, admin, project) -> None:
        if Endpoint.objects.filter(name="pay-llm").exists():
            return
        settings_ = server_spec.ServerSettings(
            name="pay-llm",
            kind="ollama",
            image=server_spec.KINDS["ollama"].image,
            models=("qwen2.5:0.5b",),
            gpus=1,
            gpu_resource=server_spec.GPU_RESOURCE,
            node_selector={server_spec.GPU_NODE_LABEL: "true"},
            tolerations=({"key": server_spec.GPU_TAINT, "operator": "Exists", "effect": "NoSchedule"},),
            volume=server_spec.Volume(
                mode="new",
                claim=server_spec.default_claim("pay-llm"),
                size="20Gi",
                mount_path=server_spec.KINDS["ollama"].mount_path,
            ),
            cpu_request="2",
            cpu_limit="8",
            memory_request="8Gi",
            memory_limit="16Gi",
            port=server_spec.KINDS["ollama"].port,
        )
        try:
            servers.deploy_server(actor=admin, project=project, namespace="payments", settings=settings_)
        except servers.ServerError as exc:
            self.stdout.write(f"The model server was not deployed: {exc}")
            return
        self.stdout.write("Model server pay-llm deployed in payments (1 GPU)")


def _env(name: str) -> str:
    return os.environ.get(name, "")
