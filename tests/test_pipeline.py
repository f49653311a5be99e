"""The detector pipeline in-process: the same code the Faust agents run, on a manual clock."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from anxin.core.registry import load_registry
from detectors.pipeline import (
    FALL_SAVE_EVERY_S,
    SEEN_BYTES,
    SEEN_KEEP,
    DetectorPipeline,
    Outputs,
    message_key,
    seen_before,
    seen_hashes,
)
from tests.signals import chunks, clear_fall

REGISTRY = load_registry(Path(__file__).parent / "data" / "registry.yaml")
T0 = 1_795_400_000.0


def reading(device: str, ts: float, **fields) -> dict:
    owner = REGISTRY.device_owner(device)
    assert owner
    return {"device_id": device, "resident_id": owner[0], "ts": ts, "received_at": ts, **fields}


def feed_fall(p: DetectorPipeline, device: str, t0: float) -> tuple[Outputs, float]:
    """A fall, fed until the detector suspects it (then the device stops streaming)."""
    g, impact = clear_fall(after_s=8.0)
    out = Outputs()
    for ts, accel in chunks(g, 50.0, t0):
        out.extend(p.process(reading(device, ts, accel=accel), ts + 1.2))
        if out.suspicions:
            break
    return out, t0 + impact


def test_sos_once_per_press() -> None:
    p = DetectorPipeline(lambda: REGISTRY)
    first = p.process(reading("W001", T0, seq=7, event="sos"), T0 + 0.2)
    again = p.process(reading("W001", T0, seq=7, event="sos"), T0 + 5)
    other = p.process(reading("W001", T0 + 60, seq=8, event="sos"), T0 + 60.2)
    assert [a.kind for a in first.alerts] == ["sos"] and again.alerts == []
    assert len(other.alerts) == 1 and other.alerts[0].alert_id != first.alerts[0].alert_id


def test_accelerometer_fall_is_a_suspicion_and_ok_cancels_it_telling_nobody() -> None:
    p = DetectorPipeline(lambda: REGISTRY, fall_alert_p=0.0)
    out, impact = feed_fall(p, "B003", T0)
    assert out.alerts == [] and out.updates == []
    (opened,) = out.suspicions
    assert opened["outcome"] == "open" and abs(opened["ts"] - impact) < 0.2
    assert opened["resident_id"] == "R003" and opened["details"]["detected_by"] == "accelerometer"
    (check,) = out.commands
    assert check == {
        "device_id": "B003",
        "cmd": "check",
        "alert_id": opened["suspicion_id"],
        "timeout_s": 5,
    }
    at = opened["detected_at"] + 1
    ok = p.process(reading("B003", at, event="ok"), at)
    assert ok.alerts == [] and ok.updates == []  # no alert, no "wearer_ok": nobody was told
    assert [(s["outcome"], s["reason"]) for s in ok.suspicions] == [
        ("cancelled", "wearer pressed I'm OK")
    ]
    assert ok.commands == [{"device_id": "B003", "cmd": "cancel", "alert_id": check["alert_id"]}]
    assert [a for a in p.tick(T0 + 500).alerts if a.kind == "fall"] == []


def test_unanswered_suspicion_becomes_a_critical_alert_and_device_event_merges() -> None:
    p = DetectorPipeline(lambda: REGISTRY, fall_alert_p=0.0)
    out, impact = feed_fall(p, "G003", T0)
    (opened,) = out.suspicions
    deadline = opened["detected_at"] + 5
    assert [a for a in p.tick(deadline - 0.5).alerts if a.kind == "fall"] == []
    confirmed = p.tick(deadline + 0.1)
    (alert,) = [a for a in confirmed.alerts if a.kind == "fall"]
    assert (alert.alert_id, alert.severity) == (opened["suspicion_id"], "critical")
    assert alert.ts == opened["ts"] and alert.detected_at == deadline + 0.1
    assert alert.details["confirmed_by"] == "no answer"
    assert alert.details["detected_by"] == "accelerometer"
    assert alert.details["probability"] == opened["details"]["probability"]
    assert [s["outcome"] for s in confirmed.suspicions] == ["confirmed"]
    # The device reports the same fall afterwards: no second alert.
    late = p.process(reading("G003", impact + 1, event="fall"), deadline + 2)
    assert late.alerts == []


def test_saving_the_fall_window_less_often_changes_no_output() -> None:
    """``anxin evaluate`` keeps the detector live and skips the periodic table snapshot."""
    runs = []
    for every in (FALL_SAVE_EVERY_S, math.inf):
        p = DetectorPipeline(lambda: REGISTRY, fall_save_every_s=every, fall_alert_p=0.0)
        saves = set()
        out = Outputs()
        for t0 in (T0, T0 + 100):
            for ts, accel in chunks(clear_fall(after_s=20.0)[0], 50.0, t0):
                out.extend(p.process(reading("B003", ts, accel=accel), ts + 1.2))
                saves.add(p.device_state["B003"].get("fall_saved_at"))
        runs.append((out, len(saves)))
    (default, saved), (live, saved_live) = runs
    assert [a.model_dump() for a in live.alerts] == [a.model_dump() for a in default.alerts]
    assert live.commands == default.commands and live.suspicions == default.suspicions
    assert [s["outcome"] for s in default.suspicions] == ["open", "confirmed"] * 2  # 2 falls
    assert [a.details["confirmed_by"] for a in default.alerts] == ["no answer"] * 2  # 5 s window
    assert saved_live < saved


def test_device_fall_event_is_critical_and_absorbs_the_accelerometer_finding() -> None:
    p = DetectorPipeline(lambda: REGISTRY)
    g, impact = clear_fall()
    first = p.process(reading("S003", T0 + impact, seq=1, event="fall"), T0 + impact + 0.3)
    assert [(a.kind, a.severity) for a in first.alerts] == [("fall", "critical")]
    rest = Outputs()
    for ts, accel in chunks(g, 50.0, T0):
        rest.extend(p.process(reading("S003", ts, accel=accel), ts + 1.2))
    assert rest.alerts == [] and rest.commands == []


def test_bad_accel_chunk_is_dead_lettered_and_other_fields_still_used() -> None:
    p = DetectorPipeline(lambda: REGISTRY)
    out = p.process(
        reading("W001", T0, event="sos", seq=1, accel={"rate": 500, "g": [[0, 0, 1]]}), T0
    )
    assert [a.kind for a in out.alerts] == ["sos"]
    assert len(out.rejected) == 1 and out.rejected[0]["reason"].startswith("accel:")
    saturated = np.tile([0.0, -1.0, 0.0], (50, 1))
    saturated[20:24] = [8.0, -8.0, 8.0]
    out = p.process(reading("W001", T0 + 1, accel={"rate": 50, "g": saturated.tolist()}), T0 + 1)
    assert out.rejected and "saturated" in out.rejected[0]["reason"] and out.rejected[0]["partial"]


def test_silence_is_judged_at_the_time_the_worker_has_read_up_to() -> None:
    """``tick(now, silence_at)``: a device whose readings still wait to be read (the worker is
    behind, ``anxin.arrival_clock``) is not silent yet; its timer stays due and fires once the
    clock passes it, while a fall suspicion's window still closes by ``now``."""
    p = DetectorPipeline(lambda: REGISTRY, fall_alert_p=0.0)
    p.process(reading("Q004", T0, battery=0.9), T0)
    assert p.tick(T0 + 30, silence_at=T0 + 3).alerts == []  # read up to T0 + 3: not 3 s yet
    assert p.tick(T0 + 31, silence_at=-math.inf).alerts == []  # nothing known: nothing judged
    (silent,) = p.tick(T0 + 32, silence_at=T0 + 3.5).alerts  # the same timer, still due
    assert silent.details["reason"] == "silent" and silent.detected_at == T0 + 32
    assert silent.details["silent_s"] == 3.5  # as far as anyone can know
    out, _ = feed_fall(p, "G003", T0 + 100)
    (opened,) = out.suspicions
    deadline = opened["detected_at"] + 5
    confirmed = p.tick(deadline + 0.1, silence_at=T0)  # a check window is not about arrival
    assert [a.kind for a in confirmed.alerts] == ["fall"]


