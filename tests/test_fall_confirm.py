"""The fall confirmation stage (issue 15.1): every path with constructed signals.

Two levels. ``Suspicion`` alone, fed suspicions directly (explicit probabilities, so nothing
here depends on the fall model's numbers). Then the same paths through ``DetectorPipeline`` with
the real fall detector, with ``fall_alert_p`` set so that whatever probability the model gives
the constructed fall counts as strong (0) or weak (above 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from anxin.core.registry import load_registry
from anxin.core.yamlfile import ConfigError
from detectors.fall_confirm import ConfirmConfig, Decision, Suspicion
from detectors.pipeline import DetectorPipeline, Outputs
from tests.signals import chunks, clear_fall

REGISTRY = load_registry(Path(__file__).parent / "data" / "registry.yaml")
T0 = 1_795_500_000.0
RATE = 50.0
CONFIG = ConfirmConfig(window_s=30.0, still_s=15.0, silence_s=20.0, alert_p=0.9)


def walking(seconds: float, rate: float = RATE) -> np.ndarray:
    """Upright, |a| swinging at a 1.8 Hz step rhythm: someone walking away."""
    t = np.arange(int(seconds * rate)) / rate
    mag = 1.0 + 0.35 * np.sin(2 * np.pi * 1.8 * t)
    return np.column_stack([0.05 * np.sin(2 * np.pi * 0.9 * t), -mag, np.zeros_like(t)])


def lying(seconds: float, rate: float = RATE) -> np.ndarray:
    return np.tile([0.0, 0.0, 1.0], (int(seconds * rate), 1))


def opened(p: float = 0.95, lying_still: bool = True) -> Suspicion:
    return Suspicion.open("fall-x", T0, p, lying_still, T0 + 3.0, CONFIG)


def verdict(d: Decision | None) -> tuple[str, str] | None:
    return None if d is None else (d.outcome, d.reason)


def feed(s: Suspicion, g: np.ndarray, start_ts: float, still: bool) -> list[tuple[float, str]]:
    """One-second chunks from ``start_ts`` (arriving 0.5 s after their end); decisions."""
    out = []
    for k in range(0, len(g), int(RATE)):
        ts = start_ts + k / RATE
        chunk = g[k : k + int(RATE)]
        now = ts + len(chunk) / RATE + 0.5
        still_for = (ts + len(chunk) / RATE - start_ts) if still else 0.0
        d = s.samples(now, "wrist", ts, RATE, chunk, still_for)
        if d is not None:
            out.append((round(now - T0, 1), f"{d.outcome}: {d.reason}"))
            break
    return out


# --------------------------------------------------------------------------- Suspicion alone


def test_walking_away_cancels() -> None:
    assert feed(opened(), walking(20), T0 + 1.0, still=False) == [(7.5, "cancelled: up and about")]


def test_lying_still_confirms_early_when_strong() -> None:
    assert feed(opened(), lying(25), T0 + 1.0, still=True) == [(16.5, "confirmed: lying still")]
    assert feed(opened(p=0.6), lying(25), T0 + 1.0, still=True) == []  # weak: not by itself
    # Not lying (no orientation change at the impact): a still wrist on a table says nothing.
    assert feed(opened(lying_still=False), lying(25), T0 + 1.0, still=True) == []


def test_no_answer_confirms_at_the_window_end_only_when_strong() -> None:
    strong, weak = opened(), opened(p=0.6)
    for s in (strong, weak):
        for t in range(4, 33):  # the device keeps reporting: it is not silent
            s.seen(T0 + t)
    assert strong.check(T0 + 32.9) is None and strong.due == T0 + 33.0
    assert verdict(strong.check(T0 + 33.0)) == ("confirmed", "no answer")
    expired = weak.check(T0 + 33.0)
    assert expired is not None and expired.outcome == "cancelled"


def test_a_silent_device_confirms_at_silence_s() -> None:
    s = opened()
    s.seen(T0 + 5.0)
    assert s.due == T0 + 25.0
    assert s.check(T0 + 24.9) is None
    assert verdict(s.check(T0 + 25.0)) == ("confirmed", "device silent since the suspicion")
    weak = opened(p=0.6)
    assert weak.check(T0 + 25.0) is None and weak.due == T0 + 33.0  # weak: the window only


MIDDLE = ConfirmConfig(window_s=30.0, still_s=15.0, silence_s=20.0, alert_p=0.9, silent_p=0.7)


def test_a_device_that_stops_reporting_confirms_a_middle_suspicion() -> None:
    """From silent_p (below alert_p): a streaming device that falls silent is evidence enough."""
    s = Suspicion.open("fall-x", T0, 0.8, False, T0 + 3.0, MIDDLE, quiet_gap=1.0)
    s.seen(T0 + 9.0)  # the last message, then nothing
    assert s.due == T0 + 29.0 and s.check(T0 + 28.9) is None
    assert verdict(s.check(T0 + 29.0)) == ("confirmed", "device silent since the suspicion")
    # Below silent_p the same silence only lets the window run out.
    weak = Suspicion.open("fall-x", T0, 0.6, False, T0 + 3.0, MIDDLE, quiet_gap=1.0)
    weak.seen(T0 + 9.0)
    assert weak.check(T0 + 29.0) is None and weak.due == T0 + 33.0
    assert verdict(weak.check(T0 + 33.0)) == (
        "cancelled",
        "no answer; too uncertain to page without a call for help",
    )


def test_a_device_back_to_its_usual_cadence_is_not_silent() -> None:
    """A wake-on-motion watch reporting every 30 s after a burst has not stopped reporting."""
    s = Suspicion.open("fall-x", T0, 0.8, False, T0 + 3.0, MIDDLE, quiet_gap=30.0)
    s.seen(T0 + 9.0)
    assert s.check(T0 + 38.0) is None  # 29 s quiet: 45 s (1.5 x 30) is its silence, not 20
    s.seen(T0 + 39.0)  # its usual 30 s cadence after the burst
    # Unanswered, never silent: cancelled when the silence hold ends (45 s after the suspicion).
    assert s.due == T0 + 48.0
    assert verdict(s.check(T0 + 48.0)) == (
        "cancelled",
        "no answer; too uncertain to page without a call for help",
    )


def test_a_middle_suspicion_still_streaming_is_held_then_cancelled() -> None:
    """Streaming on past the window: it may still stop (held to 45 s), then it is let go."""
    s = Suspicion.open("fall-x", T0, 0.8, True, T0 + 3.0, MIDDLE, quiet_gap=1.0)
    for t in range(4, 49):
        s.seen(T0 + t)
        assert s.check(T0 + t) is None or t >= 48
    assert verdict(s.check(T0 + 48.0)) == (
        "cancelled",
        "no answer; too uncertain to page without a call for help",
    )
    # Silence that would only be reached after the hold does not page.
    late = Suspicion.open("fall-x", T0, 0.8, True, T0 + 3.0, MIDDLE, quiet_gap=1.0)
    late.seen(T0 + 40.0)
    assert late.due == T0 + 48.0
    assert verdict(late.check(T0 + 60.0)) == (
        "cancelled",
        "no answer; too uncertain to page without a call for help",
    )
    state = orjson.loads(orjson.dumps(late.to_state()))
    assert Suspicion.from_state(state) == late


def test_pipeline_remembers_the_longest_recent_gap() -> None:
    p = DetectorPipeline(lambda: REGISTRY)
    for t in (0.0, 30.0, 31.0, 32.0):
        p.process(reading("W001", T0 + t), T0 + t)
    assert p.device_state["W001"]["quiet_gap"] == (30.0, T0 + 30.0)
    p.process(reading("W001", T0 + 700.0), T0 + 700.0)  # older than ten minutes: replaced
    assert p.device_state["W001"]["quiet_gap"] == (668.0, T0 + 700.0)
    p.process(reading("W001", T0 + 701.0), T0 + 701.0)
    assert p.device_state["W001"]["quiet_gap"] == (668.0, T0 + 700.0)


def test_the_wearer_decides() -> None:
    assert verdict(opened().event(T0 + 8, "ok")) == ("cancelled", "wearer pressed I'm OK")
    assert verdict(opened(p=0.6).event(T0 + 8, "sos")) == ("confirmed", "wearer pressed SOS")
    assert verdict(opened(p=0.6).event(T0 + 8, "fall")) == (
        "confirmed",
        "the device detected the fall too",
    )
    assert opened().event(T0 + 8, "removed") is None


def test_state_is_json_and_round_trips_mid_walk() -> None:
    s = opened()
    assert feed(s, walking(5), T0 + 1.0, still=False) == []  # 5 s: not yet two windows
    state = orjson.loads(orjson.dumps(s.to_state()))
    again = Suspicion.from_state(state)
    assert again == s
    # The walk continues after the round trip: the kept samples still count.
    assert feed(again, walking(20)[250:], T0 + 6.0, still=False) == [
        (7.5, "cancelled: up and about")
    ]
    assert feed(opened(), walking(20)[250:300], T0 + 6.0, still=False) == []  # 1 s alone: no


# --------------------------------------------------------------------------- through the pipeline


def reading(device: str, ts: float, **fields: object) -> dict:
    owner = REGISTRY.device_owner(device)
    assert owner
    return {"device_id": device, "resident_id": owner[0], "ts": ts, "received_at": ts, **fields}


def run(p: DetectorPipeline, device: str, g: np.ndarray, t0: float = T0) -> Outputs:
    out = Outputs()
    for ts, accel in chunks(g, RATE, t0):
        now = ts + 1.5
        out.extend(p.process(reading(device, ts, accel=accel), now))
        out.extend(p.tick(now))
    return out


def fall_then(tail: np.ndarray) -> tuple[np.ndarray, float]:
    g, impact = clear_fall(after_s=8.0)
    return np.vstack([g, tail]), impact


def summary(out: Outputs) -> list[tuple[str, str]]:
    return [(s["outcome"], s["reason"]) for s in out.suspicions]


def test_pipeline_walking_away_tells_nobody() -> None:
    p = DetectorPipeline(lambda: REGISTRY, fall_alert_p=0.0)
    g, _ = fall_then(walking(20))
    out = run(p, "W001", g)
    assert summary(out) == [
        ("open", "suspected by the accelerometer"),
        ("cancelled", "up and about"),
    ]
    sid = out.suspicions[0]["suspicion_id"]
    assert [c["cmd"] for c in out.commands] == ["check", "cancel"]
    assert {c["alert_id"] for c in out.commands} == {sid}
    assert out.alerts == [] and out.updates == []
    assert [a for a in p.tick(T0 + 300).alerts if a.kind == "fall"] == []


def test_pipeline_lying_still_pages_within_60_s() -> None:
    p = DetectorPipeline(lambda: REGISTRY, fall_alert_p=0.0)
    g, impact = fall_then(lying(30))
    out = run(p, "W001", g)
    assert summary(out) == [
        ("open", "suspected by the accelerometer"),
        ("confirmed", "lying still"),
    ]
    (alert,) = out.alerts
    assert alert.alert_id == out.suspicions[0]["suspicion_id"] == out.commands[0]["alert_id"]
    assert (alert.kind, alert.severity) == ("fall", "critical")
    assert abs(alert.ts - (T0 + impact)) < 0.2
    assert alert.details["confirmed_by"] == "lying still"
    assert alert.details["detected_by"] == "accelerometer"
    assert alert.detected_at - alert.ts <= 60
    assert [c["cmd"] for c in out.commands] == ["check"]  # no cancel: help is on its way


def test_pipeline_no_answer_pages_at_the_window_end() -> None:
    p = DetectorPipeline(lambda: REGISTRY, fall_alert_p=0.0)
    g, _ = fall_then(np.zeros((0, 3)))
    out = run(p, "W001", g)
    (opened_,) = out.suspicions
    assert out.alerts == []
    # The watch reports now and then (no accelerometer): not silent, not up and about.
    for t in range(0, 40, 5):
        now = opened_["detected_at"] + t
        out.extend(p.process(reading("W001", now, battery=0.8), now))
        out.extend(p.tick(now))
    out.extend(p.tick(opened_["detected_at"] + 30))
    assert summary(out)[1:] == [("confirmed", "no answer")]
    (alert,) = out.alerts
    assert alert.detected_at == opened_["detected_at"] + 30  # R001's window: 30 s
    assert alert.detected_at - alert.ts <= 60


def test_pipeline_device_going_silent_pages_at_silence_s() -> None:
    p = DetectorPipeline(lambda: REGISTRY, fall_alert_p=0.0)
    g, _ = fall_then(np.zeros((0, 3)))
    out = run(p, "W001", g)
    last = max(ts for ts, _ in chunks(g, RATE, T0)) + 1.5  # the last chunk's arrival
    assert p.tick(last + 19.9).alerts == []
    confirmed = p.tick(last + 20.0)
    assert summary(confirmed) == [("confirmed", "device silent since the suspicion")]
    assert [a.detected_at for a in confirmed.alerts] == [last + 20.0]
    assert out.alerts == []


def test_pipeline_ok_cancels_and_nobody_hears_of_it() -> None:
    p = DetectorPipeline(lambda: REGISTRY, fall_alert_p=0.0)
    g, _ = fall_then(np.zeros((0, 3)))
    out = run(p, "W001", g)
    at = out.suspicions[0]["detected_at"] + 4
    ok = p.process(reading("W001", at, event="ok"), at)
    assert summary(ok) == [("cancelled", "wearer pressed I'm OK")]
    assert ok.alerts == [] and ok.updates == []
    assert ok.commands == [
        {"device_id": "W001", "cmd": "cancel", "alert_id": out.suspicions[0]["suspicion_id"]}
    ]
    assert p.tick(at + 120).alerts == []


def test_pipeline_sos_during_a_weak_suspicion_confirms_it_and_raises_the_sos() -> None:
    p = DetectorPipeline(lambda: REGISTRY, fall_alert_p=1.01)  # no finding is strong
    g, _ = fall_then(lying(15))
    out = run(p, "W001", g)
    assert summary(out) == [("open", "suspected by the accelerometer")]  # weak: lying is not enough
    at = out.suspicions[0]["detected_at"] + 20
    sos = p.process(reading("W001", at, seq=5, event="sos"), at)
    assert sorted(a.kind for a in sos.alerts) == ["fall", "sos"]
    (fall,) = [a for a in sos.alerts if a.kind == "fall"]
    assert fall.alert_id == out.suspicions[0]["suspicion_id"]
    assert fall.details["confirmed_by"] == "wearer pressed SOS"
    assert summary(sos) == [("confirmed", "wearer pressed SOS")]


def test_pipeline_weak_suspicion_unanswered_expires_quietly() -> None:
    p = DetectorPipeline(lambda: REGISTRY, fall_alert_p=1.01)
    g, _ = fall_then(lying(30))
    out = run(p, "W001", g)
    out.extend(p.tick(out.suspicions[0]["detected_at"] + 30))
    assert [s["outcome"] for s in out.suspicions] == ["open", "cancelled"]
    assert out.alerts == [] and out.updates == []


def test_ok_just_before_the_finding_answers_it() -> None:
    """The wearer pressed "I'm OK" after the impact, before the detector had decided."""
    p = DetectorPipeline(lambda: REGISTRY, fall_alert_p=0.0)
    g, impact = fall_then(lying(5))
    ok_at = T0 + impact + 1.0
    p.process(reading("W001", ok_at, event="ok"), ok_at)
    out = run(p, "W001", g)
    assert summary(out) == [("cancelled", "wearer pressed I'm OK")]
    assert out.alerts == [] and out.commands == []


# --------------------------------------------------------------------------- registry windows


def test_windows_must_keep_impact_to_alert_within_60_s(tmp_path: Path) -> None:
    from anxin.core.registry import load_registry as load

    good = tmp_path / "good.yaml"
    good.write_text(
        "residents:\n  R9:\n    name: X\n    devices: {W9: {placement: wrist}}\n"
        "    check_timeout_s: 45\n    fall_confirm: {still_s: 10, silence_s: 12}\n"
    )
    r = load(good).residents["R9"]
    assert (r.check_timeout_s, r.fall_confirm.still_s, r.fall_confirm.silence_s) == (45, 10, 12)
    assert load_registry(Path(__file__).parent / "data" / "registry.yaml").residents[
        "R001"
    ].fall_confirm.model_dump() == {"still_s": 15, "silence_s": 20, "silence_hold_s": 45}
    for field, text in (
        ("check_timeout_s", "    check_timeout_s: 60\n"),
        ("fall_confirm.silence_s", "    fall_confirm: {silence_s: 50}\n"),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(
            "residents:\n  R9:\n    name: X\n    devices: {W9: {placement: wrist}}\n" + text
        )
        with pytest.raises(ConfigError) as err:
            load(bad)
        assert f"residents.R9.{field}" in str(err.value)
        assert "at most 45 s" in str(err.value) and "60 s after the impact" in str(err.value)


def test_one_question_at_a_time() -> None:
    """A second fall 35 s after the first, while the wearer is still being asked (a 45 s
    window), adds no second prompt; answered first, it would have prompted again."""
    from anxin.core.registry import Device, Registry, Resident

    registry = Registry(
        residents={
            "R9": Resident(name="X", devices={"W9": Device(placement="wrist")}, check_timeout_s=45)
        }
    )
    first, impact = clear_fall(after_s=8.0)
    second, _ = clear_fall(after_s=8.0)
    g = np.vstack([first, lying(20.3), second])  # impacts 35 s apart: two episodes
    runs = []
    for answer in (False, True):
        p = DetectorPipeline(lambda: registry, fall_alert_p=1.01)  # weak: open all the window
        out = Outputs()
        for ts, accel in chunks(g, RATE, T0):
            now = ts + 1.5
            r = {"device_id": "W9", "resident_id": "R9", "ts": ts, "received_at": now}
            out.extend(p.process({**r, "accel": accel}, now))
            if answer and ts == T0 + 20.0:
                out.extend(p.process({**r, "ts": ts + 0.5, "event": "ok"}, now))
        runs.append([(s["outcome"], round(s["ts"] - T0 - impact)) for s in out.suspicions])
    assert runs == [[("open", 0)], [("open", 0), ("cancelled", 0), ("open", 35)]]


# --------------------------------------------------------------------------- upgrades


def test_a_stronger_impact_upgrades_the_open_question() -> None:
    s = opened(p=0.6, lying_still=False)  # weak: no page on no answer, nor on silence (0.7)
    assert not s.strong and not s.telling_silence
    feed(s, lying(2), T0 + 1.0, still=False)
    assert s.buf  # samples after the first impact kept for the walking test
    s.upgrade(T0 + 2.0, 0.95, True)
    assert (s.impact_ts, s.probability, s.lying) == (T0 + 2.0, 0.95, True)
    assert s.strong and s.telling_silence and s.buf == ""  # the walking test starts again
    assert s.suspicion_id == "fall-x" and s.deadline == T0 + 3.0 + 30.0  # the same question
    assert Suspicion.from_state(orjson.loads(orjson.dumps(s.to_state()))) == s


class _ByPeak:
    """Probabilities set by the impact's size, so the test fixes them (not the model's)."""

    def probability(self, x: np.ndarray) -> np.ndarray:
        from detectors.fall_features import FEATURES

        return np.where(np.atleast_2d(x)[:, FEATURES.index("peak_g")] >= 4.0, 0.95, 0.6)


def stumble_then_fall() -> tuple[np.ndarray, float, float]:
    """A 3 g stumble, 1.5 s later a 6 g impact and lying still: (g, stumble, impact) offsets."""
    upright = np.tile([0.0, -1.0, 0.0], (int(4 * RATE), 1))
    bump = upright[:4] * (1 + 2.0 * np.sin(np.linspace(0, np.pi, 4)))[:, None]
    fall, impact = clear_fall(before_s=1.5 - 4 / RATE, after_s=30.0)
    return np.vstack([upright, bump, fall]), 4 + 2 / RATE, 4 + 4 / RATE + impact


@pytest.mark.parametrize("placement_device", ["W001", "P002"])
def test_the_stumble_before_a_fall_does_not_decide_it(
    monkeypatch: pytest.MonkeyPatch, placement_device: str
) -> None:
    """Trips and slips: the stumble is found first (weak), the impact 1.5 s later, within the
    detector's 5 s refractory. The impact upgrades the open question, so the fall pages;
    judged by the stumble alone it would be cancelled as too uncertain."""
    from detectors import fall as fall_module

    monkeypatch.setattr(fall_module, "fall_model", lambda rate=None, clip2=False: _ByPeak())
    p = DetectorPipeline(lambda: REGISTRY, fall_alert_p=0.9)
    g, stumble, impact = stumble_then_fall()
    out = run(p, placement_device, g)
    opened_, confirmed = out.suspicions
    assert abs(opened_["ts"] - (T0 + stumble)) < 0.1  # the question was asked at the stumble
    assert opened_["details"]["probability"] == 0.6
    assert confirmed["outcome"] == "confirmed" and confirmed["reason"] == "lying still"
    (alert,) = out.alerts
    assert alert.alert_id == opened_["suspicion_id"]  # one question, one alert
    assert abs(alert.ts - (T0 + impact)) < 0.1  # the fall is the impact, not the stumble
    assert alert.details["probability"] == 0.95
    assert alert.detected_at - alert.ts <= 60
    assert [c["cmd"] for c in out.commands] == ["check"]  # asked once


@pytest.mark.parametrize("rate", [RATE, 100.0])
@pytest.mark.parametrize("step_s", [-60.0, -600.0, -3000.0])
def test_a_fall_after_the_watch_clock_stepped_back_still_pages(rate: float, step_s: float) -> None:
    """A watch whose clock steps back (a time sync after running fast; the bridge takes clocks up
    to an hour fast) sends samples older than those already read. Taken for replays, they were
    dropped until the clock caught up again: a fall a minute after the step was never found."""
    p = DetectorPipeline(lambda: REGISTRY, fall_alert_p=0.0)
    out = Outputs()
    for ts, accel in chunks(walking(60, rate), rate, T0):
        out.extend(p.process(reading("W001", ts, accel=accel), ts + 1.0))
    g, impact = clear_fall(rate=rate, after_s=8.0)
    g = np.vstack([g, lying(30, rate)])
    start = T0 + 65.0 + step_s  # 5 s later by the wall clock, the clock stepped back
    for ts, accel in chunks(g, rate, start):
        now = ts - step_s + 1.0
        r = reading("W001", ts, accel=accel)
        r["received_at"] = now
        out.extend(p.process(r, now))
        out.extend(p.tick(now))
    assert summary(out) == [
        ("open", "suspected by the accelerometer"),
        ("confirmed", "lying still"),
    ]
    (alert,) = out.alerts
    assert abs(alert.ts - (start + impact)) < 0.2  # the impact on the device's new clock
    assert alert.detected_at - (alert.ts - step_s) <= 60
