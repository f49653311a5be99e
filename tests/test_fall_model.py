"""The learned fall model on constructed signals only (no recorded data in the test suite)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from detectors import fall_features as FF
from detectors.fall import ALERT_P, SILENT_P, SUSPECT_P, FallDetector, FallFinding, fall_model

RATE = 50.0
T0 = 1_767_225_600.0


def _feed(det: FallDetector, g: np.ndarray, sizes: list[int]) -> list[FallFinding]:
    out, i, j = [], 0, 0
    while i < len(g):
        n = sizes[j % len(sizes)]
        out += det.feed(T0 + i / RATE, RATE, g[i : i + n])
        i, j = i + n, j + 1
    return out


def _fall(seed: int = 1) -> tuple[np.ndarray, float]:
    """Walking 6 s, a 0.6 s drop (|a| falling to 0.3 g: partial free fall) while the device
    turns 90 degrees, a 4 g body impact of about 150 ms, then lying still 8 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(6 * RATE)) / RATE
    up = np.array([0.0, -1.0, 0.0])
    walk = np.tile(up, (t.size, 1))
    walk[:, 1] += -0.2 * np.sin(2 * np.pi * 1.8 * t)
    walk[:, 0] += 0.1 * np.sin(2 * np.pi * 0.9 * t)
    n_fall = int(0.6 * RATE)
    ang = np.linspace(0, np.pi / 2, n_fall)
    mag = np.interp(np.arange(n_fall), [0, n_fall * 0.3, n_fall - 1], [1.0, 0.3, 0.3])
    fall = np.column_stack([np.zeros(n_fall), -np.cos(ang), np.sin(ang)]) * mag[:, None]
    lying = np.tile([0.0, 0.0, 1.0], (int(8 * RATE), 1))
    k = int(0.15 * RATE)
    lying[:k] *= 1 + 3.0 * np.sin(np.linspace(0, np.pi, k))[:, None]  # 4 g
    g = np.vstack([walk, fall, lying]) + rng.normal(0, 0.01, (t.size + n_fall + len(lying), 3))
    return g, T0 + (t.size + n_fall + k / 2) / RATE


def _claps(seed: int = 2) -> np.ndarray:
    """Standing with the hands together: 3 g claps of 40 ms twice a second for 8 s."""
    rng = np.random.default_rng(seed)
    n = int(14 * RATE)
    g = np.tile([0.3, -0.2, 0.93], (n, 1))
    for s in np.arange(3.0, 11.0, 0.5):
        i = int(s * RATE)
        g[i : i + 2] = [0.3 + 2.9, -0.2, 0.93]
    return g + rng.normal(0, 0.02, g.shape)


def _jog(seed: int = 3) -> np.ndarray:
    """Jogging 20 s: 2.8 g foot strikes at 2.6 Hz with the arm swinging."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(20 * RATE)) / RATE
    phase = (t * 2.6) % 1.0
    strike = 1.8 * np.exp(-(((phase - 0.1) / 0.03) ** 2))
    g = np.column_stack(
        [
            0.3 * np.sin(2 * np.pi * 1.3 * t),
            -1.0 - strike - 0.3 * np.cos(2 * np.pi * 2.6 * t),
            0 * t,
        ]
    )
    return g + rng.normal(0, 0.03, g.shape)


def test_model_file_loads_and_matches_the_thresholds() -> None:
    m = fall_model()
    assert m is fall_model() and m is FF.load_model()  # read once per process
    assert (m.suspect_p, m.silent_p, m.alert_p) == (SUSPECT_P, SILENT_P, ALERT_P)
    assert 0.0 < SUSPECT_P < SILENT_P < ALERT_P < 1.0
    assert set(m.calibration) >= {"wrist", "trunk"}
    assert all(len(v) == 3 and v[0] < v[1] < v[2] for v in m.calibration.values())
    raw = json.loads(FF.MODEL_PATH.read_text(encoding="utf-8"))
    assert tuple(raw["features"]) == FF.FEATURES


def test_numpy_inference_matches_training_time_prediction() -> None:
    """The export stored scikit-learn's probabilities for synthetic rows; numpy must agree."""
    raw = json.loads(FF.MODEL_PATH.read_text(encoding="utf-8"))
    x, p = np.array(raw["check"]["x"]), np.array(raw["check"]["p"])
    assert x.shape == (len(p), FF.N_FEATURES) and len(p) >= 16
    np.testing.assert_allclose(fall_model().raw_probability(x), p, rtol=0, atol=1e-9)
    one = [fall_model().raw_probability(r[None, :])[0] for r in x]  # the streaming path
    np.testing.assert_allclose(one, p, rtol=0, atol=1e-9)


