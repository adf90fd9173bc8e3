"""The demo content's events are dated just before `up --demo` applies them."""

import calendar
import importlib.util
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("sandboxctl", ROOT / "deploy" / "sandbox" / "sandboxctl.py")
sandboxctl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sandboxctl)


def utc(stamp: str) -> int:
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


def test_event_timestamps_move_to_the_last_ten_minutes_keeping_their_spacing():
    now = 1_800_000_000
    text = (ROOT / "deploy" / "sandbox" / "demo" / "40-events.yaml").read_text()
    before = [e for e in yaml.safe_load_all(text) if e]

    after = [e for e in yaml.safe_load_all(sandboxctl.recent_timestamps(text, now=now)) if e]

    assert len(after) == len(before) >= 2
    for old, new in zip(before, after, strict=True):
        assert now - 600 <= utc(new["firstTimestamp"]) <= utc(new["lastTimestamp"]) <= now
        spacing = utc(old["lastTimestamp"]) - utc(old["firstTimestamp"])
        assert utc(new["lastTimestamp"]) - utc(new["firstTimestamp"]) == spacing
