"""The NEWS2 chart (RCP 2017, ``shared/reference/NEWS2.md``): scores of single readings.

Kept in the kernel because two rooms read the same published chart: the detectors score live
vitals with it and the scenario generator labels its ground truth with it.

- The chart is data (upper bounds of inclusive bands on *rounded* values), so the scalar and the
  numpy form read the same table and cannot drift apart; a hypothesis test holds them equal.
- Rounding follows the chart: whole numbers for rr/SpO2/SBP/pulse, one decimal for temperature,
  halves up. A tiny epsilon absorbs binary noise (35.05 * 10 == 350.4999...), and because the
  scalar and vector paths do the same IEEE operations in the same order they agree bit for bit.
- An unmeasured parameter is absent, never 0, and the score says it is partial.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PARAMETERS: tuple[str, ...] = ("rr", "spo2", "o2", "sbp", "hr", "acvpu", "temp")
MEDIAN_OF: dict[str, int] = {"rr": 3, "spo2": 3, "sbp": 3, "hr": 3, "temp": 3}
ACVPU_CODES: dict[str, int] = {"A": 0, "C": 1, "V": 2, "P": 3, "U": 4}
INF = math.inf
_EPS_INT = 1e-9  # rounding epsilon in whole units
_EPS_TENTH = 1e-7  # rounding epsilon in tenths (temperature)

# (upper bounds, points): score = points[first i with value <= upper[i]], values already rounded.
Band = tuple[tuple[float, ...], tuple[int, ...]]
RR: Band = ((8, 11, 20, 24, INF), (3, 1, 0, 2, 3))
SPO2_1: Band = ((91, 93, 95, INF), (3, 2, 1, 0))
SPO2_2_AIR: Band = ((83, 85, 87, INF), (3, 2, 1, 0))
SPO2_2_O2: Band = ((83, 85, 87, 92, 94, 96, INF), (3, 2, 1, 0, 1, 2, 3))
SBP: Band = ((90, 100, 110, 219, INF), (3, 2, 1, 0, 3))
HR: Band = ((40, 50, 90, 110, 130, INF), (3, 1, 0, 1, 2, 3))
TEMP10: Band = ((350, 360, 380, 390, INF), (3, 1, 0, 1, 2))  # tenths of a degree


def round_whole(x: float) -> float:
    """Half-up rounding to a whole number, as the chart's rounding rule asks."""
    return float(math.floor(x + 0.5 + _EPS_INT))


def round_tenths(x: float) -> float:
    """Temperature in whole tenths (half up), so 35.05 -> 351."""
    return float(math.floor(x * 10.0 + 0.5 + _EPS_TENTH))


def _band(value: float, band: Band) -> int:
    """The points of the first band whose upper bound is at least ``value`` (bands end at
    +inf; the value is rounded, never NaN)."""
    return band[1][bisect_left(band[0], value)]


@dataclass(frozen=True)
class News2:
    """A (possibly partial) NEWS2: aggregate plus the score of each measured parameter."""

    total: int
    parameters: dict[str, int]
    partial: bool

    @property
    def max_single(self) -> int:
        return max(self.parameters.values(), default=0)


def _on_oxygen(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "o2", "oxygen")
    return bool(value)


