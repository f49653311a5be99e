"""Features of a candidate impact, the fall model's numpy inference, and ``up_and_about``.

Pure numpy, no I/O except :func:`load_model` reading the shipped JSON. The features are
computed from the fall detector's 50 ms bins (max |a|, min |a|, mean vector, in g) around a
candidate impact: the same rows at training time (``detectors.fall_train`` runs the streaming
detector itself to collect them) and at run time, so the model sees identical numbers.

Why these features: a fall is a loss of control ending in a body impact. It shows as a large,
lasting impact that takes velocity out (impulse), usually after a dip of |a| (partial free
fall), with a quick turn to a new orientation and less movement afterwards; clapping, jogging,
stamping and knocks repeat, turn little or slowly, and are over in a few tens of ms. Only
rotation-invariant quantities are used: the three datasets' devices have different axes.
Nothing measures how much history a candidate has (the lab trials start 1.3 s before their
falls, so such a feature would learn the recording protocol, not falls).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

BIN_HZ = 20  # the detector's 50 ms bins
POST_S = 2.5  # data after the impact the decision uses (the trials have at least 2.9 s)
POST_START_S = 1.0  # the post window starts this long after the impact (settling, bounces)
PRE_S = (3.0, 1.0)  # window (seconds before the impact) for the "before" orientation
REF_S = (3.5, 2.5)  # older reference orientation (slides rotate slowly)
IMPULSE_MS = (150, 350)  # ms before / after the peak over which the impact impulse is summed
FF_S = 1.0  # free-fall dip is searched this long before the impact
STILL_RANGE_G = 0.15  # a bin whose |a| varies less than this counts as still
WEIGHTLESS_G = 0.3  # |a| below this in a whole bin: nearly weightless
# A dropped device (or a jump) is weightless for longer than a toppling body, which keeps some
# support: every fall in the data stays at or under 0.15 s of it. No training example shows a
# dropped device, so this physics veto is applied to the model's output (``vetoed``).
WEIGHTLESS_MAX_S = 0.3
REPEAT_S = 2.0  # similar peaks within +-this: clapping, jogging, hammering
# Impact duration that a device's range cannot change: a sample whose true |a| reaches HI_G
# still reads at least HI_G when every axis is clipped at a rail c >= HI_G (either nothing was
# clipped, or a clipped axis alone reads c), and one below it only reads lower. So the time
# |a| spends above HI_G is the same on a +-2 g phone as on a +-16 g belt, where the peak is not
# (MobiFall's fall peaks read 2.0-3.4 g; SisFall's 4-25 g read 2.3-3.5 g when clipped at 2 g).
HI_G = 1.8
HI_FULL_G = 1.5  # the same for whole 50 ms bins above this (a lasting body impact)
TURN_MIN_DEG = 10.0  # below this orientation change there is no turn to time
MODEL_PATH = Path(__file__).with_name("models") / "fall_model.json"
# A device sampling below LOW_RATE_HZ is judged by a model trained on the recordings as such a
# device sends them (low-passed, fewer samples per bin: its impacts read lower and shorter);
# the recordings' own model, at 50 Hz, misses most falls at 25 Hz (FALL_MODEL.md, device rate).
LOW_RATE_MODEL_PATH = MODEL_PATH.with_name("fall_model_low_rate.json")
LOW_RATE_HZ = 45.0
# A wrist device whose largest reading on any axis so far lies within RAIL2_MG (milli-g) has
# reached about 2 g and never gone beyond: it clips at +-2 g. The recordings hold no +-2 g
# wrist device, and the 50 Hz model misses half the wrist falls on one; its wrist candidates
# are judged by a model trained on the recordings as +-2 g devices send them (FALL_MODEL.md,
# device range). Telemetry carries no range, so the readings say it.
CLIP2_MODEL_PATH = MODEL_PATH.with_name("fall_model_clip2.json")
RAIL2_MG = (1970, 2050)

FEATURES = (
    "wrist",  # placement: 1 wrist, 0 trunk (waist; a pendant is treated as trunk)
    "peak_g",  # largest |a| of the candidate (a clipped peak is a lower bound)
    "impulse_ms",  # velocity (m/s) the impact took out: sum of |mean vector| - 1 g near the peak
    "impact_mean_g",  # largest |50 ms mean vector| near the peak: a body impact lasts
    "rise_g",  # jerk: rise of max |a| over the 150 ms before the peak
    "width_s",  # time around the peak with max |a| above half way from 1 g to the peak
    "freefall_g",  # smallest |a| in the second before the impact
    "dip_g",  # smallest 150 ms mean |vector| in that second (a sustained dip, not a glitch)
    "drop_ms",  # velocity (m/s) gained with less than 1 g of support in that second: falling
    "weightless_s",  # time in that second with |a| below 0.3 g throughout a bin (dropped device)
    "angle_deg",  # orientation change, before vs after the impact
    "ref_angle_deg",  # orientation change from an older reference (3.5-2.5 s before)
    "turn_s",  # how long the middle of that turn took (a controlled movement turns slowly)
    "post_motion_g",  # movement after the impact (rms of the mean vector + half the bin range)
    "post_still_frac",  # fraction of still bins after the impact
    "post_g",  # |mean vector| after: about 1 g at rest
    "post_peak_ratio",  # largest |a| from 0.3 s after the impact on, over the peak
    "settle_g",  # mean range of |a| within bins 0.3-1 s after: a body rolls, a slammed hand stops
    "pre_motion_g",  # movement in the "before" window
    "pre_range_g",  # mean range of |a| within bins before the impact (walking, jogging)
    "pre_peak_ratio",  # largest |a| 2-0.3 s before the impact, over the peak
    "hi_s",  # time within +-0.5 s of the peak with |a| >= HI_G (unchanged by a rail >= HI_G)
    "hi_full_s",  # time in that second with |a| >= HI_FULL_G throughout a bin (a lasting impact)
    "repeats",  # other peaks of similar size within +-2 s
)
N_FEATURES = len(FEATURES)


def _angle(u: FloatArray, v: FloatArray) -> float:
    norm = float(np.linalg.norm(u) * np.linalg.norm(v))
    return math.degrees(math.acos(max(-1.0, min(1.0, float(u @ v) / max(1e-6, norm)))))


def candidate_features(r: FloatArray, i: int, wrist: bool, gate_g: float) -> FloatArray:
    """Feature vector (order of ``FEATURES``) of the candidate at row ``i`` of bins ``r``.

    ``r`` holds rows (max |a|, min |a|, mean x, y, z) in g, at least ``POST_S`` of them after
    ``i``; the rows before may be fewer than ``REF_S[0]`` seconds (what exists is used).
    """
    b = BIN_HZ
    w0 = max(0, i - int(REF_S[0] * b))
    r = r[w0 : i + int(POST_S * b) + 1]
    i -= w0
    amax, amin, vec = r[:, 0], r[:, 1], r[:, 2:]
    vmag = np.sqrt(np.einsum("ij,ij->i", vec, vec))
    peak = float(amax[i])
    f0 = max(0, i - int(FF_S * b))
    freefall = float(amin[f0 : i + 1].min())
    sm = np.convolve(vmag[f0 : i + 1], np.ones(3) / 3.0, mode="valid") if i - f0 >= 2 else vmag
    dip = float(sm.min()) if sm.size else float(vmag[i])
    weightless = float(np.count_nonzero(amax[f0:i] < WEIGHTLESS_G)) / b
    drop = float(np.maximum(1.0 - vmag[f0:i], 0.0).sum()) * 9.81 / b
    settle = float((amax[i + 6 : i + b + 1] - amin[i + 6 : i + b + 1]).mean())
    pre0 = max(0, i - int(PRE_S[0] * b))
    pre = vec[pre0 : max(pre0 + 1, i - int(PRE_S[1] * b))]
    ref = vec[0 : max(1, i - int(REF_S[1] * b))]
    lo, hi = i + int(POST_START_S * b), i + int(POST_S * b) + 1
    post, post_rng = vec[lo:hi], amax[lo:hi] - amin[lo:hi]
    pre_m, post_m = pre.mean(axis=0), post.mean(axis=0)
    angle = _angle(pre_m, post_m)
    ref_angle = _angle(ref.mean(axis=0), post_m)
    post_motion = math.sqrt(float(((post - post_m) ** 2).sum(axis=1).mean()))
    post_motion += float(np.median(post_rng)) / 2
    pre_motion = math.sqrt(float(((pre - pre_m) ** 2).sum(axis=1).mean()))
    pre_range = float(
        (amax[pre0 : max(pre0 + 1, i - 6)] - amin[pre0 : max(pre0 + 1, i - 6)]).mean()
    )
    n0, n1 = max(0, i - int(REPEAT_S * b)), min(len(amax), i + int(REPEAT_S * b) + 1)
    near = amax[n0:n1]
    level = max(gate_g, 0.6 * peak)
    tops = (near[1:-1] >= level) & (near[1:-1] >= near[:-2]) & (near[1:-1] > near[2:])
    pos = np.flatnonzero(tops) + 1 + n0
    repeats = int(np.count_nonzero(np.abs(pos - i) > int(0.3 * b)))
    impact_mean = float(vmag[max(0, i - 2) : i + 3].max())
    j0, j1 = max(0, i - IMPULSE_MS[0] * b // 1000), i + IMPULSE_MS[1] * b // 1000 + 1
    impulse = float(np.maximum(vmag[j0:j1] - 1.0, 0.0).sum()) * 9.81 / b
    rise = peak - float(amax[max(0, i - 3) : i + 1].min())
    half = 1.0 + 0.5 * (peak - 1.0)
    above = amax[max(0, i - 10) : i + 11] >= half
    width = float(np.count_nonzero(above)) / b
    post_peak = float(amax[i + int(0.3 * b) :].max()) / peak
    pp0, pp1 = max(0, i - int(REPEAT_S * b)), max(0, i - int(0.3 * b))
    pre_peak = float(amax[pp0:pp1].max()) / peak if pp1 > pp0 else 0.0
    turn = turn_seconds(vec, i, pre_m, post_m, angle) if angle >= TURN_MIN_DEG else 0.0
    h0, h1 = max(0, i - b // 2), i + b // 2 + 1
    hi_time = float(np.count_nonzero(amax[h0:h1] >= HI_G)) / b
    hi_full = float(np.count_nonzero(amin[h0:h1] >= HI_FULL_G)) / b
    return np.array(
        [
            1.0 if wrist else 0.0,
            peak,
            impulse,
            impact_mean,
            rise,
            width,
            freefall,
            dip,
            drop,
            weightless,
            angle,
            ref_angle,
            turn,
            post_motion,
            float(np.mean(post_rng < STILL_RANGE_G)),
            float(np.linalg.norm(post_m)),
            post_peak,
            settle,
            pre_motion,
            pre_range,
            pre_peak,
            hi_time,
            hi_full,
            float(repeats),
        ]
    )


def turn_seconds(vec: FloatArray, i: int, pre: FloatArray, post: FloatArray, total: float) -> float:
    """Seconds the middle of the turn from the before- to the after-orientation took.

    A fall is a loss of control: the body turns over quickly; collapsing into a chair is
    slower. Timed from the last 150 ms average still within a quarter of the total change of
    the "before" orientation to the first one within a quarter of it of the "after" one, so a
    steady turn measures half its duration and a still start or end does not count.
    """
    b = BIN_HZ
    lo, hi = max(0, i - 3 * b), min(len(vec), i + b)
    v = vec[lo:hi]
    if len(v) < 3:
        return 0.0
    v = (v[:-2] + v[1:-1] + v[2:]) / 3.0
    norms = np.linalg.norm(v, axis=1) + 1e-6
    cos_pre = v @ pre / (norms * max(1e-6, float(np.linalg.norm(pre))))
    cos_post = v @ post / (norms * max(1e-6, float(np.linalg.norm(post))))
    near = math.cos(math.radians(0.25 * total))
    k = i - lo - 1  # the impact's row in the smoothed series
    left = np.flatnonzero(cos_pre[: k + 1] >= near)
    start = int(left[-1]) if left.size else 0
    right = np.flatnonzero(cos_post[start:] >= near)
    end = start + int(right[0]) if right.size else len(v) - 1
    return (end - start) / b


# ---- model -------------------------------------------------------------------------------
def logit(p: float) -> float:
    p = min(1.0 - 1e-9, max(1e-9, p))
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class FallModel:
    """A fitted model read from JSON: logistic regression or exported gradient-boosted trees.

    Inference is numpy only, so the runtime needs no scikit-learn. ``probability`` puts the
    model's log-odds on a common scale per placement group (wrist, trunk): the operating
    points chosen in cross-validation for each group (``calibration``: raw log-odds at which
    to prompt, to confirm on the device going silent, and to alert) map piecewise linearly in
    log-odds onto ``suspect_p``, ``silent_p`` and ``alert_p`` (beyond the ends linearly, with
    the slope from the first anchor to the last), so one set of thresholds serves every
    placement. The groups need their own operating points: everyday wrist wear is full of
    fall-like hand movements that a belt device never sees.
    """

    kind: str
    spec: dict[str, Any]
    suspect_p: float
    silent_p: float
    alert_p: float
    calibration: dict[str, tuple[float, float, float]]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FallModel:
        if tuple(d["features"]) != FEATURES:
            raise ValueError("model features differ from detectors.fall_features.FEATURES")
        spec: dict[str, Any] = {"kind": d["kind"]}
        if d["kind"] == "logistic":
            for k in ("mean", "scale", "coef"):
                spec[k] = np.asarray(d[k], dtype=np.float64)
            spec["intercept"] = float(d["intercept"])
        elif d["kind"] == "trees":
            spec["baseline"] = float(d["baseline"])
            spec["trees"] = [
                (
                    np.asarray(t["feature"], dtype=np.int64),
                    np.asarray(t["threshold"], dtype=np.float64),
                    np.asarray(t["left"], dtype=np.int64),
                    np.asarray(t["right"], dtype=np.int64),
                    np.asarray(t["missing_left"], dtype=bool),
                    np.asarray(t["leaf"], dtype=bool),
                    np.asarray(t["value"], dtype=np.float64),
                )
                for t in d["trees"]
            ]
            # the same trees as flat Python lists: one row (the streaming case) is walked in
            # plain Python, far quicker than numpy's per-call overhead on a handful of nodes
            spec["flat"] = [
                (
                    list(map(int, t["feature"])),
                    list(map(float, t["threshold"])),
                    list(map(int, t["left"])),
                    list(map(int, t["right"])),
                    list(map(bool, t["missing_left"])),
                    list(map(bool, t["leaf"])),
                    list(map(float, t["value"])),
                )
                for t in d["trees"]
            ]
        else:
            raise ValueError(f"unknown model kind {d['kind']!r}")
        nominal = (float(d["suspect_p"]), float(d.get("silent_p", math.nan)), float(d["alert_p"]))
        if not 0.0 < nominal[0] < nominal[1] < nominal[2] < 1.0:
            raise ValueError(
                f"model thresholds (suspect_p, silent_p, alert_p) = {nominal} must be strictly "
                "increasing within (0, 1)"
            )
        cal: dict[str, tuple[float, float, float]] = {}
        for g in ("wrist", "trunk"):
            v = d["calibration"].get(g)
            if v is None or len(v) != 3:
                raise ValueError(
                    f"calibration of {g}: three raw log-odds anchors (suspect, silent, alert) "
                    f"needed, got {v!r}"
                )
            lo, mid, hi = (float(a) for a in v)
            if not lo < mid < hi:
                raise ValueError(
                    f"calibration of {g}: anchors (suspect, silent, alert) = {(lo, mid, hi)} "
                    "must be strictly increasing"
                )
            cal[g] = (lo, mid, hi)
        return cls(d["kind"], spec, *nominal, cal)

    def decision(self, x: FloatArray) -> FloatArray:
        """Raw score (log-odds) for feature rows ``x`` (N x features)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        s = self.spec
        if self.kind == "logistic":
            z: FloatArray = ((x - s["mean"]) / s["scale"]) @ s["coef"] + s["intercept"]
            return z
        if x.shape[0] == 1:
            return np.array([self._one(x[0].tolist())])
        out = np.full(x.shape[0], s["baseline"])
        rows = np.arange(x.shape[0])
        for feat, thr, left, right, miss_left, leaf, value in s["trees"]:
            node = np.zeros(x.shape[0], dtype=np.int64)
            while True:
                inner = ~leaf[node]
                if not inner.any():
                    break
                xv = x[rows, feat[node]]
                go_left = np.where(np.isnan(xv), miss_left[node], xv <= thr[node])
                node = np.where(inner, np.where(go_left, left[node], right[node]), node)
            out += value[node]
        return out

    def _one(self, row: list[float]) -> float:
        """Log-odds of one feature row, walking the trees in plain Python."""
        z = float(self.spec["baseline"])
        for feat, thr, left, right, miss_left, leaf, value in self.spec["flat"]:
            n = 0
            while not leaf[n]:
                v = row[feat[n]]
                go_left = miss_left[n] if v != v else v <= thr[n]  # v != v: NaN
                n = left[n] if go_left else right[n]
            z += value[n]
        return z

    def raw_probability(self, x: FloatArray) -> FloatArray:
        """The fitted model's own probability (what scikit-learn's ``predict_proba`` gave)."""
        z = np.clip(self.decision(x), -500.0, 500.0)
        p: FloatArray = 1.0 / (1.0 + np.exp(-z))
        return p

    def probability(self, x: FloatArray) -> FloatArray:
        """Probability on the common scale of ``suspect_p`` / ``silent_p`` / ``alert_p`` (see
        the class): monotone and continuous in the raw log-odds; 0 where :func:`vetoed`."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        z = self.decision(x)
        nominal = (self.suspect_p, self.silent_p, self.alert_p)
        out = np.empty_like(z)
        for g, sel in (("wrist", x[:, 0] >= 0.5), ("trunk", x[:, 0] < 0.5)):
            out[sel] = on_common_scale(z[sel], self.calibration[g], nominal)
        return np.where(vetoed(x), 0.0, out)


def on_common_scale(
    z: FloatArray, anchors: tuple[float, float, float], nominal: tuple[float, float, float]
) -> FloatArray:
    """Raw log-odds ``z`` as probabilities on the common scale: the three ``anchors`` (raw
    log-odds) land on the ``nominal`` probabilities, piecewise linearly in log-odds between
    them; beyond the ends the slope from the first anchor to the last (as with two anchors),
    not a segment's, which may be steep where two operating points nearly coincide."""
    lo, mid, hi = anchors
    ls, lm, la = (logit(v) for v in nominal)
    out = np.select(
        [z < lo, z < mid, z < hi],
        [
            ls + (z - lo) * (la - ls) / (hi - lo),
            ls + (z - lo) * (lm - ls) / (mid - lo),
            lm + (z - mid) * (la - lm) / (hi - mid),
        ],
        la + (z - hi) * (la - ls) / (hi - lo),
    )
    p: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(out, -500.0, 500.0)))
    return p


