"""Chinese all the way through: every page and partial of the console, read in Chinese, holds no English word
outside an allow-list (issue: the operator's day, item 3).

The pages come from the URL sweep's table (tests/test_url_sweep.py) and its world of rows, each asked as a page
and, where the view answers one, as the htmx partial. What a page shows from the world (object names, images,
labels, what the cluster said, user names) is data, not the console's words: the words of every row are allowed.
The rest must be Chinese, or on the list below: Kubernetes kinds (shown with their Chinese gloss), protocol and
product names, units.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.accounts.models import Project, Role
from apps.ai.models import Conversation, Document, Endpoint, KnowledgeBase, Message
from apps.cicd.models import BaseImage, Pipeline, Registry, ScanException
from apps.clusters.models import Cluster, Resource
from apps.compliance.models import AccessReview, AccessReviewItem, ApprovalPolicy, ChangeRequest, ChangeWindow
from apps.core.models import AuditEvent, Job, JobLogLine
from apps.inspection.models import DatabaseTarget, HostAgent
from apps.inspection.models import Finding as InspectionFinding
from apps.inspection.models import Schedule as InspectionSchedule
from apps.inspection.models import Template as InspectionTemplate
from apps.observability.models import AlertRule, Receiver
from apps.releases.models import Release, Revision
from tests.test_url_sweep import ERROR_MARKS, LIVE, ROUTES, body, live_world, url_of, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

# Words a Chinese page may hold: Kubernetes' own names, protocols, formats, products, units.
ALLOWED_WORDS = """
    Kubemate Kubernetes kubectl kubeconfig YAML JSON CSV HTTP HTTPS TCP UDP IP IPs DNS URL API RBAC HPA LDAP TLS
    CA PromQL LogsQL Prometheus Redis PostgreSQL Celery SHA sha AES GCM Fernet OIDC SSO ID UID CPU CPUs GPU PDB
    Pod Pods Deployment Deployments StatefulSet DaemonSet ReplicaSet ReplicaSets Job CronJob Service Services
    EndpointSlice Ingress HTTPRoute Gateway ConfigMap Secret Secrets PersistentVolumeClaim PersistentVolume
    StorageClass HorizontalPodAutoscaler Event Node Nodes Namespace ServiceAccount ClusterRole
    ClusterRoleBinding Role RoleBinding GatewayClass NAME FILE NAME_FILE kubemate decrypt Ki Mi Gi Ti KiB MiB
    GiB TiB ms GET POST Accept django axes
    CI CD Jar jar War war SBOM OSV zip Maven Debian Ubuntu Alpine PyPI npm Go CVE GHSA JNDI PEM OCI Harbor Nexus MB KB
    manifest Webhook webhook Tekton PipelineRun TaskRun Dockerfile Git git JVM Tomcat Spring Boot CycloneDX CVSS
    Kaniko HMAC Worker JAVA_TOOL_OPTIONS CATALINA_OPTS OPTIONS OPTS TOOL java catalina run harbor-prod
    Velero velero S s AWS Ceph versitygw rclone etcdctl etcdutl kubeadm systemd pki etc ENCRYPTION KEYS
    initial-advertise-peer-urls etcd-nightly backup-store prod
    AI GPUs MIG NVIDIA NVIDIA's DCGM Ollama vLLM OpenAI OpenAI-compatible Milvus HTML Markdown Word docx pdf txt md
    Docker Hub Hugging Face ResourceQuota ResourceQuotas ReadWriteOnce ReadWriteMany llama.cpp SmolLM2
    SIEM syslog RFC CEF ArcSight rsyslog syslog-ng Splunk QRadar
