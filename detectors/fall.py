"""Accelerometer fall detector: pure numpy, per-device streaming state, no I/O.

Why this shape:
- Samples are reduced to 50 ms bins on an absolute time grid (``floor(t * 20)``), each holding
  max |a|, min |a| and the mean vector, in integer milli-g. Binning keeps the impact peak (a max
  is not lost the way a resampled sample is), accepts any rate 20..200 Hz, and makes results
  independent of how the stream was cut into chunks: a bin is closed only when a later sample
  arrives, and integer sums do not depend on summation order.
- The ring of recent bins is small (6 s) and stored as int16, so the serialised state is a
  few KiB and a JSON round-trip is exact.
- A candidate impact is a local maximum of |a|. It is decided once ``POST_S`` seconds of data
  after it exist, from physical evidence: impact size (a clipped peak is a lower bound), a
  free-fall dip before it, the change of orientation from before to after, and how still the
  wearer is afterwards.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

BIN_HZ = 20  # 50 ms bins
RING_BINS = 130  # 6.5 s of history per device: pre window + candidate + post window + a step
POST_S = 2.5  # data needed after the impact before deciding
POST_START_S = 1.0  # post window starts this long after the impact (settling)
PRE_S = (3.0, 1.0)  # window (seconds before the impact) for the "before" orientation
FF_S = 1.0  # free-fall dip is searched this long before the impact
PEAK_HALF_S = 0.5  # a candidate must be the largest |a| within +-this
REFRACTORY_S = 5.0  # one finding per fall (bounces and rolling are not new falls)
MAX_GAP_S = 2.0  # a longer gap in the samples restarts the history
STILL_RANGE_G = 0.15  # a bin whose |a| varies less than this counts as still
MAX_ABS_G = 32.0  # beyond any wearable sensor range: the chunk is corrupt
RATE_RANGE = (20.0, 200.0)
WEIGHTLESS_G = 0.3  # |a| below this in a whole bin: nearly weightless
WEIGHTLESS_MAX_S = 0.3  # real falls stay under 0.25 s of it; a device dropped from 0.5 m+ not
CLIP_LEVELS_G = np.array([2.0, 4.0, 8.0, 16.0])  # common accelerometer full-scale ranges

PLACEMENTS = ("wrist", "waist", "pendant")


def _ramp(x: float, zero: float, one: float) -> float:
    """0 at ``zero``, 1 at ``one``, linear between (either direction)."""
    return min(1.0, max(0.0, (x - zero) / (one - zero)))


@dataclass(frozen=True)
class Params:
    """Per-placement evidence ramps (g, degrees); each term scores 0..1 times its weight.

    Ramps rather than hard thresholds so that strong evidence of one kind can make up for
    weak evidence of another (a clipped ±2 g impact, a fall onto a soft mattress, a wearer who
    moves after the fall).
    """

    impact_g: tuple[float, float]  # peak |a|: candidate from the first, full marks at the second
    freefall_g: tuple[float, float]  # min |a| in the second before the impact
    angle_deg: tuple[float, float]  # orientation change, before vs after
    motion_g: tuple[float, float]  # movement after the impact (g rms + half the bin range)
    weights: tuple[float, float, float, float]  # impact, free fall, orientation, stillness
    repeat_penalty: float  # per other impact of similar size within +-2 s (clapping, jogging)
    min_score: float  # evidence needed for a finding


PARAMS: dict[str, Params] = {
    "waist": Params(
        (1.9, 3.0), (0.9, 0.3), (20.0, 60.0), (1.2, 0.2), (1.0, 0.5, 2.0, 1.0), 0.0, 3.5
    ),
    "pendant": Params(
        (1.9, 3.0), (0.9, 0.3), (20.0, 60.0), (1.2, 0.2), (1.0, 0.5, 2.0, 1.0), 0.0, 3.5
    ),
    "wrist": Params(
        (2.2, 5.0), (0.9, 0.3), (20.0, 60.0), (1.2, 0.2), (1.0, 0.5, 2.0, 2.0), 0.5, 3.75
    ),
}
LYING_ANGLE_DEG = 50.0  # orientation change that, with stillness, means "lying still"
LYING_MOTION_G = 0.25


@dataclass(frozen=True)
class FallFinding:
    """A detected fall. ``lying_still`` lets the caller upgrade the alert to critical."""

    impact_ts: float
    peak_g: float
    placement: str
    evidence: dict[str, float | bool]
    lying_still: bool


@dataclass(frozen=True)
class AccelCheck:
    """Validation result: ``error`` set -> dead-letter the chunk; else feed it, report notes."""

    error: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


def check_accel(rate: Any, g: Any) -> AccelCheck:
    """Validate one telemetry ``accel`` chunk; clipped (saturated) data is noted, not rejected."""
    try:
        r = float(rate)
    except (TypeError, ValueError):
        return AccelCheck(error="rate is not a number")
    if not math.isfinite(r) or not RATE_RANGE[0] <= r <= RATE_RANGE[1]:
        return AccelCheck(error=f"rate {rate!r} outside {RATE_RANGE[0]:g}..{RATE_RANGE[1]:g} Hz")
    try:
        a = np.asarray(g, dtype=np.float64)
    except (TypeError, ValueError):
        return AccelCheck(error="samples are not numeric N x 3")
    if a.size == 0:
        return AccelCheck(error="no samples")
    if a.ndim != 2 or a.shape[1] != 3:
        return AccelCheck(error=f"samples have shape {a.shape}, expected N x 3")
    if not np.isfinite(a).all():
        return AccelCheck(error="NaN or infinite sample")
    top = float(np.abs(a).max())
    if top > MAX_ABS_G:
        return AccelCheck(error=f"|axis| {top:.1f} g beyond any sensor range")
    notes: list[str] = []
    # Saturation: an axis at a common full-scale value, or flat-topped at its extreme.
    absa = np.abs(a)
    peak = absa.max(axis=0)
    flat = ((absa >= peak - 1e-3).sum(axis=0) >= 2) & (peak >= 1.5)
    at_range = (np.abs(peak[:, None] - CLIP_LEVELS_G) <= 0.03 * CLIP_LEVELS_G).any(axis=1)
    if (flat | at_range).any():
        notes.append("saturated")
    return AccelCheck(notes=tuple(notes))


def _pack(a: npt.NDArray[np.int16]) -> str:
    return base64.b64encode(a.astype("<i2").tobytes()).decode("ascii")


def _unpack(s: str, cols: int) -> npt.NDArray[np.int16]:
    return np.frombuffer(base64.b64decode(s), dtype="<i2").reshape(-1, cols).astype(np.int16)


@dataclass
class FallDetector:
    """Streaming fall detector for one device; feed chunks in arrival order."""

    placement: str
    # ring of closed bins, int16 milli-g: columns max|a|, min|a|, mean x, y, z
    ring: npt.NDArray[np.int16] = field(
        default_factory=lambda: np.zeros((0, 5), dtype=np.int16), repr=False
    )
    ring_end: int = 0  # absolute bin index one past the last closed bin
    part_bin: int | None = None  # the open (not yet closed) bin
    part: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0, 0])  # n, sx, sy, sz, max, min
    last_t: float | None = None  # time of the last consumed sample
    decided_end: int = 0  # candidates below this absolute bin were already decided
    last_finding_bin: int = -(10**12)
    still_from: float | None = None  # start of the current still period (epoch s)

    def __post_init__(self) -> None:
        if self.placement not in PARAMS:
            raise ValueError(f"unknown placement {self.placement!r}")

    # ---- state -------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-able state (a few KiB) for a Faust table keyed by device."""
        return {
            "v": 1,
            "placement": self.placement,
            "ring": _pack(self.ring),
            "ring_end": self.ring_end,
            "part_bin": self.part_bin,
            "part": list(self.part),
            "last_t": self.last_t,
            "decided_end": self.decided_end,
            "last_finding_bin": self.last_finding_bin,
            "still_from": self.still_from,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> FallDetector:
        """Inverse of :meth:`to_state`."""
        return cls(
            placement=s["placement"],
            ring=_unpack(s["ring"], 5),
            ring_end=int(s["ring_end"]),
            part_bin=None if s["part_bin"] is None else int(s["part_bin"]),
            part=[int(v) for v in s["part"]],
            last_t=None if s["last_t"] is None else float(s["last_t"]),
            decided_end=int(s["decided_end"]),
            last_finding_bin=int(s["last_finding_bin"]),
            still_from=None if s["still_from"] is None else float(s["still_from"]),
        )

    # ---- input -------------------------------------------------------------------------
    def feed(self, ts: float, rate: float, g: Any) -> list[FallFinding]:
        """Consume one chunk (first sample at ``ts``); return findings decided by it."""
        a = np.asarray(g, dtype=np.float64).reshape(-1, 3)
        n = a.shape[0]
        if n == 0:
            return []
        t = ts + np.arange(n) / float(rate)
        if self.last_t is not None:  # drop replayed / overlapping samples
            keep = t > self.last_t + 0.5 / float(rate)
            if not keep.all():
                a, t = a[keep], t[keep]
                if a.shape[0] == 0:
                    return []
        if self.last_t is not None and t[0] - self.last_t > MAX_GAP_S:
            self._restart()
        self.last_t = float(t[-1])
        dense, first = self._add_samples(t, a)
        out: list[FallFinding] = []
        # append in steps so every candidate is decided with its full pre window in the ring,
        # whatever the chunk length
        step = RING_BINS - int((PRE_S[0] + POST_S + PEAK_HALF_S) * BIN_HZ)
        for s in range(0, dense.shape[0], step):
            part = dense[s : s + step]
            if self.ring.shape[0] == 0:
                self.decided_end = max(self.decided_end, first + s)
            self.ring = np.vstack([self.ring, part])[-RING_BINS:]
            self.ring_end = first + s + part.shape[0]
            self._track_still(part)
            out += self._decide()
        return out

    def _restart(self) -> None:
        """Forget history after a long gap: it says nothing about the data that follows."""
        self.ring = np.zeros((0, 5), dtype=np.int16)
        self.part_bin = None
        self.decided_end = 0
        self.still_from = None

    def _add_samples(self, t: FloatArray, a: FloatArray) -> tuple[npt.NDArray[np.int16], int]:
        """Bin the samples; return the newly closed bins (dense) and the first one's index."""
        mg = np.rint(a * 1000.0).astype(np.int64)
        mag = np.rint(np.sqrt((a * a).sum(axis=1)) * 1000.0).astype(np.int64)
        k = np.floor(t * BIN_HZ + 1e-3).astype(np.int64)
        k = np.maximum.accumulate(k)  # never step back in time
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        bins = k[starts]
        cnt = np.diff(np.r_[starts, k.size]).astype(np.int64)
        sums = np.add.reduceat(mg, starts, axis=0)
        mx = np.maximum.reduceat(mag, starts)
        mn = np.minimum.reduceat(mag, starts)
        acc = np.column_stack([cnt, sums, mx, mn])  # n, sx, sy, sz, max, min per bin
        if self.part_bin is not None:
            p = np.array(self.part, dtype=np.int64)
            if bins[0] == self.part_bin:
                acc[0, :4] += p[:4]
                acc[0, 4] = max(acc[0, 4], p[4])
                acc[0, 5] = min(acc[0, 5], p[5])
            else:
                bins = np.r_[self.part_bin, bins]
                acc = np.vstack([p, acc])
        # the last bin stays open until a later sample arrives
        self.part_bin = int(bins[-1])
        self.part = [int(v) for v in acc[-1]]
        bins, acc = bins[:-1], acc[:-1]
        if not bins.size:
            return np.zeros((0, 5), dtype=np.int16), self.ring_end
        mean = np.rint(acc[:, 1:4] / acc[:, :1]).astype(np.int64)
        rows = np.column_stack([acc[:, 4], acc[:, 5], mean])
        first = int(bins[0]) if self.ring.shape[0] == 0 else self.ring_end
        span = int(bins[-1]) + 1 - first
        # dense rows from `first`; empty bins (short gaps, low rates) repeat the previous bin
        idx = np.full(span, -1, dtype=np.int64)
        idx[bins - first] = np.arange(bins.size)
        filled = np.maximum.accumulate(idx)
        if filled[0] < 0:  # gap right after the ring's last bin: carry it forward
            prev = self.ring[-1].astype(np.int64)
            quiet = np.r_[np.full(2, math.hypot(*prev[2:])), prev[2:]]
            rows = np.vstack([rows, np.rint(quiet)[None, :]]).astype(np.int64)
            filled = np.where(filled < 0, rows.shape[0] - 1, filled)
        return np.clip(rows[filled], -32767, 32767).astype(np.int16), first

    def _track_still(self, dense: npt.NDArray[np.int16]) -> None:
        still = (dense[:, 0].astype(np.int64) - dense[:, 1]) < STILL_RANGE_G * 1000
        end = self.ring_end
        if not still.size:
            return
        if still.all():
            if self.still_from is None:
                self.still_from = (end - dense.shape[0]) / BIN_HZ
            return
        last_moving = int(np.flatnonzero(~still)[-1])
        self.still_from = (end - dense.shape[0] + last_moving + 1) / BIN_HZ

    def still_for(self, now_ts: float) -> float:
        """Seconds the device has been still up to its latest closed bin (0 if moving)."""
        if self.still_from is None:
            return 0.0
        return max(0.0, min(now_ts, self.ring_end / BIN_HZ) - self.still_from)

    # ---- decision ----------------------------------------------------------------------
    def _decide(self) -> list[FallFinding]:
        post = int(POST_S * BIN_HZ)
        half = int(PEAK_HALF_S * BIN_HZ)
        ring_start = self.ring_end - self.ring.shape[0]
        lo = max(self.decided_end, ring_start)
        hi = self.ring_end - post  # candidates below hi have their post window
        if hi <= lo:
            return []
        self.decided_end = hi
        p = PARAMS[self.placement]
        amax = self.ring[:, 0].astype(np.int64)
        rel = np.arange(lo - ring_start, hi - ring_start)
        cand = rel[amax[rel] >= p.impact_g[0] * 1000]
        out: list[FallFinding] = []
        for i in cand:
            j0, j1 = max(0, i - half), i + half + 1
            w = amax[j0:j1]
            if int(np.argmax(w)) + j0 != i:  # not the first largest |a| nearby
                continue
            absbin = ring_start + int(i)
            if absbin < self.last_finding_bin + REFRACTORY_S * BIN_HZ:
                continue
            ev = self._features(int(i))
            score = _score(ev, p)
            ev["score"] = round(score, 3)
            if score >= p.min_score:
                self.last_finding_bin = absbin
                out.append(
                    FallFinding(
                        impact_ts=(absbin + 0.5) / BIN_HZ,
                        peak_g=float(ev["peak_g"]),
                        placement=self.placement,
                        evidence=ev,
                        lying_still=bool(ev["lying_still"]),
                    )
                )
        return out

    def _features(self, i: int) -> dict[str, float | bool]:
        """Evidence around the candidate impact at ring row ``i`` (post window is present)."""
        r = self.ring.astype(np.float64) / 1000.0
        amax, amin, vec = r[:, 0], r[:, 1], r[:, 2:]
        b = BIN_HZ
        freefall = float(amin[max(0, i - int(FF_S * b)) : i + 1].min())
        # true weightlessness (a dropped device) lasts; a toppling body keeps some support
        weightless = float(np.count_nonzero(amax[max(0, i - int(FF_S * b)) : i] < WEIGHTLESS_G))
        pre0 = max(0, i - int(PRE_S[0] * b))
        pre = vec[pre0 : max(pre0 + 1, i - int(PRE_S[1] * b))]
        lo, hi = i + int(POST_START_S * b), i + int(POST_S * b) + 1
        post, post_rng = vec[lo:hi], amax[lo:hi] - amin[lo:hi]
        pre_m, post_m = pre.mean(axis=0), post.mean(axis=0)
        norm = float(np.linalg.norm(pre_m) * np.linalg.norm(post_m))
        cosang = float(pre_m @ post_m) / max(1e-6, norm)
        angle = math.degrees(math.acos(max(-1.0, min(1.0, cosang))))
        # movement after: slow (spread of the mean vector) plus fast (typical range within a bin)
        post_motion = math.sqrt(float(((post - post_m) ** 2).sum(axis=1).mean()))
        post_motion += float(np.median(post_rng)) / 2
        pre_motion = math.sqrt(float(((pre - pre_m) ** 2).sum(axis=1).mean()))
        # other impacts of similar size nearby: clapping, jogging, hammering repeat; a fall does not
        w0, w1 = max(0, i - 2 * b), min(len(amax), i + 2 * b + 1)
        near = amax[w0:w1]
        level = max(PARAMS[self.placement].impact_g[0], 0.6 * float(amax[i]))
        tops = (near[1:-1] >= level) & (near[1:-1] >= near[:-2]) & (near[1:-1] > near[2:])
        pos = np.flatnonzero(tops) + 1 + w0
        repeats = int(np.count_nonzero(np.abs(pos - i) > int(0.3 * b)))
        # magnitude of the 50 ms mean vector around the impact: a body impact lasts, a knock not
        impact_mean = float(np.linalg.norm(vec[max(0, i - 2) : i + 3], axis=1).max())
        return {
            "peak_g": float(amax[i]),
            "freefall_g": freefall,
            "angle_deg": angle,
            "post_motion_g": post_motion,
            "pre_motion_g": pre_motion,
            "post_g": float(np.linalg.norm(post_m)),
            "repeats": float(repeats),
            "weightless_s": weightless / b,
            "impact_mean_g": impact_mean,
            "lying_still": angle >= LYING_ANGLE_DEG and post_motion <= LYING_MOTION_G,
        }


def _score(ev: dict[str, float | bool], p: Params) -> float:
    """Weighted sum of the evidence ramps, minus a penalty for repeated impacts."""
    terms = (
        _ramp(float(ev["peak_g"]), *p.impact_g),
        _ramp(float(ev["freefall_g"]), *p.freefall_g),
        _ramp(float(ev["angle_deg"]), *p.angle_deg),
        _ramp(float(ev["post_motion_g"]), *p.motion_g),
    )
    if float(ev["weightless_s"]) >= WEIGHTLESS_MAX_S:
        return 0.0  # a dropped device (or a jump), not a body toppling over
    return sum(w * t for w, t in zip(p.weights, terms, strict=True)) - p.repeat_penalty * float(
        ev["repeats"]
    )
