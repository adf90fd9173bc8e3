import pytest

from tests.compliance.rsyslog import Rsyslog


@pytest.fixture
def rsyslog(tmp_path):
    receiver = Rsyslog(tmp_path / "rsyslog")
    receiver.start()
    yield receiver
    receiver.stop()