"""
ALLOWED = frozenset(ALLOWED_WORDS.split()) | {
    "English",  # the language switcher names each language in itself
    "bank-llm-gateway",
    "llm-chat",  # example names the model server and endpoint forms give
    "models",  # vLLM's model folder (/models) and the volume claim's default name (<name>-models)
    "CHG",  # a change-ticket number in the reason field's example
    "UTC",  # time zone names (Asia/Shanghai, UTC) are IANA's
    "ClusterIP",
    "NodePort",
    "LoadBalancer",
    "ExternalName",  # Service types are Kubernetes' names
    "Shell",  # as Chinese consoles write it (在容器中打开 Shell)
    "bash",
    "sh",  # the shells the terminal offers, named as their programs are
    "log",  # the file type of a downloaded log (.log)
    "managedFields",  # Kubernetes' field name, beside its Chinese explanation
    # The Prometheus Operator's kinds Kubemate writes, and the object of the built-in rules.
    "Operator",
    "PrometheusRule",
    "AlertmanagerConfig",
    "kubemate-builtin",
    "PaymentsMemoryHigh",
    "AppMemoryHigh",  # alert names as the help texts' examples write them
    "Webhook",  # as Chinese consoles write it (Webhook 地址)
    "SMTP",
    "amtool",
    "check-config",  # Alertmanager's checker, named as its command is
    "yml",  # alertmanager.yml, the file's name
    # Product and format names the help texts name.
    "Alertmanager",
    "Jaeger",
    "Loki",
    "VictoriaLogs",
    "LogQL",
    "NDJSON",
    "Traefik",
    "Span",  # as Chinese tracing consoles write it (Span 列表)
    "OrgID",
    "AccountID",
    "ProjectID",
    "x-tenant",
    "X-Scope-OrgID",
    "Bearer",
    "PEM",
    "metrics-server",
    "kubemate-decrypt",
    # Kubernetes field and object names a help text quotes: allocatable, the RBAC file and namespace of the install.
    "allocatable",
    "kubemate-rbac",
    "kubemate-system",
    # The syntax a field takes, as its help text writes it: NAME=value, NAME=configmap:name/key,
    # registry/repository:tag, key=value, a label selector such as tier=web,app!=db, a name such as prod-bj-1.
    "value",
    "key",
    "configmap",
    "repository",
    "tag",
    "yaml",
    "tier",
    "web",
    "db",
    "prod-bj",
    "staging",
    "dev",
    "team",
    "deploy",
    # Inspection: the report's file format, cron's own name, the engines and protocols the checks read.
    "PDF",
    "cron",
    "MySQL",
    "MariaDB",
    "SNTP",
    "JVM",
    "Java",
    "InnoDB",
    "etcd",
    "inode",
    "root",  # the Unix account, as Chinese documentation writes it (root 用户)
}
# A word, not a unit glued to its number (kubectl's ages "5m", "336d"; "32Gi"): units are allowed.
WORD = re.compile(r"(?<![0-9A-Za-z])(?:[A-Za-z][A-Za-z'’-]*[A-Za-z]|[A-Za-z])")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SKIP_TAGS = {"script", "style", "template", "code", "pre", "textarea"}
SHOWN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt", "data-confirm", "hx-confirm", "label")


class Text(HTMLParser):
    """The text a person reads on a page: its text nodes and the attributes shown as text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipped: list[str] = []  # the open elements of the part being skipped, outermost first

    def handle_starttag(self, tag, attrs):
        if self.skipped:
            if tag not in VOID:
                self.skipped.append(tag)
            return
        # Code, and anything the page marks translate="no" (Kubernetes' own API words, log lines), is data.
        if tag in SKIP_TAGS or ("translate", "no") in attrs:
            if tag not in VOID:
                self.skipped.append(tag)
            return
        # A translated status word keeps Kubernetes' own word in its tooltip (data-word): that tooltip is meant.
        keeps_original = any(name == "data-word" for name, _value in attrs)
        for name, value in attrs:
            if name == "title" and keeps_original:
                continue
            if name in SHOWN_ATTRIBUTES and value:
                self.parts.append(value)
            if name == "type" and value == "hidden":
                break
            if tag == "input" and name == "value" and value and ("type", "submit") in attrs:
                self.parts.append(value)

    def handle_endtag(self, tag):
        # Close up to the matching element (HTML lets some end tags go unwritten).
        if tag in self.skipped:
            while self.skipped.pop() != tag:
                pass

    def handle_data(self, data):
        if not self.skipped:
            self.parts.append(data)


