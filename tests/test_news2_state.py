"""The saved form of ``VitalsMonitor``: base64 of its arrays' little-endian bytes, exact (a
monitor read back decides as the one that wrote it), smaller than the list form it replaced,
and that list form, still in Kafka changelogs, still loads."""

from __future__ import annotations

import base64
import json
import math
from array import array
from typing import Any

import numpy as np
import orjson
import pytest

from detectors import news2
from detectors.news2 import MEDIAN_OF, VitalsMonitor

T0 = 1_767_225_600.0
EVERY = {
    "rr": 16.0,
    "spo2": 97.0,
    "o2": False,
    "sbp": 124.0,
    "hr": 72.0,
    "acvpu": "A",
    "temp": 36.6,
}


def _readings(m: VitalsMonitor) -> None:
    m.observe(T0, {"hr": 70, "spo2": 97.0, "rr": 16, "acvpu": "A", "o2": False}, "W001")
    m.observe(T0 + 60, {"hr": 80, "temp": 37.1}, "W001")
    m.observe(T0 + 30, {"hr": 75}, "W002")  # out of order: in its place
    m.observe(T0 + 3600, {"hr": 90, "rr": 18}, "W001")
    m.observe(T0 + 3660, {"hr": 131, "rr": 25}, "W001")
    m.observe(T0 + 3720, {"hr": 132, "rr": 26, "sbp": 99}, "W001")


# What the list-form version wrote after ``_readings`` (json.dumps of its ``to_state()``).
OLD_FORM = json.loads(
    '{"latest": {"rr": [26, 1767229320.0, "W001"], "hr": [132, 1767229320.0, "W001"], "sbp": '
    '[99, 1767229320.0, "W001"]}, "open": "critical", "low_since": null, "now": 1767229320.0, '
    '"recent": {"rr": [[18.0, 1767229200.0], [25.0, 1767229260.0], [26.0, 1767229320.0]], '
    '"spo2": [[97.0, 1767225600.0]], "sbp": [[99.0, 1767229320.0]], "hr": [[90.0, 1767229200.0], '
    '[131.0, 1767229260.0], [132.0, 1767229320.0]], "temp": [[37.1, 1767225660.0]]}, "hours": '
    '[[1767225600.0, 0, 3], [1767229200.0, 8, 3]], "rise": null, "why": "aggregate>=7", '
    '"tbase": null}'
)


def _saved(m: VitalsMonitor) -> dict[str, Any]:
    """The state as a snapshot carries it: through orjson and back."""
    return orjson.loads(orjson.dumps(m.to_state()))


def _same(a: VitalsMonitor, b: VitalsMonitor) -> None:
    assert a.recent.tobytes() == b.recent.tobytes()  # bit for bit, NaN padding included
    assert a.hours.typecode == b.hours.typecode == "i" and a.hours == b.hours
    assert a.latest == b.latest
    assert (a.open, a.low_since, a.now, a.rise, a.reason, a.trend_base) == (
        b.open,
        b.low_since,
        b.now,
        b.rise,
        b.reason,
        b.trend_base,
    )
    assert orjson.dumps(a.to_state()) == orjson.dumps(b.to_state())


def _day(m: VitalsMonitor, t0: float = T0, hours: float = 26.0) -> None:
    """A day of ordinary readings every 10 min, with untidy values and timestamps."""
    for i in range(int(hours * 6)):
        vit = {**EVERY, "hr": 70.0 + i % 7, "temp": 36.1 + (i % 9) / 10, "sbp": 120 + i % 5}
        m.observe(t0 + i * 600 + (i % 3) * 0.137, vit, "W001")


