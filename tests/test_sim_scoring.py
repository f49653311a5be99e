"""Scoring: hand-made alerts and labels, and a hand-made tiny scenario, counted by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from anxin import evaluation
from simulators import scoring
from simulators.scoring import LabelRow

T = 1_711_814_400.0


def rec(
    aid: str, kind: str, resident: str, detected_at: float, severity: str = "warning"
) -> dict[str, object]:
    return {
        "alert_id": aid,
        "kind": kind,
        "severity": severity,
        "resident_id": resident,
        "device_id": "D",
        "ts": detected_at - 1,
        "detected_at": detected_at,
        "details": {},
    }


def test_matching_rule_by_hand() -> None:
    labels = [
        LabelRow("R1", "fall", T + 100, T + 160),  # hit by a1 at +104 (latency 4)
        LabelRow("R1", "fall", T + 500, T + 560),  # a2 at T+497 is 3 s early: miss
        LabelRow("R2", "fall", T + 100, T + 160),  # a3 at +98 (2 s early, allowed): latency -2
        LabelRow("R2", "wander", T + 100, T + 220),  # a4 is R2's fall, wrong kind: miss
        LabelRow("R3", "vitals", T + 0, T + 1800, end=T + 9000),  # a6 at +10: hit; a7 ongoing
    ]
    records = [
        rec("a1", "fall", "R1", T + 104),
        rec("a1", "fall", "R1", T + 134, "critical"),  # same alert, upgraded: still one
        rec("a2", "fall", "R1", T + 497),  # false alarm (too early for label 2)
        rec("a3", "fall", "R2", T + 98),
        rec("a4", "fall", "R2", T + 150),  # also in label 3's window: true, not a new hit
        rec("a5", "sos", "R1", T + 50),  # no sos labels: false alarm
        rec("a6", "vitals", "R3", T + 10),
        rec("a7", "vitals", "R3", T + 5000),  # after the deadline, before end: not false
        rec("a8", "vitals", "R3", T + 9500),  # after end: false alarm
    ]
    result = scoring.score(labels, records, resident_days=2.0)
    fall = result.kinds["fall"]
    assert (fall.labels, fall.detected, fall.alerts, fall.true_alerts, fall.false_alarms) == (
        3,
        2,
        4,
        3,
        1,
    )
    assert fall.recall == pytest.approx(2 / 3)
    assert fall.precision == pytest.approx(3 / 4)
    assert fall.false_per_resident_day == pytest.approx(0.5)
    assert sorted(fall.latencies) == pytest.approx([-2.0, 4.0])
    assert fall.latency(50) == pytest.approx(1.0)
    assert fall.latency(95) == pytest.approx(-2.0 + 0.95 * 6.0)
    wander = result.kinds["wander"]
    assert (wander.labels, wander.detected, wander.recall) == (1, 0, 0.0)
    sos = result.kinds["sos"]
    assert (sos.labels, sos.alerts, sos.false_alarms, sos.recall) == (0, 1, 1, None)
    vit = result.kinds["vitals"]
    assert (vit.detected, vit.alerts, vit.true_alerts, vit.false_alarms) == (1, 3, 2, 1)
    assert vit.latencies == [10.0]
    assert {a.alert_id for a in result.false_alarms} == {"a2", "a5", "a8"}
    assert [(m.resident, m.kind) for m in result.misses] == [("R1", "fall"), ("R2", "wander")]
    unique = scoring.unique_alerts(records)
    assert len(unique) == 8
    assert next(a for a in unique if a.alert_id == "a1").severity == "critical"


def _tiny(folder: Path) -> None:
    """Two residents. R1: SOS at +1000 (label, hit), a second SOS label at +2000 with no press
    (miss). R2: an SOS nobody labelled at +3000 (false alarm), then silence: its last message
    arrives at +3000.21, so the silent rule is due at +3600.21 and fires at R1's next message
    arrival, +3600.7 (label start +3600.21: latency 0.49 s). Span +0.2 .. +3600.7."""
    folder.mkdir()
    registry = {
        "residents": {
            rid: {
                "name": f"P {rid}",
                "timezone": "Asia/Shanghai",
                "devices": {dev: {"placement": "wrist"}},
                "family": [{"name": "F", "phone": "+8613800000001"}],
            }
            for rid, dev in (("R1", "W1"), ("R2", "W2"))
        }
    }
    (folder / "registry.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True))
    msgs: list[dict[str, Any]] = []

    def tele(t: float, device: str, seq: int, **extra: object) -> None:
        msgs.append(
            {
                "t": T + t,
                "topic": f"anxin/v1/devices/{device}/telemetry",
                "payload": {"ts": T + t - 0.5, "seq": seq, **extra},
            }
        )

    for i, t in enumerate(range(0, 3001, 100)):
        tele(t + 0.2, "W2", i, battery=0.9, worn=True)
    tele(3000.2 + 0.01, "W2", 99, event="sos")
    for i, t in enumerate(range(0, 3700, 120)):
        tele(t + 0.7, "W1", i, battery=0.9, worn=True)
    tele(1000.7, "W1", 500, event="sos")
    msgs.sort(key=lambda m: m["t"])
    (folder / "messages.jsonl").write_bytes(b"".join(orjson.dumps(m) + b"\n" for m in msgs))
    labels = [
        {"resident": "R1", "kind": "sos", "start": T + 1000.2, "deadline": T + 1010.2},
        {"resident": "R1", "kind": "sos", "start": T + 2000, "deadline": T + 2010},
        {"resident": "R2", "kind": "device", "start": T + 3600.21, "deadline": T + 3720.21},
    ]
    (folder / "labels.jsonl").write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in labels))


def test_tiny_scenario_scored_as_by_hand(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    _tiny(folder)
    ev = evaluation.evaluate_inprocess(folder)
    sos, device = ev.result.kinds["sos"], ev.result.kinds["device"]
    assert (sos.labels, sos.detected, sos.alerts, sos.false_alarms) == (2, 1, 2, 1)
    assert sos.latencies == [pytest.approx(0.5, abs=1e-6)]  # detected at +1000.7
    assert (device.labels, device.detected, device.alerts, device.false_alarms) == (1, 1, 1, 0)
    assert device.latencies == [pytest.approx(0.49, abs=1e-5)]
    assert ev.resident_days == pytest.approx(2 * (3600.7 - 0.2) / 86_400.0)
    evaluation.write_outputs(ev, tmp_path / "out", "tiny")
    report = orjson.loads((tmp_path / "out" / "report.json").read_bytes())
    assert report["kinds"]["sos"]["recall"] == 0.5
    assert len(report["misses"]) == 1 and len(report["false_alarms"]) == 1
    assert "| sos | 2 | 1 | 50.0 % |" in (tmp_path / "out" / "report.md").read_text()
    assert (tmp_path / "out" / "latency.png").stat().st_size > 1000
    lines = (tmp_path / "out" / "alerts.jsonl").read_bytes().splitlines()
    assert len(lines) == 3


def test_falls_in_two_stages_by_hand() -> None:
    """Prompts (suspicions) are what the wearer feels; alerts what reaches people. A fall the
    wearer answered "I'm OK" needs no alert, and one raised for it is not a false alarm."""
    labels = [
        LabelRow("R1", "fall", T + 100, T + 160),  # prompted s1, confirmed as alert s1
        LabelRow("R1", "fall", T + 500, T + 560, answered="ok"),  # prompted s2, cancelled
        LabelRow("R2", "fall", T + 100, T + 160, answered="ok"),  # device alert d1, no prompt
        LabelRow("R2", "fall", T + 900, T + 960),  # nothing: missed at both stages
    ]

    def sus(sid: str, resident: str, at: float, outcome: str) -> dict[str, object]:
        return {"suspicion_id": sid, "resident_id": resident, "detected_at": at, "outcome": outcome}

    suspicions = [
        sus("s1", "R1", T + 104, "open"),
        sus("s1", "R1", T + 134, "confirmed"),
        sus("s2", "R1", T + 505, "open"),
        sus("s2", "R1", T + 512, "cancelled"),
        sus("s3", "R2", T + 3000, "open"),  # no fall near it: a false prompt
        sus("s3", "R2", T + 3030, "cancelled"),
    ]
    records = [rec("s1", "fall", "R1", T + 134, "critical"), rec("d1", "fall", "R2", T + 102)]
    result = scoring.score(labels, records, 2.0, suspicions, wear_days=4.0)
    fall = result.kinds["fall"]
    assert (fall.labels, fall.detected, fall.alerts, fall.false_alarms) == (2, 1, 2, 0)
    assert fall.latencies == [34.0] and fall.alerts_per_resident_day == 1.0
    assert [m.start for m in result.misses] == [T + 900]
    prompts = result.prompts
    assert prompts is not None
    assert (prompts.labels, prompts.prompted, prompts.prompts, prompts.false_prompts) == (
        4,
        3,
        3,
        1,
    )
    assert prompts.outcomes == {"confirmed": 1, "cancelled": 2}
    assert prompts.per_wear_day == 0.75 and prompts.latencies == [4.0, 5.0, 2.0]
    assert "prompts / wear-day" in scoring.markdown(result, "t")
