"""The assistant tests use the knowledge base tests' people and knowledge base (tests/ai/knowledge/conftest.py), and
an endpoint on the local model server (the ``llm`` fixture), answers kept short."""

import pytest

from apps.ai.models import Endpoint
from tests.ai.knowledge.conftest import _documents_dir, kb, team  # noqa: F401 - fixtures shared with knowledge
from tests.helpers import unique


@pytest.fixture
def endpoint(llm, settings):
    settings.KUBEMATE_AI_ANSWER_TOKENS = 40
    return Endpoint.objects.create(name=unique("local"), base_url=llm.base_url, default_model=llm.model)