IDENTIFIERS = re.compile(r"https?://\S+|\{[a-z_]+\}|\b[\w<>-]+(?:[.:][\w<>-]+)+")
IPV6 = re.compile(r"\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,}(?:/\d+)?", re.IGNORECASE)


def shown_text(html: str) -> str:
    parser = Text()
    parser.feed(html)
    text = IPV6.sub(" ", " ".join(parser.parts))
    # Addresses, dotted identifiers (org.apache.logging.log4j:log4j-core) and the {placeholders} the page script
    # fills in are not words of the console.
    return IDENTIFIERS.sub(" ", text)


def data_words() -> set[str]:
    """Every word the world's rows hold: what pages show of them is data."""
    texts: list[str] = []
    for row in Resource.objects.all():
        texts += [row.name, row.namespace, str(row.summary), str(row.labels)]
        texts += re.findall(r'"(?:image|reason|message|note)": "([^"]*)"', str(row.object).replace("'", '"'))
    for cluster in Cluster.objects.all():
        texts += [cluster.name, cluster.environment, cluster.region, cluster.api_server]
    for user in get_user_model().objects.all():
        texts += [user.username, user.first_name, user.last_name, user.email]
    for project in Project.objects.all():
        texts += [project.slug, project.name, *project.namespaces]
    for role in Role.objects.all():
        texts += [role.slug]
    for release in Release.objects.all():
        texts += [release.name, release.namespace, str(release.spec)]
    for revision in Revision.objects.all():
        texts += [str(revision.spec)]
    for job in Job.objects.all():
        texts += [job.kind, job.target, job.title if "\u2063" not in job.title else ""]
    texts += list(JobLogLine.objects.values_list("message", flat=True))
    for receiver in Receiver.objects.all():
        texts += [receiver.name, str(receiver.options)]
    for rule in AlertRule.objects.all():
        texts += [rule.name, rule.alert, rule.summary, rule.expr, rule.namespace]
    for event in AuditEvent.objects.all():
        texts += [event.action, event.actor_name, event.object_kind, event.object_name, event.cluster]
    for template in InspectionTemplate.objects.exclude(builtin=True):
        texts += [template.name, template.slug, template.description]
    for schedule in InspectionSchedule.objects.all():
        texts += [schedule.name, schedule.cron, schedule.timezone, *schedule.recipients]
    for finding in InspectionFinding.objects.all():
        texts += [
            finding.subject,
            finding.check_id,
            finding.target,
            finding.message if "\u2063" not in finding.message else "",
        ]
    for registry in Registry.objects.all():
        texts += [registry.name, registry.host, registry.prefix, registry.username]
    for base in BaseImage.objects.all():
        texts += [base.name, base.reference, base.digest, base.digest[7:19], base.description]
    for pipeline in Pipeline.objects.all():
        texts += [
            pipeline.name,
            pipeline.namespace,
            pipeline.description,
            pipeline.repository,
            pipeline.git_url,
            pipeline.git_branch,
            pipeline.jvm_options,
            pipeline.schedule,
            pipeline.image_repository,
        ]
    for exception in ScanException.objects.all():
        texts += [exception.vuln_id, exception.package, exception.reason]
    for agent in HostAgent.objects.all():
        texts += [agent.name, agent.url, agent.node_name]
    for target in DatabaseTarget.objects.all():
        texts += [target.name, target.host, target.database, target.username]
    for endpoint in Endpoint.objects.all():
        texts += [endpoint.name, endpoint.base_url, endpoint.default_model]
    for kb in KnowledgeBase.objects.all():
        texts += [kb.name, kb.description]
    for document in Document.objects.all():
        texts += [document.name, document.content_type]
    for conversation in Conversation.objects.all():
        texts += [conversation.title]
    for message in Message.objects.all():
        texts += [message.text, message.model, *(str(c.get("excerpt", "")) for c in message.citations)]
    for change in ChangeRequest.objects.all():
        texts += [change.kind, change.name, change.reason, change.ticket, str(change.manifests), change.diff]
    for policy in ApprovalPolicy.objects.all():
        texts += [policy.name, str(policy.cluster_labels)]
    for window in ChangeWindow.objects.all():
        texts += [window.name, window.time_zone, window.reason, str(window.cluster_labels)]
    for review in AccessReview.objects.all():
        texts += [review.period]
    for item in AccessReviewItem.objects.all():
        texts += [item.subject, item.role_zh or item.role, *item.members, *item.capabilities]
    return {w for text in texts for w in WORD.findall(str(text))}