def _with_decision(m: FF.FallModel) -> FF.FallModel:
    """The shipped model's calibration and thresholds, with a raw log-odds of our choosing:
    a logistic model whose only weight is on ``peak_g`` (feature 1), so ``decision = peak_g``."""
    coef = np.zeros(FF.N_FEATURES)
    coef[1] = 1.0
    spec: dict[str, Any] = {"kind": "logistic", "mean": np.zeros(FF.N_FEATURES)}
    spec["scale"] = np.ones(FF.N_FEATURES)
    spec |= {"coef": coef, "intercept": 0.0}
    return FF.FallModel("logistic", spec, m.suspect_p, m.silent_p, m.alert_p, m.calibration)


def _rows(wrist: float, z: np.ndarray) -> np.ndarray:
    x = np.zeros((len(z), FF.N_FEATURES))
    x[:, 0], x[:, 1] = wrist, z
    return x


@pytest.mark.parametrize(("wrist", "group"), [(1.0, "wrist"), (0.0, "trunk")])
def test_calibration_maps_the_three_anchors_onto_the_thresholds(wrist: float, group: str) -> None:
    m = fall_model()
    lo, mid, hi = m.calibration[group]
    t = _with_decision(m)
    p = t.probability(_rows(wrist, np.array([lo, mid, hi])))
    np.testing.assert_allclose(p, [SUSPECT_P, SILENT_P, ALERT_P], rtol=0, atol=1e-12)
    # monotone and continuous across the anchors, extrapolated beyond both ends
    z = np.sort(np.r_[np.linspace(lo - 5.0, hi + 5.0, 4001), lo, mid, hi])
    p = t.probability(_rows(wrist, z))
    assert np.all(np.diff(p) >= 0.0)
    assert 0.0 < p[0] < SUSPECT_P and ALERT_P < p[-1] < 1.0
    for a in (lo, mid, hi):  # no jump at an anchor
        below, at, above = t.probability(_rows(wrist, np.array([a - 1e-9, a, a + 1e-9])))
        assert below <= at <= above and above - below < 1e-6
    # the same on the shipped model's own score
    x = np.zeros((1, FF.N_FEATURES))
    x[0, 0] = wrist
    z0, p0 = float(m.decision(x)[0]), float(m.probability(x)[0])
    for anchor, thr in ((lo, SUSPECT_P), (mid, SILENT_P), (hi, ALERT_P)):
        assert (z0 >= anchor) == (p0 >= thr - 1e-12)


def test_calibration_anchors_must_increase() -> None:
    raw = json.loads(FF.MODEL_PATH.read_text(encoding="utf-8"))
    lo, mid, hi = raw["calibration"]["wrist"]
    for bad in ([lo, hi, mid], [lo, lo, hi], [lo, hi]):
        raw["calibration"]["wrist"] = bad
        with pytest.raises(ValueError, match="calibration of wrist"):
            FF.FallModel.from_dict(raw)


# At the wrist the same fall is a suspicion only: the wrist's alert operating point had to hold
# on everyday wrist wear (FALL_MODEL.md), so an unanswered wrist suspicion needs more evidence.
@pytest.mark.parametrize(
    ("placement", "above"), [("waist", ALERT_P), ("pendant", ALERT_P), ("wrist", SUSPECT_P)]
)
def test_constructed_fall_is_above_alert_p(placement: str, above: float) -> None:
    g, impact = _fall()
    f = _feed(FallDetector(placement), g, [50])
    assert len(f) == 1, f
    assert abs(f[0].impact_ts - impact) < 0.2
    assert f[0].probability > above, f[0].evidence
    assert f[0].evidence["probability"] == round(f[0].probability, 4)
    assert set(FF.FEATURES) <= set(f[0].evidence)
    assert f[0].lying_still


@pytest.mark.parametrize("placement", ["waist", "wrist"])
@pytest.mark.parametrize("signal", ["claps", "jog"])
def test_claps_and_jogging_stay_below_suspect_p(placement: str, signal: str) -> None:
    g = _claps() if signal == "claps" else _jog()
    det = FallDetector(placement, collect=[])
    _feed(det, g, [50])
    assert det.collect, "the low gate makes them candidates"
    x = np.array([x for _, x in det.collect])
    assert float(fall_model().probability(x).max()) < SUSPECT_P
    assert _feed(FallDetector(placement), g, [50]) == []


