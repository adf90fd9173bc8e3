"""The catalogue as a whole: at least 60 checks over the four domains, ids that say their area, a title, why it
matters and how to fix it for each in English and Chinese, and a test file that names every check (each check's
tests make it pass and fail: tests/inspection/test_checks_*.py)."""

from __future__ import annotations

import re
from pathlib import Path

from django.utils import translation

from apps.inspection.catalogue import CATALOGUE
from apps.inspection.checks.base import Domain

TESTS = Path(__file__).resolve().parent
PREFIXES = {"cluster.": Domain.CLUSTER, "security.": Domain.CLUSTER, "hosts.": Domain.HOSTS, "apps.": Domain.APPS}


def test_there_are_at_least_sixty_checks_in_every_domain():
    by_domain = {d: [c for c in CATALOGUE.values() if c.domain == d] for d in Domain.values}
    assert len(CATALOGUE) >= 60
    assert all(len(checks) >= 5 for checks in by_domain.values()), {d: len(c) for d, c in by_domain.items()}


def test_ids_say_their_area_and_domain():
    for check_id, check in CATALOGUE.items():
        assert re.fullmatch(r"[a-z]+(\.[a-z_]+)+", check_id), check_id
        if check_id.startswith("db."):
            assert check.domain == Domain.DATABASES and check.target == "database", check_id
        else:
            prefix = check_id.split(".")[0] + "."
            assert PREFIXES[prefix] == check.domain, check_id


def test_every_check_reads_in_english_and_chinese():
    untranslated = []
    for check_id, check in CATALOGUE.items():
        for part in ("title", "why", "fix"):
            with translation.override("en"):
                english = str(getattr(check, part))
            with translation.override("zh-hans"):
                chinese = str(getattr(check, part))
            assert english.strip(), (check_id, part)
            if chinese == english or not re.search(r"[\u4e00-\u9fff]", chinese):
                untranslated.append((check_id, part))
    assert untranslated == []


def test_every_check_is_named_by_a_test_that_runs_it():
    text = "\n".join(p.read_text() for p in TESTS.glob("test_checks_*.py"))
    unnamed = sorted(check_id for check_id in CATALOGUE if check_id not in text)
    assert unnamed == []