def test_silence_is_noticed_by_the_timer_and_resolved_by_the_next_message() -> None:
    p = DetectorPipeline(lambda: REGISTRY)
    p.process(reading("Q004", T0, battery=0.9), T0)
    assert p.tick(T0 + 2).alerts == []
    (silent,) = p.tick(T0 + 3.5).alerts
    assert silent.kind == "device" and silent.details["reason"] == "silent"
    assert p.tick(T0 + 60).alerts == []  # one alert per silence
    back = p.process(reading("Q004", T0 + 61, battery=0.9), T0 + 61)
    assert [(u["action"], u["alert_id"]) for u in back.updates] == [("resolve", silent.alert_id)]


def test_vitals_combine_devices_of_a_resident() -> None:
    """One call per reading: NEWS2 runs in it over all of the resident's devices (issue 16)."""
    p = DetectorPipeline(lambda: REGISTRY)
    first = p.process(reading("W002", T0, vitals={"hr": 125, "rr": 26}), T0)
    assert [a.severity for a in first.alerts] == ["warning"]  # rr 26 scores 3 alone
    second = p.process(
        reading("P002", T0 + 60, vitals={"spo2": 90, "sbp": 95, "temp": 39.3}), T0 + 60
    )
    (alert,) = second.alerts
    assert alert.severity == "critical" and alert.alert_id == first.alerts[0].alert_id
    assert alert.details["news2"] == 12