def _tail(ms: list[VitalsMonitor], t0: float, every_trip: int = 0) -> list[str]:
    """The same readings (a rise to a trend warning, the chart's critical, back to ordinary) to
    each monitor; their decisions, which must agree. ``every_trip``: every so many readings
    the second monitor is replaced by its saved state read back."""
    seen: list[str] = []
    for i in range(150):
        if i < 30:
            vit: dict[str, Any] = EVERY
        elif i < 80:
            vit = {**EVERY, "rr": 22.0, "temp": 38.4}  # NEWS2 3: +3 over the day's maximum
        elif i < 90:
            vit = {**EVERY, "rr": 26.0, "spo2": 91.0, "hr": 125.0 + i % 2}  # 3+3+2
        else:
            vit = EVERY
        if every_trip and i % every_trip == 0:
            ms[1] = VitalsMonitor.from_state(_saved(ms[1]), ms[1].config)
        t = t0 + i * 120 + (i % 4) * 0.01
        got = [repr(m.observe(t, vit, "W001")) for m in ms] + [repr(m.check(t + 60)) for m in ms]
        assert got[0] == got[1] and got[2] == got[3], (i, got)
        seen += [g for g in got[::2] if g != "None"]
    return seen


def test_a_round_trip_is_exact() -> None:
    m = VitalsMonitor()
    _readings(m)
    s = _saved(m)
    keys = "latest open low_since now recent64 hours64 rise why tbase"
    assert sorted(s) == sorted(keys.split())
    _same(VitalsMonitor.from_state(s), m)
    assert json.loads(json.dumps(m.to_state())) == s  # stdlib json writes the same


