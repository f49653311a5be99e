"""Accelerometer fall detector: pure numpy, per-device streaming state, no I/O.

Why this shape:
- Samples are quantised to 1 mg on arrival and reduced to 50 ms bins on an absolute time grid
  (``floor(t * 20)``), each holding max |a|, min |a| and the mean vector, in integer milli-g.
  Binning keeps the impact peak (a max is not lost the way a resampled sample is), accepts any
  rate 20..200 Hz (above ``HIGH_RATE_HZ`` interpolated at 50 Hz first, as the recordings the
  models learned from were made), and makes results independent of how the stream was cut into
  chunks: a bin is closed only when a later sample arrives, and integer sums do not depend on
  summation order.
- The ring of recent bins is small (6.2 s) and stored as int16, so the serialised state is a
  few KiB and a JSON round-trip is exact.
- Throughput: a chunk without any large |a| (nearly all of a day) is only checked (one
  vectorised max) and queued; queued chunks are binned together once ``MAX_PENDING`` samples
  have gathered, so the per-call Python overhead is paid once per few chunks. Any chunk with
  a candidate peak, and every chunk while a candidate or a "lying still" watch is open, is
  processed at once, so latency is not affected. The queue is part of the state (int16 mg).
- Memory (a worker holds one detector per device): queued samples are kept as int16 milli-g
  bytes (quantised on arrival, the values binning uses; 6 bytes a sample, not 24), with the
  range of their float |a|^2 for ``still_for``; immutable defaults (the empty ring, ``part``,
  ``held``, the placement's gates) are shared objects.
- A candidate impact is a local maximum of |a| above a low gate (``GATE_G``). It is decided
  once ``POST_S`` seconds of data after it exist, by a learned model (``detectors/models/``,
  trained and cross-validated subject-wise by ``scripts/train-fall-model``; see
  ``detectors/FALL_MODEL.md``; one for devices below ``LOW_RATE_HZ``, one for wrist devices
  whose readings say they clip at +-2 g, one for the rest) from physical features
  (``detectors.fall_features``):
  impact size and impulse, a free-fall dip before it, the change of orientation and how
  quickly it happened, movement afterwards, and whether similar impacts repeat. Hand-set
  ramps tuned on the lab trials did not transfer to other subjects or to everyday wrist wear.
- A finding is a suspicion, not an alert: ``probability >= SUSPECT_P`` prompts the wearer;
  a confirmation step outside this module may raise an alert from an unanswered suspicion at
  ``ALERT_P`` and cancels one when ``fall_features.up_and_about`` sees the wearer walking.
- Slow path: a fall with little impact (sliding off a chair) does not score enough at
  ``POST_S``. If it ended far from the orientation held seconds before (``REF_S``) and the
  wearer lies still, it is watched; if they are still lying still ``SLOW_S`` seconds after the
  impact it becomes a finding (``evidence["slow"]``): probability ``ALERT_P`` at the trunk,
  ``SUSPECT_P`` (a prompt) at the wrist.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors import fall_features as FF

FloatArray = npt.NDArray[np.float64]
I16 = npt.NDArray[np.int16]

BIN_HZ = FF.BIN_HZ  # 50 ms bins
POST_S = FF.POST_S  # data needed after the impact before deciding
POST_START_S = FF.POST_START_S  # post window starts this long after the impact (settling)
REF_S = FF.REF_S  # older reference orientation for the slow path (slides rotate slowly)
PEAK_HALF_S = 0.5  # a candidate must be the largest |a| within +-this
RING_BINS = int((REF_S[0] + POST_S) * BIN_HZ) + 4  # 6.2 s: every undecided candidate's context
REFRACTORY_S = 5.0  # one finding per fall (bounces and rolling are not new falls) ...
# ... unless a candidate within it is more probable than the finding: it upgrades that finding
# (a stumble or step found just before the real impact must not hide the impact)
MAX_GAP_S = 2.0  # a longer gap in the samples restarts the history
MIN_HISTORY_S = 1.2  # an impact with less history before it has no "before" orientation
STILL_RANGE_G = FF.STILL_RANGE_G  # a bin whose |a| varies less than this counts as still
MAX_ABS_G = 32.0  # beyond any wearable sensor range: the chunk is corrupt
# A body does not sustain this much for half a second (the most in the real wear and the
# recordings here: a median |a| of 4.0 g over 0.5 s, 3.3 g over a 1 s chunk, a vigorous wrist); a
# device at rest reading 9.8 sends m/s^2, not g, and would be read as a stream of 10 g impacts.
MAX_MEDIAN_G = 8.0
MEDIAN_CHECK_S = 0.5  # ... judged on chunks at least this long (a shorter one may be all impact)
RATE_RANGE = (20.0, 200.0)
# A device sampling faster than this is read as a 50 Hz device, made as the recordings every
# model learned from were made from faster devices (linear interpolation at 50 Hz, no filter;
# ../shared/data/falls/README.md): raw, its 50 ms bins keep sharper peaks, and on generated days
# the 50 Hz model prompted a 100-200 Hz watch 3-6 times as often as a 50 Hz one.
MODEL_HZ = 50.0
HIGH_RATE_HZ = 60.0
_GRID_EPS = 1e-4  # of a 20 ms grid step (2 us): epoch seconds * 50 carry ~1e-5 of rounding
WEIGHTLESS_MAX_S = FF.WEIGHTLESS_MAX_S  # a device dropped from 0.5 m+ is weightless longer
CLIP_LEVELS_G = np.array([2.0, 4.0, 8.0, 16.0])  # common accelerometer full-scale ranges
SATURATION_FROM_G = 1.5  # below this no axis can be clipped (the smallest range less 3 % is 1.94)
MAX_PENDING = 200  # quiet samples queued before binning (bounded: they are part of the state)
SLOW_S = 6.0  # slow path: still lying this long after the impact confirms the fall
SLOW_MOVING_MAX = 0.1  # fraction of moving bins tolerated while "lying still"
SLOW_DRIFT_DEG = 25.0  # orientation may drift this much while lying
SLOW_SWAY_G = 0.1  # slow movement (rms of the 50 ms mean vector) tolerated while lying
LYING_ANGLE_DEG = 50.0  # orientation change that, with stillness, means "lying still"
LYING_MOTION_G = 0.25

# Candidate gate: low, so that nearly every real impact becomes a candidate (the ±2 g phone of
# MobiFall peaks at 2.0-3.4 g); the model decides. Every local max of |a| above it is scored.
GATE_G = 1.6

PLACEMENTS = ("wrist", "waist", "pendant")


@dataclass(frozen=True)
class SlowPath:
    """Slow path (a fall with little impact, e.g. sliding off a chair) in hand-set physics.

    The model decides at ``POST_S``; a slide's impact is too small for it. If the candidate
    ended far from the orientation held seconds before, after a dip, and the wearer then lies
    still for ``SLOW_S`` seconds, it becomes a finding with probability ``ALERT_P`` at the trunk
    (it may page if unanswered) and ``SUSPECT_P`` at the wrist (a prompt only: on everyday wrist
    wear a hand often rests still after a turn; the path found 2 such in 1.73 h of realwear).
    """

    peak_g: float  # smallest bump at the end of the descent
    angle_deg: float  # rotation from the older reference to lying
    dip_g: float  # |a| must have dipped below this before (the body dropped)


TRUNK_SLOW = SlowPath(peak_g=1.8, angle_deg=45.0, dip_g=0.8)
SLOW: dict[str, SlowPath] = {
    "waist": TRUNK_SLOW,
    "pendant": TRUNK_SLOW,  # a pendant moves with the trunk; no pendant data to train on
    "wrist": SlowPath(peak_g=2.0, angle_deg=60.0, dip_g=0.8),
}

# The thresholds on FallFinding.probability. Fixed points of a common scale: the model maps
# each placement group's operating points, chosen inside the subject-wise cross-validation
# (detectors/fall_train.py), onto them (FallModel.probability), so they hold for every placement.
SUSPECT_P = 0.5  # prompt the wearer ("are you OK?"): a finding is emitted from here
SILENT_P = 0.7  # an unanswered suspicion on a device that stops reporting right after it may
#                 become an alert from here
ALERT_P = 0.9  # an unanswered suspicion may become an alert from here


def fall_model(rate: float | None = None, clip2: bool = False) -> FF.FallModel:
    """The shipped model for a device sampling at ``rate`` Hz (None: the recordings' own rate):
    the low-rate one below ``LOW_RATE_HZ``, else for a wrist device that clips at +-2 g
    (``clip2``, ``FallDetector.clips_at_2g``) the +-2 g one, else the recordings' (read once
    per process; checked against the thresholds above)."""
    if rate is not None and rate < FF.LOW_RATE_HZ:
        m = FF.load_model(FF.LOW_RATE_MODEL_PATH)
    else:
        m = FF.load_model(FF.CLIP2_MODEL_PATH) if clip2 else FF.load_model()
    if (m.suspect_p, m.silent_p, m.alert_p) != (SUSPECT_P, SILENT_P, ALERT_P):
        raise ValueError("fall model was trained for other SUSPECT_P / SILENT_P / ALERT_P")
    return m


@dataclass(frozen=True)
class FallFinding:
    """A suspected fall: prompt the wearer; an alert only after confirmation (``ALERT_P``).

    ``probability`` is the model's; ``evidence`` holds the features it was computed from.
    ``lying_still`` lets the caller upgrade the alert to critical.
    """

    impact_ts: float
    peak_g: float
    placement: str
    evidence: dict[str, float | bool]
    lying_still: bool
    probability: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "impact_ts": self.impact_ts,
            "peak_g": self.peak_g,
            "placement": self.placement,
            "evidence": dict(self.evidence),
            "lying_still": self.lying_still,
            "probability": self.probability,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FallFinding:
        return cls(
            float(d["impact_ts"]),
            float(d["peak_g"]),
            str(d["placement"]),
            dict(d["evidence"]),
            bool(d["lying_still"]),
            float(d.get("probability", 1.0)),
        )


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
    absa = np.abs(a)
    peak = absa.max(axis=0)  # NaN and infinity carry through the max
    top = float(peak.max())
    if not math.isfinite(top):
        return AccelCheck(error="NaN or infinite sample")
    if top > MAX_ABS_G:
        return AccelCheck(error=f"|axis| {top:.1f} g beyond any sensor range")
    if top < SATURATION_FROM_G:
        return _CLEAN  # nearly every chunk: no axis near any full-scale value
    n = a.shape[0]
    if n >= r * MEDIAN_CHECK_S:
        median = float(np.median(np.sqrt(np.einsum("ij,ij->i", a, a))))
        if median > MAX_MEDIAN_G:
            return AccelCheck(
                error=f"median |a| {median:.1f} g over {n / r:.1f} s: no body sustains that; "
                "samples must be in g (a device at rest reading 9.8 sends m/s^2)"
            )
    # Saturation: an axis at a common full-scale value, or flat-topped at its extreme.
    flat = ((absa >= peak - 1e-3).sum(axis=0) >= 2) & (peak >= SATURATION_FROM_G)
    at_range = (np.abs(peak[:, None] - CLIP_LEVELS_G) <= 0.03 * CLIP_LEVELS_G).any(axis=1)
    return _SATURATED if (flat | at_range).any() else _CLEAN


_CLEAN = AccelCheck()
_SATURATED = AccelCheck(notes=("saturated",))


def _pack(a: npt.NDArray[Any]) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<i2").tobytes()).decode("ascii")


def _mg_bytes(a: npt.NDArray[Any]) -> bytes:
    """Integer milli-g (already clipped to the int16 range) as little-endian int16 bytes."""
    return np.ascontiguousarray(a, dtype="<i2").tobytes()


def _unpack(s: str, cols: int) -> I16:
    return np.frombuffer(base64.b64decode(s), dtype="<i2").reshape(-1, cols).astype(np.int16)


_EMPTY_RING: I16 = np.zeros((0, 5), dtype=np.int16)
_NO_PART: tuple[int, ...] = (0, 0, 0, 0, 0, 0)
_NO_CLIP_G2 = 32.7**2  # |a|^2 below this: no axis reaches the int16 range in milli-g
_RAIL2_LO_G2 = (FF.RAIL2_MG[0] / 1000.0) ** 2  # |a|^2 below this: no axis reaches ~2 g
# Per placement: (candidate gate in mg, its square in g^2), shared by every detector.
_GATES: dict[str, tuple[float, float]] = {
    p: (min(GATE_G, s.peak_g) * 1000.0, (min(GATE_G, s.peak_g) * 1000.0 / 1000.0) ** 2)
    for p, s in SLOW.items()
}
_ARANGE: dict[int, FloatArray] = {}
_ZERO = np.zeros(1, dtype=np.int64)
NEVER = 2**62


def _arange(n: int) -> FloatArray:
    r = _ARANGE.get(n)
    if r is None:
        r = np.arange(n, dtype=np.float64)
        if len(_ARANGE) < 256:
            _ARANGE[n] = r
    return r


def _angle(u: FloatArray, v: FloatArray) -> float:
    norm = float(np.linalg.norm(u) * np.linalg.norm(v))
    return math.degrees(math.acos(max(-1.0, min(1.0, float(u @ v) / max(1e-6, norm)))))


@dataclass(slots=True)  # many live ones in a worker: no per-instance dict
class FallDetector:
    """Streaming fall detector for one device; feed chunks in arrival order."""

    placement: str
    # ring of closed bins, int16 milli-g: columns max|a|, min|a|, mean x, y, z
    ring: I16 = field(default_factory=lambda: _EMPTY_RING, repr=False)
    ring_end: int = 0  # absolute bin index one past the last closed bin
    part_bin: int | None = None  # the open (not yet closed) bin
    part: tuple[int, ...] = _NO_PART  # n, sx, sy, sz, max, min
    last_t: float | None = None  # time of the last accepted sample (queued ones included)
    decided_end: int = 0  # candidates below this absolute bin were already decided
    last_finding_bin: int = -(10**12)
    last_finding_p: float = 1.0  # probability of that finding (1.0: nothing can upgrade it)
    still_from: float | None = None  # start of the current still period (epoch s)
    hist_start: int = 0  # absolute bin where the current unbroken history starts
    due_bin: int = NEVER  # process the queue once a sample reaches this bin (a decision is due)
    watch: list[float] | None = None  # slow path: [bin, peak, post x, y, z, score, angle]
    pend: bytes = field(default=b"", repr=False)  # queued quiet samples, int16 mg ("<i2", N x 3)
    pend_t0: float = 0.0  # time of the first queued sample
    pend_rate: float = 0.0
    pend_n: int = 0
    # min and max of the queued samples' float |a|^2 (``still_for`` reads their range)
    pend_lo2: float = field(default=math.inf, repr=False, compare=False)
    pend_hi2: float = field(default=-math.inf, repr=False, compare=False)
    held: tuple[FallFinding, ...] = ()  # findings not yet returned
    # a device above HIGH_RATE_HZ: (time, rate, float64 x, y, z) of its last raw sample, for
    # the 50 Hz grid point between it and the next chunk's first; else None
    high: tuple[float, float, bytes] | None = field(default=None, repr=False)
    # the largest reading on any axis so far, milli-g (wrist only: ``clips_at_2g``); read
    # while it can still say "clips at 2 g", i.e. up to RAIL2_MG's upper end
    axis_hi_mg: int = 0
    # training only (not state): when a list, every candidate's (impact_ts, features) is
    # appended to it and nothing is decided, so thresholds can be chosen offline
    collect: list[tuple[float, FloatArray]] | None = field(default=None, repr=False)
    # ... and, when a list, beside each whether the +-2 g model would judge it (``clips_at_2g``)
    collect_clip2: list[bool] | None = field(default=None, repr=False, compare=False)
    # derived from the placement (not state)
    _slow: SlowPath = field(init=False, repr=False, compare=False)
    _wrist: bool = field(init=False, repr=False, compare=False)
    _cand_mg: float = field(init=False, repr=False, compare=False)
    _hot2: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.placement not in SLOW:
            raise ValueError(f"unknown placement {self.placement!r}")
        self._slow = SLOW[self.placement]
        self._wrist = self.placement == "wrist"
        self._cand_mg, self._hot2 = _GATES[self.placement]

    # ---- state -------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-able state (at most about 3.5 KiB) for a Faust table keyed by device."""
        return {
            "v": 2,
            "placement": self.placement,
            "ring": _pack(self.ring),
            "ring_end": self.ring_end,
            "part_bin": self.part_bin,
            "part": list(self.part),
            "last_t": self.last_t,
            "decided_end": self.decided_end,
            "last_finding_bin": self.last_finding_bin,
            "last_finding_p": self.last_finding_p,
            "still_from": self.still_from,
            "hist_start": self.hist_start,
            "due_bin": self.due_bin,
            "watch": self.watch,
            "pend": base64.b64encode(self.pend).decode("ascii") if self.pend_n else "",
            "pend_t0": self.pend_t0,
            "pend_rate": self.pend_rate,
            "held": [f.to_dict() for f in self.held],
            "axis_hi": self.axis_hi_mg,
            "high": None
            if self.high is None
            else [self.high[0], self.high[1], base64.b64encode(self.high[2]).decode("ascii")],
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> FallDetector:
        """Inverse of :meth:`to_state` (also reads version 1 states)."""
        d = cls(
            placement=s["placement"],
            ring=_unpack(s["ring"], 5),
            ring_end=int(s["ring_end"]),
            part_bin=None if s["part_bin"] is None else int(s["part_bin"]),
            part=tuple(int(v) for v in s["part"]),
            last_t=None if s["last_t"] is None else float(s["last_t"]),
            decided_end=int(s["decided_end"]),
            last_finding_bin=int(s["last_finding_bin"]),
            last_finding_p=float(s.get("last_finding_p", 1.0)),
            still_from=None if s["still_from"] is None else float(s["still_from"]),
        )
        if s.get("v", 1) >= 2:
            d.hist_start = int(s["hist_start"])
            d.due_bin = int(s["due_bin"])
            d.watch = None if s["watch"] is None else [float(v) for v in s["watch"]]
            if s["pend"]:
                q = _unpack(s["pend"], 3)
                d.pend, d.pend_n = _mg_bytes(q), q.shape[0]
                d.pend_t0, d.pend_rate = float(s["pend_t0"]), float(s["pend_rate"])
                d._note_range(q.astype(np.float64) / 1000.0)  # as the samples were restored
            d.held = tuple(FallFinding.from_dict(f) for f in s["held"])
            d.axis_hi_mg = int(s.get("axis_hi", 0))  # a state from before: not known yet
            high = s.get("high")
            if high:
                d.high = (float(high[0]), float(high[1]), base64.b64decode(high[2]))
        else:
            d.hist_start = d.ring_end - d.ring.shape[0]
        return d

    def _note_axes(self, a: FloatArray) -> None:
        """The largest reading on any axis, while it can still say "clips at 2 g" (wrist)."""
        if self._wrist and self.axis_hi_mg <= FF.RAIL2_MG[1]:
            top = float(np.abs(a).max()) * 1000.0  # NaN never arrives: check_accel refuses it
            if top > self.axis_hi_mg:
                self.axis_hi_mg = min(round(top), 32767)

    def clips_at_2g(self) -> bool:
        """A wrist device whose readings have reached about 2 g on an axis and never beyond
        (``FF.RAIL2_MG``): it clips at +-2 g, whatever its registry entry says."""
        lo, hi = FF.RAIL2_MG
        return self._wrist and lo <= self.axis_hi_mg <= hi

    def _pending_mg(self) -> FloatArray:
        """Queued samples in integer milli-g (as float64), clipped to the int16 range."""
        return np.frombuffer(self.pend, dtype="<i2").reshape(-1, 3).astype(np.float64)

    def _queue(self, a: FloatArray, lo2: float, hi2: float) -> None:
        """Queue samples ``a`` as int16 mg (what binning will use), ``lo2`` and ``hi2`` the
        least and largest of their |a|^2 (``still_for`` reads the range)."""
        q = a * 1000.0
        np.rint(q, out=q)
        if not hi2 < _NO_CLIP_G2:  # an axis may be beyond the int16 range (NaN: clip too)
            np.minimum(np.maximum(q, -32767.0, out=q), 32767.0, out=q)
        self.pend += q.astype("<i2").tobytes()
        self.pend_n += a.shape[0]
        if lo2 < self.pend_lo2:
            self.pend_lo2 = lo2
        if hi2 > self.pend_hi2:
            self.pend_hi2 = hi2

    def _note_range(self, a: FloatArray) -> None:
        m2 = np.einsum("ij,ij->i", a, a)
        self.pend_lo2, self.pend_hi2 = float(m2.min()), float(m2.max())

    def _drop_queue(self) -> None:
        self.pend, self.pend_n = b"", 0
        self.pend_lo2, self.pend_hi2 = math.inf, -math.inf

    # ---- input -------------------------------------------------------------------------
    def feed(self, ts: float, rate: float, g: Any) -> list[FallFinding]:
        """Consume one chunk (first sample at ``ts``); return findings decided by it."""
        a = g if type(g) is np.ndarray and g.dtype == np.float64 else np.asarray(g, np.float64)
        if a.ndim != 2:
            a = a.reshape(-1, 3)
        rate = float(rate)
        if rate > HIGH_RATE_HZ or self.high is not None:
            return self._feed_high(ts, rate, a)
        return self._feed(ts, rate, a)

    def _feed_high(self, ts: float, rate: float, a: FloatArray) -> list[FallFinding]:
        """A chunk of a device above HIGH_RATE_HZ as 50 Hz samples, made as the recordings were
        made from faster devices: each axis linearly interpolated at the times ``p / 50``,
        without filtering. The last raw sample is kept (``high``) for the grid point between it
        and the next chunk's first."""
        n = a.shape[0]
        t = ts + np.arange(n) / rate  # each chunk's own times: no drift over many chunks
        first = math.ceil(ts * MODEL_HZ - _GRID_EPS)
        if n and self.high is not None and t[-1] < self.high[0] - MAX_GAP_S:
            self._step_back()  # a timeline of its own (``_feed``)
        if self.high is not None:
            t_prev, held_rate, raw = self.high
            j0 = max(0, math.floor((t_prev - ts) * rate + 0.5) + 1)  # replayed or overlapping
            if j0 >= n and held_rate == rate:
                return self._take_held()
            if held_rate == rate and abs(ts + j0 / rate - (t_prev + 1 / rate)) <= 0.25 / rate:
                prev = np.frombuffer(raw, dtype=np.float64).reshape(1, 3)
                a, t = np.vstack([prev, a[j0:]]), np.concatenate([[t_prev], t[j0:]])
                first = math.floor(t_prev * MODEL_HZ + _GRID_EPS) + 1  # continues the held one
            else:
                self.high = None  # a gap or another rate: nothing to interpolate across
                if rate <= HIGH_RATE_HZ:
                    return self._feed(ts, rate, a)
        if a.shape[0] == 0:
            return self._take_held()
        last = math.floor(t[-1] * MODEL_HZ + _GRID_EPS)
        self.high = (float(t[-1]), rate, a[-1].tobytes())
        if last < first:
            return self._take_held()
        grid = np.arange(first, last + 1) / MODEL_HZ
        out = np.column_stack([np.interp(grid, t, a[:, k]) for k in range(3)])
        return self._feed(first / MODEL_HZ, MODEL_HZ, out)

    def _feed(self, ts: float, rate: float, a: FloatArray) -> list[FallFinding]:
        n = a.shape[0]
        if n and self.last_t is not None and ts + (n - 1) / rate < self.last_t - MAX_GAP_S:
            self._step_back()  # not a replay: a timeline of its own
        if n and self.last_t is not None:  # drop replayed / overlapping samples
            x = (self.last_t - ts) * rate + 0.5
            if x >= 0.0:
                j0 = math.floor(x) + 1
                if j0 >= n:
                    return self._take_held()
                a, ts, n = a[j0:], ts + j0 / rate, n - j0
        if n == 0:
            return self._take_held()
        t_end = ts + (n - 1) / rate
        if self.last_t is not None and ts - self.last_t > MAX_GAP_S:
            # The history restarts. Queued samples cannot complete any decision (a decision
            # falling due is processed when its sample arrives), so they are dropped unbinned:
            # a device reporting a short chunk every few seconds costs one check per chunk.
            self._drop_queue()
            self._restart()
        elif self.pend_n and (
            rate != self.pend_rate
            or abs(ts - (self.pend_t0 + self.pend_n / rate)) > 0.25 / rate
            or self.pend_n + n > MAX_PENDING
        ):
            self._process()
        self.last_t = t_end
        if not self.pend_n:
            self.pend_t0, self.pend_rate = ts, rate
        # decide as soon as a candidate's post window (or a watch) is complete; else queue
        if math.floor(t_end * BIN_HZ + 1e-3) < self.due_bin:
            m2 = np.einsum("ij,ij->i", a, a)
            hi2 = float(m2.max())
            if hi2 >= _RAIL2_LO_G2:  # no axis reads more than |a|
                self._note_axes(a)
            if hi2 >= self._hot2:
                self._check_peaks(m2, ts, rate)
            self._queue(a, float(m2.min()), hi2)
            if self.pend_n < MAX_PENDING:
                return self._take_held()
        else:  # binned at once: the range is not read
            self._note_axes(a)
            self._queue(a, math.inf, math.inf)
        self._process()
        return self._take_held()

    def _check_peaks(self, m2: FloatArray, ts: float, rate: float) -> None:
        """A candidate peak in the chunk (``m2``: its |a|^2, some above the gate): its decision
        is due ``POST_S`` after it."""
        j = int(np.argmax(m2 >= self._hot2))
        due = math.floor((ts + j / rate) * BIN_HZ + 1e-3) + int(POST_S * BIN_HZ) + 1
        self.due_bin = min(self.due_bin, due)

    def flush(self) -> list[FallFinding]:
        """Bin queued quiet samples now (they hold no candidate); return any held findings."""
        self._process()
        return self._take_held()

    def _take_held(self) -> list[FallFinding]:
        if not self.held:
            return []
        out, self.held = list(self.held), ()
        return out

    def _step_back(self) -> None:
        """A chunk that ends more than ``MAX_GAP_S`` before the samples already read: the
        device's clock stepped back (a time sync after running fast, a reboot), or a chunk the
        detector never saw arrives late. Dropped as a replay, it would blind the detector for as
        long as the step (a fall a minute after a one-minute step was missed); so it starts a
        timeline of its own, as a long gap does, with no refractory carried over from the later
        times. A true replay of what was read is a duplicate message, dropped before it gets
        here (``detectors.pipeline.seen_before``); one that gets here anyway finds the same fall
        with the same deterministic id, which the alerts room merges."""
        self._drop_queue()
        self._restart()
        self.last_t = None
        self.high = None
        self.last_finding_bin, self.last_finding_p = -(10**12), 1.0

    def _restart(self) -> None:
        """Forget history after a long gap: it says nothing about the data that follows."""
        self.ring = _EMPTY_RING
        self.part_bin = None
        self.decided_end = 0
        self.still_from = None
        self.watch = None
        self.due_bin = NEVER

    def _process(self) -> None:
        """Bin the queued samples into the ring and decide every candidate that is ripe."""
        if not self.pend_n:
            return
        mg = self._pending_mg()
        k = np.floor(
            _arange(mg.shape[0]) * (BIN_HZ / self.pend_rate) + (self.pend_t0 * BIN_HZ + 1e-3)
        )
        self._drop_queue()
        dense, first = self._add_samples(k, mg)
        if not dense.shape[0]:
            return
        if not self.ring.shape[0]:
            self.hist_start = first
            self.decided_end = max(self.decided_end, first)
            work = dense
        else:
            work = np.concatenate([self.ring, dense])
        self.ring_end = first + dense.shape[0]
        self._track_still(dense)
        self._decide(work, self.ring_end - work.shape[0])
        self.ring = work[-RING_BINS:] if work.shape[0] > RING_BINS else work
        self._set_due()

    def _set_due(self) -> None:
        """The next bin at which a decision (open candidate, slow-path watch) falls due."""
        due = NEVER
        post = int(POST_S * BIN_HZ) + 1
        if self.part_bin is not None and self.part[4] >= self._cand_mg:
            due = self.part_bin + post
        ws = self.ring_end - self.ring.shape[0]
        lo = max(self.decided_end, ws) - ws
        open_ = (self.ring[lo:, 0] >= self._cand_mg).nonzero()[0]
        if open_.size:
            due = min(due, ws + lo + int(open_[0]) + post)
        if self.watch is not None:
            due = min(due, int(self.watch[0]) + int(SLOW_S * BIN_HZ) + 1)
        self.due_bin = due

    def _add_samples(self, k: FloatArray, mg: FloatArray) -> tuple[I16, int]:
        """Bin samples (bin index ``k``, integer mg as float); return new closed bins, first."""
        mag = np.rint(np.sqrt(np.einsum("ij,ij->i", mg, mg)))
        n = k.shape[0]
        starts = (k[1:] != k[:-1]).nonzero()[0] + 1
        nb = starts.shape[0] + 1
        acc = np.empty((nb, 6), dtype=np.float64)  # n, sx, sy, sz, max, min per bin
        if nb > 1:
            starts = np.concatenate([_ZERO, starts])
            acc[:-1, 0] = starts[1:] - starts[:-1]
            acc[-1, 0] = n - starts[-1]
            acc[:, 1:4] = np.add.reduceat(mg, starts, axis=0)
            acc[:, 4] = np.maximum.reduceat(mag, starts)
            acc[:, 5] = np.minimum.reduceat(mag, starts)
            bins = k[starts].astype(np.int64)
        else:
            acc[0, 0] = n
            acc[0, 1:4] = mg.sum(axis=0)
            acc[0, 4] = mag.max()
            acc[0, 5] = mag.min()
            bins = k[:1].astype(np.int64)
        if self.part_bin is not None:
            p = self.part
            if bins[0] <= self.part_bin:
                acc[0, :4] += p[:4]
                acc[0, 4] = max(acc[0, 4], p[4])
                acc[0, 5] = min(acc[0, 5], p[5])
            else:
                bins = np.concatenate([[self.part_bin], bins])
                acc = np.concatenate([np.array([p], dtype=np.float64), acc])
        # the last bin stays open until a later sample arrives
        self.part_bin = int(bins[-1])
        self.part = tuple(int(v) for v in acc[-1])
        nb = bins.size - 1
        if not nb:
            return _EMPTY_RING, self.ring_end
        bins, acc = bins[:-1], acc[:-1]
        rows = np.empty((nb, 5), dtype=np.float64)
        rows[:, :2] = acc[:, 4:6]
        np.rint(acc[:, 1:4] / acc[:, :1], out=rows[:, 2:])
        first = int(bins[0]) if self.ring.shape[0] == 0 else self.ring_end
        span = int(bins[-1]) + 1 - first
        if span != nb or int(bins[0]) != first:
            # dense rows from `first`; empty bins (short gaps, low rates) repeat the previous bin
            idx = np.full(span, -1, dtype=np.int64)
            idx[bins - first] = np.arange(nb)
            filled = np.maximum.accumulate(idx)
            if filled[0] < 0:  # gap right after the ring's last bin: carry it forward
                prev = self.ring[-1].astype(np.float64)
                quiet = np.r_[np.full(2, math.hypot(*prev[2:])), prev[2:]]
                rows = np.vstack([rows, np.rint(quiet)[None, :]])
                filled = np.where(filled < 0, rows.shape[0] - 1, filled)
            rows = rows[filled]
        return np.minimum(np.maximum(rows, -32767.0), 32767.0).astype(np.int16), first

    def _track_still(self, dense: I16) -> None:
        still = np.subtract(dense[:, 0], dense[:, 1], dtype=np.int32) < STILL_RANGE_G * 1000
        end = self.ring_end
        if still.all():
            if self.still_from is None:
                self.still_from = (end - dense.shape[0]) / BIN_HZ
            return
        last_moving = int(np.flatnonzero(~still)[-1])
        self.still_from = (end - dense.shape[0] + last_moving + 1) / BIN_HZ

    def still_for(self, now_ts: float) -> float:
        """Seconds the device has been still up to its latest sample (0 if moving)."""
        start, end = self.still_from, self.ring_end / BIN_HZ
        if self.pend_n:  # queued samples count if they are still too (no state change here)
            if math.sqrt(self.pend_hi2) - math.sqrt(self.pend_lo2) >= STILL_RANGE_G:
                return 0.0
            start = self.pend_t0 if start is None else start
            end = max(end, self.pend_t0 + self.pend_n / self.pend_rate)
        if start is None:
            return 0.0
        return max(0.0, min(now_ts, end) - start)

    # ---- decision ----------------------------------------------------------------------
    def _decide(self, work: I16, ws: int) -> None:
        """Decide candidates in ``work`` (bins from absolute index ``ws``) with a full post."""
        post = int(POST_S * BIN_HZ)
        half = int(PEAK_HALF_S * BIN_HZ)
        end = ws + work.shape[0]
        lo = max(self.decided_end, ws)
        hi = end - post  # candidates below hi have their post window
        if hi <= lo:
            self._confirm(work, ws, end)
            return
        self.decided_end = hi
        amax = work[lo - ws : hi - ws, 0]
        cand = (amax >= self._cand_mg).nonzero()[0]
        if cand.size:
            amax = work[:, 0]
            for c in (cand + (lo - ws)).tolist():
                absbin = ws + c
                # events in the order a bin-by-bin stream would see them
                self._confirm(work, ws, absbin + post + 1)
                j0 = max(0, c - half)
                if int(np.argmax(amax[j0 : c + half + 1])) + j0 != c:
                    continue  # not the first largest |a| nearby
                if absbin - self.hist_start < MIN_HISTORY_S * BIN_HZ:
                    continue  # no orientation before it to compare with
                upgrade_only = absbin < self.last_finding_bin + REFRACTORY_S * BIN_HZ
                self._candidate(work, c, absbin, upgrade_only)
        self._confirm(work, ws, end)

    def _candidate(self, work: I16, c: int, absbin: int, upgrade_only: bool = False) -> None:
        """Decide one candidate; within the refractory (``upgrade_only``) only a more probable
        one than the last finding is emitted (it upgrades that finding: the same fall)."""
        x, ev, post_vec = self._features(work, c)
        if self.collect is not None:
            self.collect.append(((absbin + 0.5) / BIN_HZ, x))
            if self.collect_clip2 is not None:
                self.collect_clip2.append(self.clips_at_2g())
            return
        p = float(fall_model(self.pend_rate, self.clips_at_2g()).probability(x)[0])
        ev["probability"] = round(p, 4)
        if upgrade_only:
            if p >= SUSPECT_P and p > self.last_finding_p:
                self._emit(absbin, ev, p)
            return
        if p >= SUSPECT_P:
            self._emit(absbin, ev, p)
            return
        s = self._slow
        slow = (
            float(ev["peak_g"]) >= s.peak_g
            and float(ev["ref_angle_deg"]) >= s.angle_deg
            and float(ev["freefall_g"]) <= s.dip_g
            and float(ev["post_motion_g"]) <= LYING_MOTION_G
            and float(ev["weightless_s"]) < WEIGHTLESS_MAX_S
            and float(ev["repeats"]) == 0.0
        )
        if slow:
            self.watch = [float(absbin), float(ev["peak_g"]), *map(float, post_vec)]
            self.watch += [p, float(ev["ref_angle_deg"])]

    def _emit(self, absbin: int, ev: dict[str, float | bool], p: float) -> None:
        self.last_finding_bin, self.last_finding_p = absbin, p
        self.watch = None
        self.held = (
            *self.held,
            FallFinding(
                impact_ts=(absbin + 0.5) / BIN_HZ,
                peak_g=float(ev["peak_g"]),
                placement=self.placement,
                evidence=ev,
                lying_still=bool(ev["lying_still"]),
                probability=p,
            ),
        )

    def _confirm(self, work: I16, ws: int, upto: int) -> None:
        """Slow path: decide the watched candidate once ``SLOW_S`` of data after it exist."""
        if self.watch is None:
            return
        wb = int(self.watch[0])
        due = wb + int(SLOW_S * BIN_HZ)
        if due >= upto:
            return
        w = self.watch
        self.watch = None
        lo = max(ws, wb + int(POST_S * BIN_HZ)) - ws
        seg = work[lo : due - ws].astype(np.int64)
        if not seg.shape[0]:
            return
        moving = float(np.mean((seg[:, 0] - seg[:, 1]) >= STILL_RANGE_G * 1000))
        vec = seg[:, 2:] / 1000.0
        sway = math.sqrt(float(((vec - vec.mean(axis=0)) ** 2).sum(axis=1).mean()))
        drift = _angle(vec[-BIN_HZ:].mean(axis=0), np.asarray(w[2:5]))
        if moving <= SLOW_MOVING_MAX and sway <= SLOW_SWAY_G and drift <= SLOW_DRIFT_DEG:
            ev: dict[str, float | bool] = {
                "peak_g": w[1],
                "ref_angle_deg": w[6],
                "probability": round(w[5], 4),
                "still_s": SLOW_S - POST_S,
                "moving_frac": moving,
                "drift_deg": drift,
                "sway_g": sway,
                "slow": True,
                "lying_still": True,
            }
            # trunk: lying still 6 s after a drop and a turn is strong evidence (it may page
            # unanswered); wrist: a hand resting after a turn is everyday wear (realwear), a prompt
            self._emit(wb, ev, SUSPECT_P if self._wrist else ALERT_P)

    def _features(
        self, work: I16, i: int
    ) -> tuple[FloatArray, dict[str, float | bool], FloatArray]:
        """Features around the candidate at row ``i`` of ``work`` (its post window present)."""
        b = BIN_HZ
        w0 = max(0, i - int(REF_S[0] * b))
        r = work[w0 : i + int(POST_S * b) + 1].astype(np.float64) / 1000.0
        x = FF.candidate_features(r, i - w0, self._wrist, GATE_G)
        ev: dict[str, float | bool] = {
            k: round(float(v), 4) for k, v in zip(FF.FEATURES, x.tolist(), strict=True)
        }
        i -= w0
        post_m = r[i + int(POST_START_S * b) : i + int(POST_S * b) + 1, 2:].mean(axis=0)
        ev["lying_still"] = (
            float(ev["angle_deg"]) >= LYING_ANGLE_DEG
            and float(ev["post_motion_g"]) <= LYING_MOTION_G
        )
        return x, ev, post_m


def check_accel_chunks(rates: list[Any], a: FloatArray, starts: list[int]) -> list[AccelCheck]:
    """``check_accel`` of many chunks at once: chunk ``i`` is ``a[starts[i]:starts[i + 1]]``
    (``a`` N x 3, every chunk non-empty), at ``rates[i]``; the same verdicts, one numpy pass.

    Nearly every chunk is quiet (no axis near 1.5 g): its verdict comes from one max per chunk
    (``reduceat``, NaN carried through); any other chunk is checked by ``check_accel`` itself.
    """
    bounds = [*starts, a.shape[0]]
    top = np.maximum.reduceat(np.abs(a).max(axis=1), starts).tolist() if starts else []
    out: list[AccelCheck] = []
    for i, rate in enumerate(rates):
        quiet = top[i] < SATURATION_FROM_G  # False for NaN
        if quiet and type(rate) in (int, float) and RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
            out.append(_CLEAN)
        else:
            out.append(check_accel(rate, a[bounds[i] : bounds[i + 1]]))
    return out