def score(vitals: Mapping[str, Any], spo2_scale: int = 1) -> News2:
    """Score one set of vitals (telemetry keys; ``o2`` bool, ``acvpu`` letter; others ignored).

    With SpO2 scale 2 an unknown ``o2`` is taken as air: wearables rarely know, and scoring an
    unknown as oxygen would add phantom points to every reading.
    """
    if spo2_scale not in (1, 2):
        raise ValueError(f"spo2_scale must be 1 or 2, not {spo2_scale!r}")
    params: dict[str, int] = {}  # filled in ``PARAMETERS`` order
    v = {  # the measured ones: an unmeasured parameter is None or NaN
        k: x
        for k in PARAMETERS
        if (x := vitals.get(k)) is not None and not (isinstance(x, float) and x != x)
    }
    on_o2 = _on_oxygen(v["o2"]) if "o2" in v else False
    if "rr" in v:
        params["rr"] = _band(round_whole(float(v["rr"])), RR)
    if "spo2" in v:
        s = round_whole(float(v["spo2"]))
        if spo2_scale == 1:
            params["spo2"] = _band(s, SPO2_1)
        else:
            params["spo2"] = _band(s, SPO2_2_O2 if on_o2 else SPO2_2_AIR)
    if "o2" in v:
        params["o2"] = 2 if on_o2 else 0
    if "sbp" in v:
        params["sbp"] = _band(round_whole(float(v["sbp"])), SBP)
    if "hr" in v:
        params["hr"] = _band(round_whole(float(v["hr"])), HR)
    if "acvpu" in v:
        params["acvpu"] = 0 if str(v["acvpu"]).strip().upper() == "A" else 3
    if "temp" in v:
        params["temp"] = _band(round_tenths(float(v["temp"])), TEMP10)
    return News2(sum(params.values()), params, len(params) < len(PARAMETERS))


# ---------------------------------------------------------------- vectorised form


def _band_arr(values: FloatArray, band: Band) -> IntArray:
    idx = np.searchsorted(np.asarray(band[0], dtype=np.float64), values, side="left")
    idx = np.minimum(idx, len(band[1]) - 1)  # NaN sorts last; masked out by the caller
    return np.asarray(band[1], dtype=np.int64)[idx]


def score_arrays(
    rr: npt.ArrayLike,
    spo2: npt.ArrayLike,
    o2: npt.ArrayLike,
    sbp: npt.ArrayLike,
    hr: npt.ArrayLike,
    acvpu_code: npt.ArrayLike,
    temp: npt.ArrayLike,
    spo2_scale: int | npt.ArrayLike = 1,
) -> tuple[IntArray, IntArray]:
    """NEWS2 for N readings at once; NaN = not measured.

    ``o2`` is 1/0 (NaN unknown), ``acvpu_code`` 0 for A and 1..4 for C/V/P/U (see
    ``ACVPU_CODES``). Returns ``(totals[N], scores[N, 7])`` with columns in ``PARAMETERS`` order
    and -1 where the parameter is absent; ``(scores < 0).any(axis=1)`` is "partial".
    """
    cols = [
        np.atleast_1d(np.asarray(a, dtype=np.float64))
        for a in (rr, spo2, o2, sbp, hr, acvpu_code, temp)
    ]
    n = np.broadcast_shapes(*(c.shape for c in cols))
    rr_a, sp_a, o2_a, sbp_a, hr_a, ac_a, t_a = (np.broadcast_to(c, n) for c in cols)
    scale = np.broadcast_to(np.asarray(spo2_scale), n)
    if not np.isin(scale, (1, 2)).all():
        raise ValueError("spo2_scale must be 1 or 2")
    on_o2 = np.nan_to_num(o2_a, nan=0.0) != 0.0
    out = np.empty((*n, len(PARAMETERS)), dtype=np.int64)

    sp_r = np.floor(sp_a + 0.5 + _EPS_INT)
    sp = np.where(
        scale == 1,
        _band_arr(sp_r, SPO2_1),
        np.where(on_o2, _band_arr(sp_r, SPO2_2_O2), _band_arr(sp_r, SPO2_2_AIR)),
    )
    out[..., 0] = _band_arr(np.floor(rr_a + 0.5 + _EPS_INT), RR)
    out[..., 1] = sp
    out[..., 2] = np.where(on_o2, 2, 0)
    out[..., 3] = _band_arr(np.floor(sbp_a + 0.5 + _EPS_INT), SBP)
    out[..., 4] = _band_arr(np.floor(hr_a + 0.5 + _EPS_INT), HR)
    out[..., 5] = np.where(ac_a == 0, 0, 3)
    out[..., 6] = _band_arr(np.floor(t_a * 10.0 + 0.5 + _EPS_TENTH), TEMP10)
    missing = np.stack([np.isnan(c) for c in (rr_a, sp_a, o2_a, sbp_a, hr_a, ac_a, t_a)], axis=-1)
    out[missing] = -1
    totals = np.where(missing, 0, out).sum(axis=-1)
    return totals, out
