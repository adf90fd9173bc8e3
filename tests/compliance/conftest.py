import pytest

from tests.compliance.rsyslog import Rsyslog


@pytest.fixture
def rsyslog(tmp_path):
    receiver = Rsyslog(tmp_path / "rsyslog")
    receiver.start()
    yield receiver
    receiver.stop()


# The release fixtures (a project namespace in the sandbox, payments-api deployed and rolled out), for the approval
# tests.
from tests.releases.conftest import apps_api, core_api, deployed, team  # noqa: E402

__all__ = ["apps_api", "core_api", "deployed", "team"]
