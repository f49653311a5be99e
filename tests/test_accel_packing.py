"""``pack_accel`` / ``accel_samples``: the readings topic's packed accelerometer rows.

The bridge packs a validated chunk's rows into ``mg16`` (int16 milli-g, when that holds every
value exactly) or ``g64`` (float64); the worker and the storage writer read them back. Every number must come back to the bit, and what
cannot be packed must pass through as it came.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from anxin.core.records import accel_samples, pack_accel
from storage.points import reading_points

finite = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)
rows = st.lists(st.lists(finite, min_size=3, max_size=3), min_size=1, max_size=200)


@given(rows)
def test_every_number_comes_back_to_the_bit(g: list[list[float]]) -> None:
    reading = {"device_id": "W001", "ts": 1.0, "accel": {"rate": 25.0, "g": g}}
    packed = pack_accel(reading)
    assert packed["accel"].keys() in ({"rate", "g64"}, {"rate", "mg16"})
    assert reading["accel"]["g"] is g  # a copy
    got = accel_samples(packed["accel"])
    want = np.asarray(g, dtype=np.float64)
    assert got.shape == want.shape and got.tobytes() == want.tobytes()  # -0.0 and all
    assert got.flags.writeable


@given(st.lists(st.lists(st.integers(-32767, 32767), min_size=3, max_size=3), min_size=1))
def test_milli_g_values_travel_as_int16_and_come_back_to_the_bit(mg: list[list[int]]) -> None:
    g = [[x / 1000 for x in row] for row in mg]  # what a device with milli-g resolution sends
    packed = pack_accel({"accel": {"rate": 25.0, "g": g}})["accel"]
    assert "mg16" in packed and len(packed["mg16"]) <= 8 * len(g)  # 6 bytes a sample
    assert accel_samples(packed).tobytes() == np.asarray(g, dtype=np.float64).tobytes()


@pytest.mark.parametrize(
    "g",
    [
        [[0.0125, 0.0, 1.0]],  # finer than a milli-g
        [[-0.0, 0.0, 1.0]],  # -0.0: int16 would bring back 0.0
        [[32.768, 0.0, 1.0]],  # beyond the int16 range
        [[1e-300, 0.0, 1.0]],
    ],
)
def test_anything_int16_would_change_travels_as_float64(g: list[list[float]]) -> None:
    packed = pack_accel({"accel": {"rate": 25.0, "g": g}})["accel"]
    assert "g64" in packed
    assert accel_samples(packed).tobytes() == np.asarray(g, dtype=np.float64).tobytes()


@pytest.mark.parametrize(
    "accel",
    [
        {"rate": 25.0, "g": [[0.0, 1.0]]},  # not rows of three
        {"rate": 25.0, "g": [[0.0, 1.0, 2.0], [1.0]]},  # ragged
        {"rate": 25.0, "g": [["x", 1.0, 2.0]]},  # not numbers
        {"rate": 25.0, "g": []},  # no rows
        {"rate": 25.0, "g": "rows"},
        {"rate": 25.0},
        [1, 2, 3],
    ],
)
def test_what_cannot_be_packed_passes_as_it_came(accel: Any) -> None:
    reading = {"device_id": "W001", "accel": accel}
    assert pack_accel(reading) is reading


def test_a_reading_without_accel_is_untouched() -> None:
    reading = {"device_id": "W001", "vitals": {"hr": 70}}
    assert pack_accel(reading) is reading
    assert accel_samples({"rate": 25.0}) is None


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("g64", "not base64!", "g64 is not base64"),
        ("g64", 17, "g64 is not base64"),
        ("g64", "AAAA", "g64 holds 3 bytes, not whole rows of 3 float64"),
        ("g64", "", "g64 holds 0 bytes, not whole rows of 3 float64"),
        ("mg16", "AAAA", "mg16 holds 3 bytes, not whole rows of 3 int16"),
        ("mg16", "?", "mg16 is not base64"),
    ],
)
def test_a_bad_packed_chunk_is_named(field: str, value: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        accel_samples({"rate": 25.0, field: value})


def test_storage_writes_the_same_points_from_packed_rows() -> None:
    rng = np.random.default_rng(5)
    reading = {
        "device_id": "W001",
        "resident_id": "R001",
        "ts": 1_795_500_000.0,
        "accel": {"rate": 25.0, "g": rng.normal(0, 1, (50, 3)).tolist()},
    }
    milli_g = np.round(rng.normal(0, 1, (50, 3)), 3).tolist()  # whole milli-g: travels as mg16
    milli = {**reading, "accel": {"rate": 25.0, "g": milli_g}}
    assert "mg16" in pack_accel(milli)["accel"] and "g64" in pack_accel(reading)["accel"]
    for r, raw in itertools.product((reading, milli), (False, True)):
        want = [p.to_line_protocol() for p in reading_points(r, raw_accel=raw)]
        got = [p.to_line_protocol() for p in reading_points(pack_accel(r), raw_accel=raw)]
        assert got == want and any(line.startswith("motion") for line in got)
    bad = {**reading, "accel": {"rate": 25.0, "g64": "AAAA"}, "vitals": {"hr": 70.0}}
    assert not any(p.to_line_protocol().startswith("motion") for p in reading_points(bad))
