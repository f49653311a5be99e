"""NEWS2 chart edges, rounding, scale 2, vectorised equivalence and the resident alert state."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.news2 import (
    ACVPU_CODES,
    PARAMETERS,
    Raise,
    Resolve,
    VitalsConfig,
    VitalsMonitor,
    plausible,
    score,
    score_arrays,
)

# (parameter, value, expected points): both sides of every cut-point of the chart.
EDGES = [
    ("rr", 8, 3),
    ("rr", 9, 1),
    ("rr", 11, 1),
    ("rr", 12, 0),
    ("rr", 20, 0),
    ("rr", 21, 2),
    ("rr", 24, 2),
    ("rr", 25, 3),
    ("rr", 3, 3),
    ("rr", 60, 3),
    ("spo2", 91, 3),
    ("spo2", 92, 2),
    ("spo2", 93, 2),
    ("spo2", 94, 1),
    ("spo2", 95, 1),
    ("spo2", 96, 0),
    ("spo2", 100, 0),
    ("spo2", 70, 3),
    ("sbp", 90, 3),
    ("sbp", 91, 2),
    ("sbp", 100, 2),
    ("sbp", 101, 1),
    ("sbp", 110, 1),
    ("sbp", 111, 0),
    ("sbp", 219, 0),
    ("sbp", 220, 3),
    ("sbp", 60, 3),
    ("hr", 40, 3),
    ("hr", 41, 1),
    ("hr", 50, 1),
    ("hr", 51, 0),
    ("hr", 90, 0),
    ("hr", 91, 1),
    ("hr", 110, 1),
    ("hr", 111, 2),
    ("hr", 130, 2),
    ("hr", 131, 3),
    ("hr", 25, 3),
    ("temp", 35.0, 3),
    ("temp", 35.1, 1),
    ("temp", 36.0, 1),
    ("temp", 36.1, 0),
    ("temp", 38.0, 0),
    ("temp", 38.1, 1),
    ("temp", 39.0, 1),
    ("temp", 39.1, 2),
    ("temp", 41.0, 2),
    ("temp", 33.0, 3),
    ("acvpu", "A", 0),
    ("acvpu", "C", 3),
    ("acvpu", "V", 3),
    ("acvpu", "P", 3),
    ("acvpu", "U", 3),
    ("acvpu", "a", 0),
    ("o2", True, 2),
    ("o2", False, 0),
]


@pytest.mark.parametrize(("param", "value", "points"), EDGES)
def test_chart_edges(param: str, value: object, points: int) -> None:
    result = score({param: value})
    assert result.parameters == {param: points}
    assert result.total == points
    assert result.partial


# Scale 2: (spo2, on oxygen, points)
SCALE2 = [
    (83, False, 3),
    (84, False, 2),
    (85, False, 2),
    (86, False, 1),
    (87, False, 1),
    (88, False, 0),
    (92, False, 0),
    (93, False, 0),
    (97, False, 0),
    (100, False, 0),
    (83, True, 3),
    (84, True, 2),
    (85, True, 2),
    (86, True, 1),
    (87, True, 1),
    (88, True, 0),
    (92, True, 0),
    (93, True, 1),
    (94, True, 1),
    (95, True, 2),
    (96, True, 2),
    (97, True, 3),
    (100, True, 3),
]


@pytest.mark.parametrize(("spo2", "on_o2", "points"), SCALE2)
def test_scale2(spo2: int, on_o2: bool, points: int) -> None:
    result = score({"spo2": spo2, "o2": on_o2}, spo2_scale=2)
    assert result.parameters["spo2"] == points
    assert result.parameters["o2"] == (2 if on_o2 else 0)
    assert result.total == points + (2 if on_o2 else 0)


def test_scale2_unknown_oxygen_is_air() -> None:
    result = score({"spo2": 97}, spo2_scale=2)
    assert result.parameters == {"spo2": 0}


def test_scale1_ignores_oxygen_for_spo2() -> None:
    assert score({"spo2": 97, "o2": True}).parameters == {"spo2": 0, "o2": 2}


def test_bad_scale() -> None:
    with pytest.raises(ValueError):
        score({"hr": 70}, spo2_scale=3)


ROUNDING = [
    ("rr", 20.4, 0),
    ("rr", 20.5, 2),
    ("rr", 8.49, 3),
    ("rr", 8.5, 1),
    ("rr", 24.5, 3),
    ("spo2", 95.5, 0),
    ("spo2", 95.49, 1),
    ("spo2", 91.5, 2),
    ("sbp", 90.5, 2),
    ("sbp", 90.49, 3),
    ("sbp", 219.5, 3),
    ("sbp", 110.5, 0),
    ("hr", 40.5, 1),
    ("hr", 40.4, 3),
    ("hr", 90.5, 1),
    ("hr", 130.5, 3),
    ("hr", 130.49, 2),
    ("temp", 35.05, 1),
    ("temp", 35.04, 3),
    ("temp", 36.05, 0),
    ("temp", 38.05, 1),
    ("temp", 39.05, 2),
    ("temp", 39.04, 1),
    ("temp", 36.04, 1),
]


@pytest.mark.parametrize(("param", "value", "points"), ROUNDING)
def test_rounding(param: str, value: float, points: int) -> None:
    assert score({param: value}).parameters[param] == points
    cols = {p: np.array([np.nan]) for p in PARAMETERS}
    cols[param] = np.array([value])
    _, mat = score_arrays(
        cols["rr"], cols["spo2"], cols["o2"], cols["sbp"], cols["hr"], cols["acvpu"], cols["temp"]
    )
    assert mat[0, PARAMETERS.index(param)] == points


def test_full_score_not_partial() -> None:
    vit = {"rr": 22, "spo2": 93, "o2": True, "sbp": 95, "hr": 115, "acvpu": "V", "temp": 39.2}
    result = score(vit)
    assert not result.partial
    assert result.parameters == {
        "rr": 2,
        "spo2": 2,
        "o2": 2,
        "sbp": 2,
        "hr": 2,
        "acvpu": 3,
        "temp": 2,
    }
    assert result.total == 15
    assert list(result.parameters) == list(PARAMETERS)


def test_missing_is_absent_not_zero() -> None:
    result = score({"hr": 72, "spo2": None, "temp": math.nan, "dbp": 80})
    assert result.parameters == {"hr": 0}
    assert result.partial
    assert score({}).total == 0


# ---------------------------------------------------------------- vectorised == scalar

maybe = st.one_of(st.none(), st.floats(0, 400, allow_nan=False))
vitals_st = st.fixed_dictionaries(
    {
        "rr": st.one_of(st.none(), st.floats(0, 60)),
        "spo2": st.one_of(st.none(), st.floats(40, 100), st.integers(40, 100).map(float)),
        "o2": st.one_of(st.none(), st.booleans()),
        "sbp": st.one_of(st.none(), st.floats(40, 300)),
        "hr": st.one_of(st.none(), st.floats(20, 300), st.sampled_from([40.5, 50.5, 90.5, 130.5])),
        "acvpu": st.one_of(st.none(), st.sampled_from("ACVPU")),
        "temp": st.one_of(
            st.none(), st.floats(30, 43), st.integers(340, 400).map(lambda t: t / 10 + 0.05)
        ),
    }
)


def _columns(batch: list[dict[str, object]]) -> list[np.ndarray]:
    def col(key: str) -> np.ndarray:
        out = []
        for v in batch:
            x = v[key]
            if x is None:
                out.append(np.nan)
            elif key == "acvpu":
                out.append(float(ACVPU_CODES[str(x)]))
            else:
                out.append(float(x))  # type: ignore[arg-type]
        return np.array(out, dtype=float)

    return [col(k) for k in PARAMETERS]


@settings(max_examples=300, deadline=None)
@given(st.lists(vitals_st, min_size=1, max_size=20), st.sampled_from([1, 2]))
def test_vector_matches_scalar(batch: list[dict[str, object]], scale: int) -> None:
    rr, spo2, o2, sbp, hr, acvpu, temp = _columns(batch)
    totals, mat = score_arrays(rr, spo2, o2, sbp, hr, acvpu, temp, spo2_scale=scale)
    for i, v in enumerate(batch):
        ref = score({k: x for k, x in v.items() if x is not None}, spo2_scale=scale)
        assert totals[i] == ref.total
        got = {p: int(mat[i, j]) for j, p in enumerate(PARAMETERS) if mat[i, j] >= 0}
        assert got == ref.parameters


def test_vector_per_row_scale() -> None:
    nan = [np.nan, np.nan]
    totals, mat = score_arrays(
        nan, [97, 97], [1, 1], nan, nan, nan, nan, spo2_scale=np.array([1, 2])
    )
    assert mat[:, 1].tolist() == [0, 3]
    assert totals.tolist() == [2, 5]


# ---------------------------------------------------------------- plausibility


@pytest.mark.parametrize(
    "vit",
    [
        {"hr": 0},
        {"hr": 400},
        {"spo2": 101},
        {"spo2": 20},
        {"temp": 60},
        {"temp": 15},
        {"sbp": 80, "dbp": 90},
        {"sbp": 120, "dbp": 120},
        {"rr": 0},
        {"hr": math.nan},
        {"hr": "72"},
        {"hr": True},
        {"acvpu": "X"},
        {"o2": "yes"},
        {"sbp": 400},
        {"hr": math.inf},
    ],
)
def test_implausible(vit: dict[str, object]) -> None:
    assert plausible(vit)


def test_plausible() -> None:
    assert (
        plausible(
            {
                "hr": 72,
                "spo2": 97,
                "sbp": 128,
                "dbp": 80,
                "rr": 16,
                "temp": 36.8,
                "o2": False,
                "acvpu": "A",
            }
        )
        == []
    )
    assert plausible({}) == []
    assert plausible({"hr": np.int64(72), "spo2": np.float64(97.0)}) == []
    assert plausible({"sbp": np.float64(80), "dbp": np.int64(90)})
    assert plausible({"hr": 35, "spo2": 62, "temp": 34.0}) == []  # alarming but possible


# ---------------------------------------------------------------- resident state

NORMAL = {"hr": 72, "spo2": 97, "rr": 16, "temp": 36.7}


def roundtrip(m: VitalsMonitor) -> VitalsMonitor:
    return VitalsMonitor.from_state(json.loads(json.dumps(m.to_state())), m.config)


def test_warning_critical_resolve() -> None:
    m = VitalsMonitor()
    assert m.observe(0, NORMAL, "W001") is None
    assert m.observe(60, {"hr": 135}, "W001") is None  # one spike: the median is still 102.5
    d = m.observe(90, {"hr": 136}, "W001")  # confirmed: median 135, single parameter 3
    assert isinstance(d, Raise) and d.severity == "warning"
    assert d.details["news2"] == 3 and d.details["scores"]["hr"] == 3
    assert d.details["reason"] == "single parameter 3"
    m = roundtrip(m)
    assert m.observe(120, {"hr": 137}, "W001") is None  # same severity: no re-raise
    assert m.observe(150, {"rr": 26, "spo2": 91, "temp": 39.3}, "M001") is None  # halfway
    d = m.observe(180, {"rr": 26, "spo2": 91, "temp": 39.3}, "M001")  # 3+3+3+2 = 11
    assert isinstance(d, Raise) and d.severity == "critical" and d.details["news2"] == 11
    assert d.details["devices"] == ["M001", "W001"]
    assert m.observe(240, {"rr": 20, "spo2": 94}, "M001") is None  # lower: no raise
    # back to normal: resolves only after 30 min of low scores
    assert m.observe(270, {**NORMAL, "hr": 80}, "M001") is None
    assert m.observe(285, {**NORMAL, "hr": 80}, "M001") is None
    assert m.observe(300, {**NORMAL, "hr": 80}, "M001") is None
    m = roundtrip(m)
    assert m.observe(1200, NORMAL, "M001") is None
    assert m.check(285 + 1799) is None  # the median turned low with the reading at 285
    assert m.check(285 + 1800) == Resolve(2085)
    assert m.open is None
    assert m.check(2200) is None


def test_medium_aggregate_is_warning() -> None:
    m = VitalsMonitor()
    d = m.observe(0, {"rr": 22, "hr": 112, "spo2": 95}, "W")  # 2+2+1 = 5
    assert isinstance(d, Raise) and d.severity == "warning" and d.details["news2"] == 5


def test_rise_during_low_streak_resets_it() -> None:
    m = VitalsMonitor()
    m.observe(0, {"hr": 140}, "W")
    m.observe(60, {"hr": 70}, "W")
    m.observe(1000, {"hr": 140}, "W")  # high again: no new raise, low streak reset
    assert m.observe(1100, {"hr": 70}, "W") is None
    assert m.check(60 + 1800) is None
    assert m.check(1100 + 1800) == Resolve(2900)


def test_freshness_merges_devices_and_expires() -> None:
    m = VitalsMonitor()
    assert m.observe(0, {"rr": 22, "hr": 112}, "M001") is None  # 4
    d = m.observe(600, {"spo2": 95}, "W001")  # rr and hr still fresh: 5
    assert isinstance(d, Raise) and d.details["news2"] == 5
    m2 = VitalsMonitor()
    m2.observe(0, {"rr": 22, "hr": 112}, "M001")
    assert m2.observe(901, {"spo2": 95}, "W001") is None  # older values expired
    assert set(m2.latest) == {"spo2"}


def test_no_fresh_data_keeps_alert_open() -> None:
    m = VitalsMonitor()
    m.observe(0, {"hr": 140}, "W")
    assert m.check(10_000) is None
    assert m.open == "warning"


def test_out_of_order_does_not_replace_newer() -> None:
    m = VitalsMonitor()
    m.observe(100, {"hr": 70}, "W")
    assert m.observe(50, {"hr": 140}, "W") is None
    assert m.latest["hr"][0] == 70


def test_scale2_config() -> None:
    m = VitalsMonitor(VitalsConfig(spo2_scale=2))
    assert m.observe(0, {"spo2": 89, "o2": False}, "M") is None
    d = VitalsMonitor().observe(0, {"spo2": 89}, "M")
    assert isinstance(d, Raise)


# ---------------------------------------------------------------- the trend rule

BAND0 = {  # values that score 0 on scale 1 (the chart's normal band), o2 on air, alert
    "hr": st.integers(51, 90),
    "spo2": st.integers(96, 100),
    "rr": st.integers(12, 20),
    "temp": st.floats(36.1, 38.0).map(lambda t: round(t, 1)),
    "sbp": st.integers(111, 219),
    "o2": st.just(False),
    "acvpu": st.just("A"),
}


def feed(m: VitalsMonitor, t0: float, t1: float, every: float, vit: dict) -> list[Raise | Resolve]:
    """Readings of ``vit`` from t0 to t1 (exclusive), one every ``every`` s; the decisions."""
    out = []
    t = t0
    while t < t1:
        d = m.observe(t, vit, "W")
        if d is not None:
            out.append(d)
        t += every
    return out


def test_no_trend_from_two_spot_readings_with_news2_0() -> None:
    """The measured case: pulse 61 then 80 an hour apart, every parameter scoring 0."""
    m = VitalsMonitor()
    assert m.observe(0, {"hr": 61, "spo2": 97, "sbp": 128}, "M001") is None
    assert m.observe(3600, {"hr": 80, "spo2": 97, "sbp": 126}, "M001") is None
    assert m.check(3600 + 900) is None and m.open is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(1, 4000),
            st.fixed_dictionaries({}, optional=BAND0),
        ),
        min_size=1,
        max_size=80,
    )
)
def test_all_zero_parameters_never_give_a_trend(readings: list[tuple[float, dict]]) -> None:
    m = VitalsMonitor()
    t = 0.0
    for dt, vit in readings:
        t += dt
        assert m.observe(t, vit, "W") is None
        m = roundtrip(m)
    assert m.check(t + 3600) is None and m.open is None


def raises(decisions: list[Raise | Resolve]) -> list[Raise]:
    """The decisions, which must all be raises (typed for the assertions)."""
    assert all(isinstance(d, Raise) for d in decisions), decisions
    return [d for d in decisions if isinstance(d, Raise)]


# A resident's ordinary day (NEWS2 0), then respiration 22 (2) and 38.4 °C (1): NEWS2 3.
ORDINARY = {"hr": 72, "spo2": 97, "rr": 16, "temp": 36.8}
RAISED = {"hr": 84, "spo2": 97, "rr": 22, "temp": 38.4}


def test_a_sustained_rise_of_news2_warns_then_resolves() -> None:
    m = VitalsMonitor()
    assert feed(m, 0, 7200, 60, ORDINARY) == []
    # Three raised readings make the median raised at 7260: the rise starts there.
    got = feed(m, 7200, 7200 + 2400, 60, RAISED)
    (d,) = got
    assert isinstance(d, Raise) and d.severity == "warning" and d.ts == 7260 + 1800
    assert d.details["reason"] == "trend" and d.details["news2"] == 3
    assert d.details["trend"] == {
        "rule": "NEWS2 >= 2 above its 24 h maximum, held",
        "baseline_24h_max": 0,
        "news2": 3,
        "since": 7260,
        "readings": 31,
    }
    m = roundtrip(m)
    assert feed(m, 9600, 12_000, 60, RAISED) == []  # held: the same alert, nothing new
    assert len(json.dumps(m.to_state())) < 2000
    # Back to its ordinary: resolves after 30 min below the level that raised it.
    got = feed(m, 12_000, 12_000 + 2400, 60, ORDINARY)
    assert got == [Resolve(12_060 + 1800)]


def test_a_rise_that_does_not_hold_or_is_small_is_not_a_trend() -> None:
    m = VitalsMonitor()
    feed(m, 0, 7200, 60, ORDINARY)
    assert feed(m, 7200, 7200 + 1500, 60, RAISED) == []  # 25 min, then back
    assert feed(m, 8700, 9600, 60, ORDINARY) == []
    assert feed(m, 9600, 20_000, 60, {**ORDINARY, "temp": 38.4}) == []  # +1 only, for hours


def test_no_trend_without_a_baseline_of_the_resident() -> None:
    """Enrolled with NEWS2 3: nothing to compare with (the chart's thresholds still apply)."""
    m = VitalsMonitor()
    assert feed(m, 0, 4 * 3600, 60, RAISED) == []


def test_the_baseline_is_the_24_h_maximum() -> None:
    def evening() -> VitalsMonitor:
        m = VitalsMonitor()
        feed(m, 0, 3600, 60, ORDINARY)
        feed(m, 3600, 7200, 60, {**ORDINARY, "rr": 22})  # NEWS2 2 for an hour in the evening
        feed(m, 7200, 30_000, 60, ORDINARY)
        return m

    m = evening()
    assert feed(m, 30_000, 40_000, 60, {**ORDINARY, "rr": 22, "temp": 38.4}) == []  # 3 = max + 1
    m = evening()
    got = feed(m, 30_000, 35_000, 60, {**ORDINARY, "rr": 22, "temp": 39.2})  # 4 = max + 2
    assert [(d.details["reason"], d.details["trend"]["baseline_24h_max"]) for d in raises(got)] == [
        ("trend", 2)
    ]
    # A day later that evening has left the baseline: 2 is again +2 over the day's maximum, 0.
    m2 = VitalsMonitor()
    feed(m2, 0, 3600, 60, ORDINARY)
    feed(m2, 3600, 7200, 60, {**ORDINARY, "rr": 22})
    feed(m2, 7200, 7200 + 90_000, 300, ORDINARY)
    got = feed(m2, 97_200, 102_000, 60, {**ORDINARY, "rr": 22})
    assert [d.details["trend"]["baseline_24h_max"] for d in raises(got)] == [0]


def test_the_chart_threshold_after_a_trend_is_raised_again() -> None:
    """The chart always speaks: aggregate 5 after a trend warning is a new record, same alert."""
    m = VitalsMonitor()
    feed(m, 0, 7200, 60, ORDINARY)
    (trend,) = raises(feed(m, 7200, 7200 + 2400, 60, RAISED))
    assert trend.details["reason"] == "trend"
    got = feed(m, 9600, 9900, 60, {**RAISED, "spo2": 94, "hr": 95})  # 2+1+1+1 = 5
    assert [(d.severity, d.details["reason"]) for d in raises(got)] == [("warning", "aggregate>=5")]
    assert feed(m, 9900, 10_500, 60, {**RAISED, "spo2": 94, "hr": 95}) == []


def test_no_trend_when_disabled() -> None:
    m = VitalsMonitor(VitalsConfig(trend=False))
    feed(m, 0, 7200, 60, ORDINARY)
    assert feed(m, 7200, 20_000, 60, RAISED) == []
    assert not m.hours and m.to_state()["hours64"] == ""
