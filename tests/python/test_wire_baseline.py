"""The fixed request scripts of tests/wire answer exactly as recorded (issue 22: a restructuring must leave the wire
output unchanged): wire_script.py (SQS over JSON and Query, some SNS) against baseline.json, and sns_wire_compare.py
(every SNS operation) against sns_baseline.txt. When an answer changes on purpose, record again (see each script)
and review the diff."""

import json
import os
import sys
from pathlib import Path

import pytest

WIRE = Path(__file__).resolve().parents[1] / "wire"
sys.path.insert(0, str(WIRE))

pytestmark = pytest.mark.skipif(bool(os.environ.get("SQS_ENDPOINT")), reason="records sluice's own answers")


def test_answers_match_the_recording():
    import wire_script
    want = json.loads((WIRE / "baseline.json").read_text())
    got = wire_script.run()
    assert len(got) == len(want)
    for w, g in zip(want, got):
        assert g == w, f"answer to {w['label']!r} changed"


def test_sns_answers_match_the_recording():
    import sns_wire_compare
    want = (WIRE / "sns_baseline.txt").read_text()
    got = sns_wire_compare.run()
    assert got.splitlines() == want.splitlines()