def test_impossible_vitals_are_rejected_not_scored() -> None:
    p = DetectorPipeline(lambda: REGISTRY)
    out = p.process(reading("W002", T0, vitals={"sbp": 80, "dbp": 95}), T0)
    assert out.alerts == [] and "R001" not in p.resident_state
    assert out.rejected and out.rejected[0]["reason"].startswith("vitals:")


def test_a_failing_detector_does_not_cost_the_sos() -> None:
    p = DetectorPipeline(lambda: REGISTRY)
    out = p.process(
        reading("W001", T0, seq=3, event="sos", location={"lat": float("nan"), "lon": 0.0}), T0
    )
    assert [a.kind for a in out.alerts] == ["sos"]


def test_duplicates_are_the_same_seq_and_ts_not_the_same_counter() -> None:
    state: dict = {}
    keys = [message_key({"seq": s, "ts": T0 + t}) for s, t in ((5, 0), (6, 1), (5, 0), (5, 9))]
    assert [seen_before(state, k) for k in keys] == [False, False, True, False]
    # Without a seq, the content is the identity (arrival time and resident are not content).
    a = {"ts": T0, "battery": 0.5, "received_at": T0 + 1, "resident_id": "R001"}
    assert message_key(a) == message_key({**a, "received_at": T0 + 7})
    assert message_key(a) != message_key({**a, "battery": 0.4})
    for i in range(SEEN_KEEP + 10):
        seen_before(state, message_key({"seq": 1000 + i, "ts": T0}))
    assert len(seen_hashes(state)) == SEEN_KEEP * SEEN_BYTES  # bounded: it lives in a table
    p = DetectorPipeline(lambda: REGISTRY)
    first = p.process(reading("W002", T0, seq=10, event="fall"), T0)
    again = p.process(reading("W002", T0, seq=10, event="fall"), T0 + 1)
    assert len(first.alerts) == 1 and again.alerts == [] and again.updates == []


def test_states_survive_a_json_round_trip_as_in_a_faust_table() -> None:
    """orjson writes infinity as null: a recovered state must still tick (it once crashed)."""
    import orjson

    from anxin.live_state import state_json

    class JsonTable(dict):
        def __setitem__(self, key, value) -> None:
            super().__setitem__(key, orjson.loads(state_json(value)))

    p = DetectorPipeline(lambda: REGISTRY, JsonTable(), JsonTable())
    p.process(reading("W002", T0, seq=1, vitals={"hr": 70}, battery=0.9), T0)
    p.device_state["W002"] = {**p.device_state["W002"], "due": None}
    assert p.tick(T0 + 5).alerts == []
    assert [a.details["reason"] for a in p.tick(T0 + 601).alerts] == ["silent"]