@pytest.mark.parametrize("sizes", [[1], [7, 50, 3, 120], [13], [400]])
def test_chunking_does_not_change_findings_or_probabilities(sizes: list[int]) -> None:
    g = np.vstack([_fall(1)[0], _claps(), _fall(4)[0]])
    ref = _feed(FallDetector("wrist"), g, [50])
    got = _feed(FallDetector("wrist"), g, sizes)
    assert len(ref) == 2
    assert [(f.impact_ts, f.probability, f.evidence) for f in got] == [
        (f.impact_ts, f.probability, f.evidence) for f in ref
    ]


def test_finding_round_trips_with_probability() -> None:
    (f,) = _feed(FallDetector("waist"), _fall()[0], [50])
    assert FallFinding.from_dict(json.loads(json.dumps(f.to_dict()))) == f


def test_up_and_about() -> None:
    t = np.arange(int(20 * RATE)) / RATE
    walk = np.column_stack(
        [0.15 * np.sin(2 * np.pi * 0.9 * t), -1 - 0.25 * np.sin(2 * np.pi * 1.8 * t), 0 * t]
    )
    walk += np.random.default_rng(5).normal(0, 0.02, walk.shape)
    lying = np.tile([0.0, 0.0, 1.0], (len(t), 1)) + np.random.default_rng(6).normal(
        0, 0.01, walk.shape
    )
    struggle = lying + np.random.default_rng(7).normal(0, 0.4, walk.shape)  # not periodic
    for placement in ("waist", "wrist", "pendant"):
        assert FF.up_and_about(placement, RATE, walk)
        assert not FF.up_and_about(placement, RATE, lying)
        assert not FF.up_and_about(placement, RATE, struggle)
        assert not FF.up_and_about(placement, RATE, walk[: int(3 * RATE)])  # too short
    assert not FF.up_and_about("wrist", RATE, np.zeros((0, 3)))


@pytest.mark.parametrize("rail", [2.0, 4.0])
def test_impact_duration_is_the_same_on_a_clipping_device(rail: float) -> None:
    """A 4 g impact on a device that clips every axis at ``rail``: the peak reads lower, the
    time above ``HI_G`` and ``HI_FULL_G`` does not change (FALL_MODEL.md, device range)."""
    g, impact = _fall()

    def at_impact(a: np.ndarray) -> np.ndarray:
        det = FallDetector("waist", collect=[])
        _feed(det, a, [50])
        assert det.collect is not None
        ((_, x),) = [c for c in det.collect if abs(c[0] - impact) < 0.2]
        return x

    full, clipped = at_impact(g), at_impact(np.clip(g, -rail, rail))
    peak, hi, hi_full = (FF.FEATURES.index(f) for f in ("peak_g", "hi_s", "hi_full_s"))
    assert clipped[peak] <= rail * np.sqrt(3) and (rail >= 4.0 or clipped[peak] < full[peak])
    assert full[hi] > 0 and full[hi_full] > 0
    assert (clipped[hi], clipped[hi_full]) == (full[hi], full[hi_full])


def test_a_dropped_device_is_vetoed() -> None:
    """0.45 s weightless then a 6 g hit: no toppling body is that weightless (physics veto)."""
    g, _ = _fall()
    i = int(6.15 * RATE)
    g[i : i + int(0.45 * RATE)] = 0.02  # free fall of the device itself
    det = FallDetector("waist", collect=[])
    _feed(det, g, [50])
    assert det.collect is not None
    x = np.array([x for _, x in det.collect])
    assert FF.vetoed(x).any()
    assert float(fall_model().probability(x[FF.vetoed(x)]).max()) == 0.0
    assert [f for f in _feed(FallDetector("waist"), g, [50]) if not f.evidence.get("slow")] == []


# ---- device rate (FALL_MODEL.md): below LOW_RATE_HZ the low-rate model judges -----------------
def test_low_rate_model_file_loads_and_matches_the_thresholds() -> None:
    low = fall_model(25.0)
    assert low is fall_model(20.0) and low is FF.load_model(FF.LOW_RATE_MODEL_PATH)
    assert low is not fall_model() and fall_model(FF.LOW_RATE_HZ) is fall_model(200.0)
    assert (low.suspect_p, low.silent_p, low.alert_p) == (SUSPECT_P, SILENT_P, ALERT_P)
    assert all(len(v) == 3 and v[0] < v[1] < v[2] for v in low.calibration.values())
    raw = json.loads(FF.LOW_RATE_MODEL_PATH.read_text(encoding="utf-8"))
    assert tuple(raw["features"]) == FF.FEATURES
    assert raw["meta"]["used_below_hz"] == FF.LOW_RATE_HZ
    x, p = np.array(raw["check"]["x"]), np.array(raw["check"]["p"])
    np.testing.assert_allclose(low.raw_probability(x), p, rtol=0, atol=1e-9)