ALLOWED_LOWER = {w.lower() for w in ALLOWED}


def english_words(html: str, allowed: set[str]) -> list[str]:
    """Words of the page outside the allow-list (any case) and the world's data (exactly as the data writes them)."""
    return sorted({w for w in WORD.findall(shown_text(html)) if w not in allowed and w.lower() not in ALLOWED_LOWER})


def test_every_page_and_partial_reads_in_chinese(world):  # noqa: F811
    browser = world.browsers["permitted"]
    browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    allowed = ALLOWED | data_words()
    found = {}
    pages = [name for name, route in ROUTES.items() if route.permitted == 200 and not route.calls_cluster]
    assert len(pages) > 30
    for name in pages:
        url = url_of(name, world)
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = browser.get(url, ROUTES[name].query, **headers)
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            words = english_words(response.content.decode(), allowed)
            if words:
                found[f"{name}{' (partial)' if headers else ''}"] = words
    # The detector itself: the same page in English is full of words it reports.
    browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = english_words(browser.get(reverse("core:job_list")).content.decode(), allowed)
    assert {"Jobs", "Filter", "State"} <= set(english)
    assert found == {}, "\n".join(f"{page}: {' '.join(words)}" for page, words in sorted(found.items()))


def test_django_admin_and_its_third_party_sections_read_in_chinese(world):  # noqa: F811
    browser = world.browsers["permitted"]
    browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    index = browser.get(reverse("admin:index")).content.decode()
    assert "登录保护（django-axes）" in index and "访问尝试" in index
    attempts = browser.get(reverse("admin:axes_accessattempt_changelist")).content.decode()
    assert "登录失败次数" in attempts or "0 访问尝试" in attempts or "访问尝试" in attempts


@pytest.mark.sandbox
def test_pages_that_call_the_cluster_read_in_chinese(live_world):  # noqa: F811
    """Logs, YAML view and edit, the terminal page and the access pages, asked of the sandbox in Chinese."""
    browser = live_world.browser
    browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    allowed = ALLOWED | data_words() | set(WORD.findall(f"{live_world.namespace} {live_world.pod} web"))
    names = [name for name, route in ROUTES.items() if route.calls_cluster]
    assert len(names) >= 7
    found, asked = {}, 0
    for name in names:
        params, query = LIVE.get(name, (ROUTES[name].params, ROUTES[name].query))
        url = reverse(name, kwargs=params(live_world))
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = browser.get(url, query, **headers)
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            asked += 1
            html = body(response).decode()
            assert not any(mark.decode() in html for mark in ERROR_MARKS), f"{name} answered an error"
            words = english_words(html, allowed)
            if words:
                found[f"{name}{' (partial)' if headers else ''}"] = words
    assert asked >= 10
    assert found == {}, "\n".join(f"{page}: {' '.join(words)}" for page, words in sorted(found.items()))
