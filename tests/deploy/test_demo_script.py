"""deploy/local/demo keeps the logs of the previous run (issue 11, item 10): a restart appends under a marker.

The script's own ``start`` and ``alive`` functions are run against a scratch folder with a short command
standing in for the web process, twice; both runs' output must be in the log.
"""

import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_start(run_dir: Path, message: str) -> None:
    script = (REPO / "deploy" / "local" / "demo").read_text()
    alive = next(line for line in script.splitlines() if line.startswith("alive()"))
    start = "start() {" + script.split("\nstart() {", 1)[1].split("\n}\n", 1)[0] + "\n}"
    program = f'set -euo pipefail\nRUN="{run_dir}"\n{alive}\n{start}\n'
    program += f"start web sh -c 'echo {message}'\n"
    subprocess.run(["bash", "-c", program], check=True, capture_output=True, timeout=30)
    time.sleep(0.5)  # the started command writes its line
    (run_dir / "web.pid").unlink()  # as `demo down` leaves it


def test_a_restart_keeps_the_previous_runs_log(tmp_path):
    run_start(tmp_path, "first run")
    run_start(tmp_path, "second run")

    log = (tmp_path / "web.log").read_text()
    assert "first run" in log
    assert "second run" in log
    assert log.count("===== web started") == 2


def test_a_log_over_20_mb_is_rotated_not_lost(tmp_path):
    (tmp_path / "web.log").write_text("old line\n" + "x" * (21 * 1024 * 1024))

    run_start(tmp_path, "after rotation")

    assert (tmp_path / "web.log.1").read_text().startswith("old line")
    assert "after rotation" in (tmp_path / "web.log").read_text()
