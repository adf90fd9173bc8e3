"""What a started web or worker process imports: none of the heavy libraries that only some work needs.

Every long-lived process pays for what it imports for as long as it lives (bench/README.md, "the footprint"):
WeasyPrint lays PDFs out in a child process (apps/inspection/reports/pdf_engine.py), boto3 comes with the first
backup, the ``kubernetes`` package only with the web terminal's exec stream (apps/clusters/kube.py talks to API
servers through urllib3), the AI libraries with the first embedding or Milvus call. The smaller client libraries
(requests, prometheus-api-client, regex, PyMySQL, websocket-client) are imported by the functions that use them. A
fresh interpreter starts each process the way gunicorn and celery do and lists what it loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = (
    "weasyprint",
    "boto3",
    "botocore",
    "kubernetes",
    "pymilvus",
    "onnxruntime",
    "tokenizers",
    "fontTools",
    "requests",
    "charset_normalizer",
    "idna",
    "prometheus_api_client",
    "regex",
    "pymysql",
    "websocket",
)

START = {
    # gunicorn imports the WSGI application; the first request loads the URLconf and its views.
    "web": "from kubemate.wsgi import application\nfrom django.urls import get_resolver\nget_resolver().url_patterns",
    # celery loads the app, sets Django up and imports every tasks module (autodiscovery).
    "worker": "from kubemate.celery import app\nimport django\ndjango.setup()\napp.loader.import_default_modules()",
}

PROBE = """
import json, sys
{start}
rss = [int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmRSS:')][0]
print(json.dumps({{"loaded": sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}), "rss_kb": rss}}))
"""


@pytest.mark.parametrize("process", sorted(START))
def test_a_started_process_imports_none_of_the_heavy_libraries(process):
    code = PROBE.format(start=START[process], heavy=HEAVY)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "kubemate.settings.test", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["loaded"] == [], f"the {process} process imported {found['loaded']} at start"
    print(f"\n{process}: {found['rss_kb'] / 1024:.0f} MB RSS after start, none of {', '.join(HEAVY)}")