def vetoed(x: FloatArray) -> npt.NDArray[np.bool_]:
    """Rows that physics rules out as falls whatever the model says (see ``WEIGHTLESS_MAX_S``)."""
    x = np.atleast_2d(x)
    w: npt.NDArray[np.bool_] = x[:, FEATURES.index("weightless_s")] >= WEIGHTLESS_MAX_S
    return w


@cache
def load_model(path: Path = MODEL_PATH) -> FallModel:
    """The shipped model, read once per process."""
    return FallModel.from_dict(json.loads(path.read_text(encoding="utf-8")))


# ---- confirmation aid --------------------------------------------------------------------
WALK_WINDOW_S = 4.0  # a window this long of step-like movement counts as walking
WALK_LAG_S = (0.35, 1.3)  # step (trunk) or arm-swing (wrist) period range
WALK_MIN_CORR = 0.4  # autocorrelation of |a| at the step period
WALK_STD_G = (0.05, 1.2)  # spread of |a| while walking (less: still; more: thrashing)
WALK_MIN_WINDOWS = 2  # this many walking windows (half-overlapping): sustained, not a twitch


def up_and_about(placement: str, rate: float, samples_after_impact: Any) -> bool:
    """Whether the data after an impact clearly shows the wearer up and walking.

    Walking is sustained, periodic movement of |a|: at least ``WALK_MIN_WINDOWS`` windows of
    ``WALK_WINDOW_S`` with a clear autocorrelation peak at a step or arm-swing period and a
    moderate spread. Someone lying on the floor, still or struggling, does not produce it;
    neither does a wrist resting on a table, so a False here says little on its own (a still
    wrist after a false trigger is common in daily life). ``placement`` is accepted for the
    confirmation step's sake; the test is orientation-free, so it holds for every placement.
    """
    del placement  # the same test at the wrist and the trunk (device axes are unknown)
    a = np.asarray(samples_after_impact, dtype=np.float64).reshape(-1, 3)
    rate = float(rate)
    if not math.isfinite(rate) or rate <= 0:
        return False
    n = int(WALK_WINDOW_S * rate)
    if a.shape[0] < n or n < 8:
        return False
    mag = np.sqrt(np.einsum("ij,ij->i", a, a))
    lags = np.arange(max(1, int(WALK_LAG_S[0] * rate)), int(WALK_LAG_S[1] * rate) + 1)
    found = 0
    for s in range(0, mag.shape[0] - n + 1, n // 2):
        w = mag[s : s + n]
        sd = float(w.std())
        if not WALK_STD_G[0] <= sd <= WALK_STD_G[1]:
            continue
        d = w - w.mean()
        den = float(d @ d)
        corr = max(float(d[:-k] @ d[k:]) / den for k in lags.tolist() if k < n)
        if corr >= WALK_MIN_CORR:
            found += 1
            if found >= WALK_MIN_WINDOWS:
                return True
    return False