def test_the_arrays_are_little_endian_columns() -> None:
    """``recent64``: every value then every ts, "<f8"; ``hours64``: hours, maxima, readings,
    "<i4": what another machine reads, whatever its byte order."""
    m = VitalsMonitor()
    _readings(m)
    s = _saved(m)
    recent = np.frombuffer(base64.b64decode(s["recent64"]), "<f8")
    pairs = np.frombuffer(m.recent, np.float64).reshape(-1, 2)
    assert np.array_equal(recent, np.concatenate([pairs[:, 0], pairs[:, 1]]), equal_nan=True)
    hours = np.frombuffer(base64.b64decode(s["hours64"]), "<i4")
    hour = int(T0 // 3600)
    assert hours.tolist() == [hour, hour + 1, 0, 8, 3, 3]  # two hours: maxima 0, 8; 3 readings


def test_a_big_endian_host_swaps(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a big-endian host ``_pack`` swaps to little-endian and ``_unpack`` back (simulated
    here on a little-endian one: the text then holds the swapped bytes)."""
    monkeypatch.setattr(news2, "_SWAP", True)
    a = array("d", [1.5, math.nan, T0 + 0.137])
    text = news2._pack(a)
    assert base64.b64decode(text) == np.asarray(a, ">f8").tobytes()
    assert news2._unpack("d", text).tobytes() == a.tobytes()
    assert a.tolist()[0] == 1.5  # the monitor's own array is not swapped in place
    h = array("i", [491_000, 3, 12])
    assert news2._unpack("i", news2._pack(h)) == h


def test_an_empty_monitor() -> None:
    s = _saved(VitalsMonitor())
    assert s["recent64"] == "" and s["hours64"] == ""
    back = VitalsMonitor.from_state(s)
    assert back.recent is news2._NO_RECENT and back.hours == array("i")
    _same(back, VitalsMonitor())
    _same(VitalsMonitor.from_state(None), VitalsMonitor())
    _same(VitalsMonitor.from_state({}), VitalsMonitor())


def test_a_monitor_read_back_mid_way_decides_alike() -> None:
    """Saved and read back after a day, then again every 7 readings through a trend warning,
    the chart's critical and the resolution: the same decisions as a monitor never saved."""
    a, b = VitalsMonitor(), VitalsMonitor()
    _day(a)
    _day(b)
    b = VitalsMonitor.from_state(_saved(b))
    _same(a, b)
    seen = _tail([a, b], T0 + 26 * 3600, every_trip=7)
    kinds = [g.split("(")[0] for g in seen]
    assert kinds == ["Raise", "Raise", "Resolve"], seen  # the rule, the chart, the end
    assert "'reason': 'trend'" in seen[0] and "severity='critical'" in seen[1]


def test_the_list_form_written_before_loads() -> None:
    """A snapshot of the previous version reads back as the monitor that wrote it."""
    m = VitalsMonitor()
    _readings(m)
    back = VitalsMonitor.from_state(OLD_FORM)
    _same(back, m)
    _tail([m, back], T0 + 3800)


def test_a_list_form_with_other_order_and_more_pairs_loads() -> None:
    """List-era ``recent`` keys in first-measured order, one kept longer than the median needs
    (the last three count); then it decides as the monitor that wrote it."""
    m = VitalsMonitor()
    _day(m)
    kept = {k: [list(p) for p in m._kept(k)] for k in MEDIAN_OF}
    h = m.hours
    old = {
        **_saved(m),
        "recent": {"hr": [[60.0, T0 - 10.0], *kept["hr"]], "rr": kept["rr"], "sbp": kept["sbp"]},
        "hours": [[k * 3600.0, top, n] for k, top, n in zip(h[::3], h[1::3], h[2::3], strict=True)],
    }
    del old["recent64"], old["hours64"]
    back = VitalsMonitor.from_state(old)
    assert back.hours == m.hours
    assert {k: back._kept(k) for k in ("hr", "rr", "sbp")} == {
        k: m._kept(k) for k in ("hr", "rr", "sbp")
    }
    assert back._kept("temp") == [] and back._kept("spo2") == []
    m2 = VitalsMonitor.from_state(old)  # the same, twice: the decisions of the form itself
    _tail([back, m2], T0 + 26 * 3600)


def test_recent64_of_other_slots_starts_the_medians_afresh() -> None:
    """``recent64`` is laid out by ``MEDIAN_OF``; one of another length (a layout not this
    one) is dropped rather than misread, the rest of the state loads."""
    assert MEDIAN_OF == {"rr": 3, "spo2": 3, "sbp": 3, "hr": 3, "temp": 3}, (
        "recent64's layout follows MEDIAN_OF: a change needs a new key (or a version) in the "
        "saved form and a reader of the one before"
    )
    m = VitalsMonitor()
    _readings(m)
    s = _saved(m)
    s["recent64"] = news2._pack(array("d", [1.0, T0]))
    back = VitalsMonitor.from_state(s)
    assert back.recent is news2._NO_RECENT and back.hours == m.hours and back.latest == m.latest


def test_the_saved_form_is_smaller() -> None:
    """A day of readings: the new form is smaller as JSON than the list form it replaced."""
    m = VitalsMonitor()
    _day(m)
    h = m.hours
    old = {
        "latest": {k: list(v) for k, v in m.latest.items()},
        "open": m.open,
        "low_since": m.low_since,
        "now": m.now,
        "recent": {k: [list(p) for p in m._kept(k)] for k in MEDIAN_OF if m._kept(k)},
        "hours": [[k * 3600.0, top, n] for k, top, n in zip(h[::3], h[1::3], h[2::3], strict=True)],
        "rise": m.rise,
        "why": m.reason,
        "tbase": m.trend_base,
    }
    assert len(orjson.dumps(m.to_state())) < 0.92 * len(orjson.dumps(old))


def test_latest_values_keep_their_device_their_kind_and_go_stale() -> None:
    """The latest values are held in an array: each keeps the device that sent it, a value that
    is not a number (ACVPU, oxygen) comes back as it was given, a stale one is forgotten."""
    m = VitalsMonitor()
    m.observe(T0, {"rr": 22, "hr": 112, "acvpu": "A", "o2": False}, "M001")  # 4
    assert m.held_by == "M001"  # one device: one id for every value
    d = m.observe(T0 + 600, {"spo2": 95}, "W001")
    assert isinstance(d, news2.Raise) and d.details["devices"] == ["M001", "W001"]
    assert d.details["values"]["acvpu"] == "A" and d.details["values"]["o2"] is False
    assert m.latest == {
        "rr": (22.0, T0, "M001"),
        "spo2": (95.0, T0 + 600, "W001"),
        "o2": (False, T0, "M001"),
        "hr": (112.0, T0, "M001"),
        "acvpu": ("A", T0, "M001"),
    }
    back = VitalsMonitor.from_state(orjson.loads(orjson.dumps(m.to_state())))
    assert back.latest == m.latest and back.other == {"o2": False, "acvpu": "A"}
    m.check(T0 + 1000)  # M001's values are older than the 900 s freshness window
    assert m.latest == {"spo2": (95.0, T0 + 600, "W001")} and m.other == {}
    assert m._devices() == ["W001"]
    m.observe(T0 + 1010, {"acvpu": "C"}, "W001")
    assert m.latest["acvpu"] == ("C", T0 + 1010, "W001") and m.held_by == [
        "",
        "W001",
        "",
        "",
        "",
        "W001",
        "",
    ]


def test_an_out_of_order_value_of_another_device_changes_nothing() -> None:
    m = VitalsMonitor()
    m.observe(T0 + 60, {"hr": 80}, "W001")
    m.observe(T0, {"hr": 140}, "W002")  # older than the held value
    assert m.latest == {"hr": (80.0, T0 + 60, "W001")} and m.held_by == "W001"


def test_a_value_after_every_value_went_stale_is_held_and_scored() -> None:
    """Nothing fresh, then one device's new reading: held, scored, and stale again in time."""
    m = VitalsMonitor()
    m.observe(T0, {"hr": 131}, "W001")  # 3: a warning
    assert m.check(T0 + 2000) is None and m.latest == {}
    d = m.observe(T0 + 3000, {"spo2": 91}, "W001")  # 3 again, from the new value alone
    assert m.latest == {"spo2": (91.0, T0 + 3000, "W001")}
    assert d is None and m.current().total == 3  # the alert is still open
    m.check(T0 + 3000 + 901)
    assert m.latest == {}


def _first_warning(m: VitalsMonitor, start: float, device: str = "W001") -> float | None:
    """Seconds from ``start`` until SpO2 falling to 85 (one reading every 10 s) raises."""
    for i in range(400):
        if isinstance(m.observe(start + 10 * i, {"hr": 72.0, "spo2": 85.0}, device), news2.Raise):
            return 10.0 * i
    return None


@pytest.mark.parametrize("step_s", [0.0, -120.0, -600.0, -3000.0])
def test_a_fall_in_spo2_after_the_watch_clock_stepped_back_raises_as_soon(step_s: float) -> None:
    """A watch whose clock steps back (a time sync after running fast) sends values older than
    its own held ones: they were not taken until its clock caught up (an SpO2 of 85 unscored
    for as long as the step). Its values now give way, and the medians carry over."""
    m = VitalsMonitor()
    for i in range(30):
        m.observe(T0 + 10 * i, {"hr": 72.0, "spo2": 97.0}, "W001")
    assert _first_warning(m, T0 + 300 + step_s) == 10.0  # the second reading: the median


def test_a_device_whose_clock_is_behind_anothers_keeps_its_values_and_the_others() -> None:
    """A clock that is merely behind another device's (not stepped) changes nothing: each
    device's values are taken and scored together."""
    m = VitalsMonitor()
    for i in range(20):
        m.observe(T0 + 10 * i, {"sbp": 124.0}, "M001")
        m.observe(T0 + 10 * i - 120, {"hr": 72.0, "spo2": 97.0}, "W001")  # 2 min behind
    assert set(m.latest) == {"sbp", "hr", "spo2"}
    assert m.latest["sbp"][1] == T0 + 190 and m.latest["hr"][1] == T0 + 70


def test_a_late_reading_of_the_same_device_within_a_minute_changes_nothing() -> None:
    m = VitalsMonitor()
    m.observe(T0 + 60, {"hr": 80}, "W001")
    m.observe(T0 + 20, {"hr": 140}, "W001")  # 40 s late: older than the held value
    assert m.latest == {"hr": (80.0, T0 + 60, "W001")}