@pytest.mark.parametrize("rate", [20.0, 25.0, 40.0])
def test_a_slower_device_is_judged_by_the_low_rate_model(rate: float) -> None:
    """The constructed fall as a ``rate`` Hz device sends it: the finding's probability is the
    low-rate model's for the features the detector computed."""
    from detectors.fall_train import resampled

    g, impact = _fall()
    msgs = [(0.0, T0 + i / RATE, RATE, g[i : i + 50].tolist()) for i in range(0, len(g), 50)]
    slow = resampled(msgs, g, RATE, rate)
    assert {r for *_, r, _ in slow} == {rate}

    def run(det: FallDetector) -> list[FallFinding]:
        return [f for _, ts, r, rows in slow for f in det.feed(ts, r, np.array(rows))]

    collect = FallDetector("waist", collect=[])
    run(collect)
    assert collect.collect is not None
    ((_, x),) = [c for c in collect.collect if abs(c[0] - impact) < 0.2]
    (f,) = run(FallDetector("waist"))
    low, native = (float(m.probability(x[None, :])[0]) for m in (fall_model(rate), fall_model()))
    assert f.evidence["probability"] == round(low, 4) != round(native, 4)
    assert f.probability > ALERT_P


# ---- device range (FALL_MODEL.md): a wrist device that clips at +-2 g -------------------------
def _decided(placement: str, g: np.ndarray) -> tuple[FallDetector, np.ndarray, list[FallFinding]]:
    """Features of the candidate at the constructed fall's impact, and the findings."""
    _, impact = _fall()
    collect = FallDetector(placement, collect=[], collect_clip2=[])
    _feed(collect, g, [50])
    assert collect.collect is not None
    ((_, x),) = [c for c in collect.collect if abs(c[0] - impact) < 0.2]
    det = FallDetector(placement)
    return det, x, _feed(det, g, [50])


def test_a_wrist_device_that_clips_at_2g_is_judged_by_the_2g_model() -> None:
    g, _ = _fall()
    det, x, found = _decided("wrist", np.clip(g, -2.0, 2.0))
    assert det.clips_at_2g() and FF.RAIL2_MG[0] <= det.axis_hi_mg <= FF.RAIL2_MG[1]
    clip2, native = (fall_model(50.0, True), fall_model(50.0))
    assert clip2 is FF.load_model(FF.CLIP2_MODEL_PATH) and clip2 is not native
    p2, p1 = (float(m.probability(x[None, :])[0]) for m in (clip2, native))
    assert [f.evidence["probability"] for f in found] == [round(p2, 4)] and round(p1, 4) != round(
        p2, 4
    )
    raw = json.loads(FF.CLIP2_MODEL_PATH.read_text(encoding="utf-8"))
    assert tuple(raw["features"]) == FF.FEATURES and raw["meta"]["rail2_mg"] == list(FF.RAIL2_MG)
    xs, ps = np.array(raw["check"]["x"]), np.array(raw["check"]["p"])
    np.testing.assert_allclose(clip2.raw_probability(xs), ps, rtol=0, atol=1e-9)


def test_the_range_rule_is_the_wrist_s_and_a_reading_beyond_2g_ends_it() -> None:
    g, _ = _fall()
    clipped = np.clip(g, -2.0, 2.0)
    waist, x, found = _decided("waist", clipped)  # the trunk data had a +-2 g device already
    assert not waist.clips_at_2g() and waist.axis_hi_mg == 0
    assert [f.evidence["probability"] for f in found] == [
        round(float(fall_model(50.0).probability(x[None, :])[0]), 4)
    ]
    wrist = FallDetector("wrist")
    _feed(wrist, g[:100], [50])  # walking at about 1 g says nothing yet
    assert not wrist.clips_at_2g()
    _feed(wrist, g[100:], [50])  # the unclipped fall reads 4 g: not a +-2 g device ...
    assert wrist.axis_hi_mg > FF.RAIL2_MG[1] and not wrist.clips_at_2g()
    _feed(wrist, clipped, [50])  # ... and never becomes one
    assert not wrist.clips_at_2g()
    state = json.loads(json.dumps(_decided("wrist", clipped)[0].to_state()))
    assert FallDetector.from_state(state).clips_at_2g()
    del state["axis_hi"]  # a state saved before the rule: not known yet
    assert not FallDetector.from_state(state).clips_at_2g()
