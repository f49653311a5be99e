"""Train and cross-validate the fall model: ``scripts/train-fall-model`` (one command).

Reads the scenario folders ``../shared/data/falls/{mobifall,sisfall,wedafall}`` and the fall-free
everyday wrist wear ``../shared/data/realwear`` (never committed), replays every recording
through the streaming :class:`detectors.fall.FallDetector` in collect mode (so the features are
exactly those the detector computes at run time), and

1. cross-validates subject-wise: each folder's subjects are dealt into 5 folds (a subject's
   trials never straddle train and test), each realwear wearer is its own group
   (leave-one-wearer-out for it); thresholds are chosen on the training folds only, from
   inner out-of-fold predictions (nested CV);
2. prints per-folder sensitivity / specificity counting alert records, realwear alerts and
   suspicions per wear-day, beside the old hand-set detector (``fall.py`` at ``BASELINE_REV``)
   replayed through the same records: alerts by the combined rule (an unanswered suspicion
   from ``SILENT_P`` on a device that stops reporting right after it, else from ``ALERT_P``),
   alerts from ``ALERT_P`` only (a device that keeps streaming), and prompts;
3. fits the final model on all data, with thresholds chosen by the same rule on the
   cross-validated predictions, and writes ``detectors/models/fall_model.json``;
4. does 1-3 again for devices slower than ``LOW_RATE_HZ``, on every recording as a device
   sampling at ``LOW_RATES`` would have sent it (beside the first model's figures on those
   copies), and writes ``detectors/models/fall_model_low_rate.json``;
5. and for wrist devices that clip at +-2 g, on every recording as such a device sends it
   (scored as the detector routes each candidate), writing ``fall_model_clip2.json``.

scikit-learn is needed here only (the ``train`` extra); the runtime reads the JSON with numpy.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors import fall_features as FF
from detectors.fall import ALERT_P, REFRACTORY_S, SILENT_P, SUSPECT_P, FallDetector

FloatArray = npt.NDArray[np.float64]
os.environ.setdefault("OMP_NUM_THREADS", "1")  # a shared 2-core machine: one thread (sklearn)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FOLDERS = ("mobifall", "sisfall", "wedafall")
N_FOLDS = 5
SEED = 15
BASELINE_REV = "99d4b91"  # fall.py with the hand-set evidence ramps, for the comparison
WEAR_DAY_S = 24 * 3600.0
POS_WINDOW_S = 1.0  # a candidate this close to a fall's labelled impact is that fall
# Threshold rules, applied to out-of-fold predictions of the training data only:
ALERT_SPEC = 0.995  # alert: every folder's specificity at least this (margin over 0.99) ...
ALERT_REAL_PER_DAY = 0.2  # ... and realwear alerts per wear-day at most this
SUSPECT_SPEC = 0.90  # prompt: every folder's specificity (counting prompts) at least this ...
SUSPECT_REAL_PER_DAY = 24.0  # ... and at most about one prompt per hour of everyday wear
# silent: every trial folder's specificity, counting alerts by the combined rule, at least this.
# Realwear does not constrain it: a device streaming everyday wear does not stop mid-stream
# (its recordings end only at their very end; alerts there are counted and reported).
SILENT_SPEC = 0.99
SILENCE_S = 20.0  # the confirmation step's silence_s: no message this long after a suspicion
LABEL_S = 60.0  # a fall must be alerted by impact + this (the label deadline)
MIN_SILENT_GAP_LOGIT = 0.01  # the silent anchor stays strictly between the other two
NOMINAL = (SUSPECT_P, SILENT_P, ALERT_P)  # each group's operating points are mapped onto these
MIN_GAP_LOGIT = 0.25  # the prompt threshold stays at least this far (log-odds) below the alert's
GROUPS = ("trunk", "wrist")
# The low-rate model's data: every recording (all at 50 Hz) as sent at these rates; it judges
# devices below FF.LOW_RATE_HZ (FALL_MODEL.md, device rate).
LOW_RATES = (20.0, 25.0, 33.0, 40.0)
AUGMENT: tuple[str, ...] = ()  # device variants added as training copies (see ``variant``)
AUG_WEIGHT = 1.0  # sample weight of a copy (a recording's candidates weigh 1)
AUG_FOLDERS: tuple[str, ...] = (*FOLDERS, "realwear")  # whose recordings get copies
MONOTONE = {  # physics: more of these never makes a fall less likely (and repeats more likely)
    "peak_g": 1,
    "impulse_ms": 1,
    "impact_mean_g": 1,
    "angle_deg": 1,
    "drop_ms": 1,
    "repeats": -1,
    "weightless_s": -1,
}
GRID: list[float] = [
    round(float(v), 4) for v in np.r_[np.arange(0.02, 0.9, 0.01), np.arange(0.9, 0.999, 0.0025)]
]


@dataclass
class Record:
    """One trial (or one realwear wearer's whole recording) and what the detectors made of it."""

    folder: str
    device: str
    placement: str
    group: str  # subject (folder-qualified) or realwear wearer
    fall: bool
    start: float | None  # labelled impact
    deadline: float | None
    seconds: float
    t0: float = 0.0
    rate: float = 50.0
    samples: FloatArray = field(default_factory=lambda: np.zeros((0, 3)))
    cand_ts: list[float] = field(default_factory=list)  # candidate impact times
    cand_at: list[float] = field(default_factory=list)  # arrival of the deciding message
    cand_x: list[FloatArray] = field(default_factory=list)
    cand_clip2: list[bool] = field(default_factory=list)  # the +-2 g model would judge it
    old: list[tuple[float, float]] = field(default_factory=list)  # (impact_ts, detected_at)
    aug: str = ""  # "" for a recording; else the device variant this training copy simulates


def _messages(path: Path) -> dict[str, list[tuple[float, float, float, list[list[float]]]]]:
    by_dev: dict[str, list[tuple[float, float, float, list[list[float]]]]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            m = json.loads(line)
            acc = m["payload"].get("accel")
            if not acc:
                continue
            dev = m["topic"].split("/")[-2]
            by_dev.setdefault(dev, []).append(
                (float(m["t"]), float(m["payload"]["ts"]), float(acc["rate"]), acc["g"])
            )
    return by_dev


def load_records(data: Path) -> list[Record]:
    """Every trial of the three folders and each realwear wearer, with their samples."""
    out: list[Record] = []
    for folder in FOLDERS:
        d = data / "falls" / folder
        labels = {}
        for line in (d / "labels.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                lab = json.loads(line)
                labels[lab["resident"]] = (float(lab["start"]), float(lab["deadline"]))
        msgs = _messages(d / "messages.jsonl")
        with (d / "trials.csv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                fall = row["fall"] == "1"
                st, dl = labels.get(row["resident"], (None, None))
                if fall and st is None:
                    raise ValueError(f"fall trial {row['resident']} without a label")
                out.append(
                    _with_samples(
                        Record(
                            folder,
                            row["device"],
                            row["placement"],
                            f"{folder}:{row['subject']}",
                            fall,
                            st,
                            dl,
                            float(row["duration_s"]),
                        ),
                        msgs[row["device"]],
                    )
                )
    msgs = _messages(data / "realwear" / "messages.jsonl")
    for dev in sorted(msgs):
        wearer = dev[:-1] if dev.endswith("W") else dev
        rec = Record("realwear", dev, "wrist", f"realwear:{wearer}", False, None, None, 0.0)
        rec = _with_samples(rec, msgs[dev])
        rec.seconds = rec.samples.shape[0] / rec.rate
        out.append(rec)
    return out


def _with_samples(rec: Record, msgs: list[tuple[float, float, float, list[list[float]]]]) -> Record:
    msgs.sort()
    rec.t0, rec.rate = msgs[0][1], msgs[0][2]
    rec.samples = np.concatenate([np.asarray(g, dtype=np.float64).reshape(-1, 3) for *_, g in msgs])
    rec.msgs = msgs  # type: ignore[attr-defined]
    return rec


# ---- device-range and rate augmentation ---------------------------------------------------
# Real devices differ in per-axis range (+-2 g phones, +-4/8/16 g watches and belts) and rate.
# Copies of a recording as another device would have sent it: each axis clipped at the rail
# (``clip2`` = +-2 g) and/or sampled at another rate (``r25`` = 25 Hz). A copy carries its
# recording's subject, so it goes wherever that subject goes: in a training fold it is trained
# on, in a test fold it is scored (the low-rate model's copies, ``LOW_RATES``), never both.
def parse_variant(name: str) -> tuple[float | None, float | None]:
    """``clip2`` -> (2.0, None); ``r25`` -> (None, 25.0); ``clip4r25`` -> (4.0, 25.0)."""
    m = re.fullmatch(r"(?:clip(\d+(?:\.\d+)?))?(?:r(\d+(?:\.\d+)?))?", name)
    if not m or not name:
        raise ValueError(f"augmentation variant {name!r}: clipN, rN or clipNrN")
    clip = float(m.group(1)) if m.group(1) else None
    rate = float(m.group(2)) if m.group(2) else None
    if rate is not None and not rate > 0:
        raise ValueError(f"augmentation variant {name!r}: a rate must be above 0 Hz")
    return clip, rate


Message = tuple[float, float, float, list[list[float]]]  # (arrival, ts, rate, rows of g)


def resampled(msgs: list[Message], a: FloatArray, rate: float, target: float) -> list[Message]:
    """The messages as a device sampling at ``target`` Hz (below ``rate``) would have sent them.

    Each new sample is the mean of the signal over the sample period before it (the simplest
    anti-alias filter; a real accelerometer low-passes at about half its output rate), taken at
    the whole multiples of 1/``target`` s that fall within each message's time. ``a`` holds
    the messages' samples in order, contiguous at ``rate``; the first new sample is the first
    with a whole period of data before it."""
    times = np.concatenate([ts + np.arange(len(g)) / rate for _, ts, _, g in msgs])
    edges = np.r_[times - 0.5 / rate, times[-1] + 0.5 / rate]  # each sample holds its period
    integral = np.vstack([np.zeros((1, 3)), np.cumsum(a, axis=0) / rate])
    period = 1.0 / target
    first = math.ceil((edges[0] + period) * target - 1e-9)  # a whole period of data before it
    out: list[Message] = []
    for t, ts, _, g in msgs:
        end = ts + len(g) / rate
        k = np.arange(max(first, math.ceil(ts * target - 1e-9)), math.ceil(end * target - 1e-9))
        if not len(k):
            continue
        at = k / target
        hi = np.column_stack([np.interp(at, edges, integral[:, c]) for c in range(3)])
        lo = np.column_stack([np.interp(at - period, edges, integral[:, c]) for c in range(3)])
        out.append((t, float(at[0]), target, ((hi - lo) / period).round(4).tolist()))
    return out


def variant(rec: Record, name: str) -> Record | None:
    """A copy of ``rec`` as device variant ``name`` sent it; None if identical (a device that
    never reached the rail, a rate not below the recording's)."""
    clip, target = parse_variant(name)
    msgs = rec.msgs  # type: ignore[attr-defined]
    a = rec.samples
    if clip is not None and float(np.abs(a).max(initial=0.0)) <= clip:
        clip = None  # this device never reached that rail: the copy would be the recording
    if target is not None and target >= rec.rate:
        target = None
    if clip is None and target is None:
        return None
    if target is not None:  # sampled first: the rail clips what the slower device measures
        msgs = resampled(msgs, a, rec.rate, target)
        a = np.concatenate([np.asarray(g, dtype=np.float64).reshape(-1, 3) for *_, g in msgs])
    if clip is not None:
        a = np.clip(a, -clip, clip)
        sizes = np.cumsum([0, *(len(g) for *_, g in msgs)])
        msgs = [
            (t, ts, r, a[b0:b1].round(4).tolist())
            for (t, ts, r, _), b0, b1 in zip(msgs, sizes[:-1], sizes[1:], strict=True)
        ]
    out = Record(
        rec.folder,
        rec.device,
        rec.placement,
        rec.group,
        rec.fall,
        rec.start,
        rec.deadline,
        rec.seconds,
        aug=name,
    )
    return _with_samples(out, msgs)


def augment(recs: list[Record], variants: list[str]) -> list[list[Record]]:
    """Per record, its training copies (replayed), one per variant that changes it."""
    out = []
    for r in recs:
        cs = [c for c in (variant(r, v) for v in variants) if c is not None]
        for c in cs:
            replay(c, None)
        out.append(cs)
    return out


def load_baseline() -> ModuleType | None:
    """The hand-set detector as it was at ``BASELINE_REV`` (from git), or None without git."""
    try:
        src = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{BASELINE_REV}:detectors/fall.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    spec = importlib.util.spec_from_loader("anxin_fall_baseline", loader=None)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    exec(compile(src, f"fall.py@{BASELINE_REV}", "exec"), mod.__dict__)
    return mod


def replay(rec: Record, baseline: ModuleType | None) -> None:
    """Feed the record message by message: candidates (collect mode) and the old findings."""
    msgs = rec.msgs  # type: ignore[attr-defined]
    det = FallDetector(rec.placement, collect=[], collect_clip2=[])
    old = baseline.FallDetector(rec.placement) if baseline is not None else None
    assert det.collect is not None and det.collect_clip2 is not None
    for t, ts, rate, g in msgs:
        a = np.asarray(g, dtype=np.float64).reshape(-1, 3)
        n0 = len(det.collect)
        det.feed(ts, rate, a)
        for (imp, x), clip2 in zip(det.collect[n0:], det.collect_clip2[n0:], strict=True):
            rec.cand_ts.append(imp)
            rec.cand_at.append(t)
            rec.cand_x.append(x)
            rec.cand_clip2.append(clip2)
        if old is not None:
            rec.old += [(f.impact_ts, t) for f in old.feed(ts, rate, a)]


# ---- evaluation ----------------------------------------------------------------------------
def emitted(rec: Record, p: FloatArray, suspect: float) -> list[int]:
    """Suspicions the detector would raise, each as its strongest candidate: p >= suspect, a
    5 s refractory after each, within which a more probable candidate upgrades the suspicion
    (the detector emits it and the confirmation step raises the open question's probability)."""
    out: list[int] = []
    last = -1e18
    for j in np.argsort(rec.cand_ts, kind="stable").tolist():
        if p[j] < suspect:
            continue
        if rec.cand_ts[j] >= last + REFRACTORY_S:
            out.append(j)
        elif p[j] > p[out[-1]]:
            out[-1] = j  # an upgrade: the same suspicion, stronger evidence
        else:
            continue
        last = rec.cand_ts[j]
    return out


@dataclass
class Tally:
    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0
    real_alerts: int = 0
    real_seconds: float = 0.0

    @property
    def sens(self) -> float:
        return self.tp / max(1, self.tp + self.fn)

    @property
    def spec(self) -> float:
        return self.tn / max(1, self.tn + self.fp)

    @property
    def per_day(self) -> float:
        return self.real_alerts / max(1e-9, self.real_seconds) * WEAR_DAY_S


def group_of(rec: Record) -> str:
    """Placement group with its own operating points (a pendant would be trunk)."""
    return "wrist" if rec.placement == "wrist" else "trunk"


def _in_window(rec: Record, at: float) -> bool:
    assert rec.start is not None and rec.deadline is not None
    return rec.start - 2.0 <= at <= rec.deadline


def tally(recs: list[Record], alert_at: list[list[float]]) -> dict[str, Tally]:
    """Score per folder, as score.py does: ``alert_at`` = each record's alert arrival times."""
    out: dict[str, Tally] = {}
    for rec, ats in zip(recs, alert_at, strict=True):
        t = out.setdefault(rec.folder, Tally())
        if rec.folder == "realwear":
            t.real_alerts += len(ats)
            t.real_seconds += rec.seconds
        elif rec.fall:
            if any(_in_window(rec, a) for a in ats):
                t.tp += 1
            else:
                t.fn += 1
        elif ats:
            t.fp += 1
        else:
            t.tn += 1
    return out


Thresholds = dict[str, tuple[float, float, float]]  # group -> (suspect, silent, alert), raw p


def silence_at(rec: Record, j: int) -> float | None:
    """When the silence path would confirm suspicion ``j`` of ``rec``, or None if too late.

    The recording's last message is where the device stops reporting; the confirmation step
    confirms ``SILENCE_S`` after it, which counts only if that is within the label deadline
    (impact + ``LABEL_S``: a fall's label, else the candidate's own impact). A suspicion long
    before the end of a recording sees the device keep streaming: not this path."""
    last = float(rec.msgs[-1][0])  # type: ignore[attr-defined]
    limit = rec.deadline if rec.fall and rec.deadline is not None else rec.cand_ts[j] + LABEL_S
    at = last + SILENCE_S
    return at if at <= limit else None


def record_alerts(
    recs: list[Record], probs: list[FloatArray], thr: Thresholds
) -> tuple[list[list[float]], list[list[float]], list[list[float]], list[list[float]]]:
    """Per record, arrival times of: suspicions; alerts from the alert threshold only (the
    no-answer path, a device that keeps streaming); alerts by the combined rule (a suspicion at
    or above ``silent`` confirmed by the device going silent right after it, else the no-answer
    path at ``alert``); and the combined rule's alerts that came by the silence path."""
    sus, ale, comb, sil = [], [], [], []
    for rec, p in zip(recs, probs, strict=True):
        suspect, silent, alert = thr[group_of(rec)]
        em = emitted(rec, p, suspect)
        sus.append([rec.cand_at[j] for j in em])
        ale.append([rec.cand_at[j] for j in em if p[j] >= alert])
        c, si = [], []
        for j in em:
            at = silence_at(rec, j) if p[j] >= silent else None
            if at is not None:
                c.append(at)
                si.append(at)
            elif p[j] >= alert:
                c.append(rec.cand_at[j])
        comb.append(c)
        sil.append(si)
    return sus, ale, comb, sil


def _fast_maxima(recs: list[Record], probs: list[FloatArray]) -> tuple[FloatArray, ...]:
    """For threshold search: per record the largest p that would count (no refractory)."""
    hit, adl_max, real_p, real_s = [], [], [], 0.0
    folders = []
    for rec, p in zip(recs, probs, strict=True):
        if rec.folder == "realwear":
            real_p.append(p)
            real_s += rec.seconds
            continue
        folders.append(FOLDERS.index(rec.folder))
        if rec.fall:
            ok = [p[j] for j in range(len(p)) if _in_window(rec, rec.cand_at[j])]
            hit.append(max(ok, default=0.0))
            adl_max.append(np.nan)
        else:
            hit.append(np.nan)
            adl_max.append(float(p.max()) if len(p) else 0.0)
    rp = np.concatenate(real_p) if real_p else np.zeros(0)
    return np.array(hit), np.array(adl_max), np.array(folders), rp, np.array([real_s])


def _sigmoid(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-z)))


def choose_thresholds(recs: list[Record], probs: list[FloatArray]) -> Thresholds:
    """Each placement group's (suspect, silent, alert) thresholds, from out-of-fold
    predictions."""
    out = {}
    for g in GROUPS:
        sel = [i for i, r in enumerate(recs) if group_of(r) == g]
        rs, ps = [recs[i] for i in sel], [probs[i] for i in sel]
        s, a = _thresholds(rs, ps)
        s = min(s, _sigmoid(FF.logit(a) - MIN_GAP_LOGIT))
        out[g] = (float(s), _silent_threshold(rs, ps, s, a), float(a))
    return out


def _silent_threshold(recs: list[Record], probs: list[FloatArray], s: float, a: float) -> float:
    """Smallest threshold strictly between ``s`` and ``a`` at which every trial folder's
    specificity, counting alerts by the combined rule, is at least ``SILENT_SPEC``; kept at
    least ``MIN_SILENT_GAP_LOGIT`` from either end (the calibration anchors must increase)."""
    lo, hi = FF.logit(s) + MIN_SILENT_GAP_LOGIT, FF.logit(a) - MIN_SILENT_GAP_LOGIT
    # per ADL trial: an alert from the alert threshold anyway, and the largest p of a
    # suspicion the silence path could confirm (emission does not depend on ``silent``)
    fol, always, sil_max = [], [], []
    for rec, p in zip(recs, probs, strict=True):
        if rec.fall or rec.folder == "realwear":
            continue
        em = emitted(rec, p, s)
        fol.append(FOLDERS.index(rec.folder))
        always.append(any(p[j] >= a for j in em))
        sil_max.append(max((float(p[j]) for j in em if silence_at(rec, j) is not None), default=-1))
    f, al, sm = np.array(fol, dtype=np.int64), np.array(always, dtype=bool), np.array(sil_max)

    def ok(t: float) -> bool:
        false = al | (sm >= t)
        return all(
            float(np.mean(~false[f == k])) >= SILENT_SPEC
            for k in range(len(FOLDERS))
            if (f == k).any()
        )

    grid = [t for t in GRID if _sigmoid(lo) <= t <= _sigmoid(hi)]
    return next((float(t) for t in grid if ok(t)), _sigmoid(hi))


def _thresholds(recs: list[Record], probs: list[FloatArray]) -> tuple[float, float]:
    """Smallest thresholds meeting the rules above (largest sensitivity)."""
    _, adl, fol, rp, rs = _fast_maxima(recs, probs)
    days = max(1e-9, float(rs[0])) / WEAR_DAY_S

    def ok(t: float, spec: float, per_day: float) -> bool:
        for k in range(len(FOLDERS)):
            a = adl[(fol == k) & ~np.isnan(adl)]
            if a.size and float(np.mean(a < t)) < spec:
                return False
        return not (rs[0] > 0 and float(np.count_nonzero(rp >= t)) / days > per_day)

    alert = next((float(t) for t in GRID if ok(t, ALERT_SPEC, ALERT_REAL_PER_DAY)), 0.999)
    suspect = next((float(t) for t in GRID if ok(t, SUSPECT_SPEC, SUSPECT_REAL_PER_DAY)), alert)
    return min(suspect, alert), alert


# ---- models --------------------------------------------------------------------------------
def _fit(kind: str, x: FloatArray, y: npt.NDArray[np.int64], w: FloatArray) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        m = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        m.fit(x, y, logisticregression__sample_weight=w)
        return m
    m = HistGradientBoostingClassifier(
        max_iter=300,
        learning_rate=0.08,
        max_depth=2,
        min_samples_leaf=20,
        l2_regularization=1.0,
        monotonic_cst=[MONOTONE.get(f, 0) for f in FF.FEATURES],
        random_state=SEED,
    )
    m.fit(x, y, sample_weight=w)
    return m


def _xyw(
    recs: list[Record], aug_weight: float = 1.0
) -> tuple[FloatArray, npt.NDArray[np.int64], FloatArray]:
    """Training rows: positives = candidates at a fall's impact; fall trials' other candidates
    (stumbles before, bounces and rolling after) are left out; everything else negative.
    Positives are weighted to half the negatives' total. Augmented copies (``Record.aug``)
    count ``aug_weight`` each."""
    xs, ys, ws = [], [], []
    for rec in recs:
        for imp, x in zip(rec.cand_ts, rec.cand_x, strict=True):
            if rec.fall:
                assert rec.start is not None
                if abs(imp - rec.start) > POS_WINDOW_S:
                    continue
                ys.append(1)
            else:
                ys.append(0)
            xs.append(x)
            ws.append(aug_weight if rec.aug else 1.0)
    y = np.array(ys, dtype=np.int64)
    w = np.array(ws)
    if y.any() and (~y.astype(bool)).any():
        w[y == 1] *= w[y == 0].sum() / w[y == 1].sum() * 0.5
    return np.array(xs), y, w


def _predict(model: Any, recs: list[Record]) -> list[FloatArray]:
    """Probabilities as the detector will use them (the physics veto applied)."""
    out = []
    for r in recs:
        if not r.cand_x:
            out.append(np.zeros(0))
            continue
        x = np.array(r.cand_x)
        out.append(np.where(FF.vetoed(x), 0.0, model.predict_proba(x)[:, 1]))
    return out


def folds_of(recs: list[Record]) -> dict[str, int]:
    """Group -> fold: each folder's subjects dealt into N_FOLDS; realwear wearers one each."""
    rng = np.random.default_rng(SEED)
    out: dict[str, int] = {}
    for folder in FOLDERS:
        groups = sorted({r.group for r in recs if r.folder == folder})
        for k, g in enumerate(rng.permutation(groups).tolist()):
            out[g] = k % N_FOLDS
    wearers = sorted({r.group for r in recs if r.folder == "realwear"})
    for k, g in enumerate(wearers):
        out[g] = k % N_FOLDS
    return out


def cross_validate(
    kind: str,
    recs: list[Record],
    fold: dict[str, int],
    copies: list[list[Record]] | None = None,
    aug_weight: float = 1.0,
    scored: list[list[Record]] | None = None,
) -> tuple[list[FloatArray], list[Thresholds], list[int]]:
    """Nested subject-wise CV: out-of-fold probabilities, per-fold thresholds, record folds.

    ``copies[i]`` (augmentation) join the training data whenever record ``i`` does, and only
    then: a test subject's copies are never trained on. ``scored[i]``: copies of record ``i``
    that are predicted with it when it is tested (another device's view of a test subject),
    their probabilities returned after the records' own, in the order of ``scored``."""
    cp = copies if copies is not None else [[] for _ in recs]
    sc = scored if scored is not None else [[] for _ in recs]
    rf = [fold[r.group] for r in recs]

    def fit(idx: list[int]) -> Any:
        return _fit(kind, *_xyw([x for i in idx for x in (recs[i], *cp[i])], aug_weight))

    probs: list[FloatArray] = [np.zeros(0)] * len(recs)
    extra: list[list[FloatArray]] = [[] for _ in recs]
    thr: list[Thresholds] = []
    for k in range(N_FOLDS):
        train = [i for i in range(len(recs)) if rf[i] != k]
        inner: list[FloatArray] = [np.zeros(0)] * len(recs)
        for j in range(N_FOLDS):
            if j == k:
                continue
            m = fit([i for i in train if rf[i] != j])
            held = [i for i in train if rf[i] == j]
            for i, p in zip(held, _predict(m, [recs[i] for i in held]), strict=True):
                inner[i] = p
        thr.append(choose_thresholds([recs[i] for i in train], [inner[i] for i in train]))
        m = fit(train)
        test = [i for i in range(len(recs)) if rf[i] == k]
        for i, p in zip(test, _predict(m, [recs[i] for i in test]), strict=True):
            probs[i] = p
        for i in test:
            extra[i] = _predict(m, sc[i])
    extra_rf = [k for k, cs in zip(rf, sc, strict=True) for _ in cs]
    return probs + [p for ps in extra for p in ps], thr, rf + extra_rf


def leave_one_dataset_out(
    kind: str,
    recs: list[Record],
    fold: dict[str, int],
    copies: list[list[Record]] | None = None,
    aug_weight: float = 1.0,
) -> dict[str, tuple[dict[str, Tally], dict[str, Tally]]]:
    """Train on the other two trial folders and realwear (with their copies), test on the
    held-out folder: data nobody tuned to. Thresholds come, as in the nested CV, from inner
    subject-wise out-of-fold predictions of the training folders only (so the wrist's, with
    WEDA-FALL held out, from realwear alone). Per held-out folder: (combined rule, ALERT_P
    only) tallies."""
    cp = copies if copies is not None else [[] for _ in recs]
    rf = [fold[r.group] for r in recs]

    def fit(idx: list[int]) -> Any:
        return _fit(kind, *_xyw([x for i in idx for x in (recs[i], *cp[i])], aug_weight))

    out = {}
    for held_out in FOLDERS:
        train = [i for i, r in enumerate(recs) if r.folder != held_out]
        inner: list[FloatArray] = [np.zeros(0)] * len(recs)
        for j in range(N_FOLDS):
            held = [i for i in train if rf[i] == j]
            m = fit([i for i in train if rf[i] != j])
            for i, p in zip(held, _predict(m, [recs[i] for i in held]), strict=True):
                inner[i] = p
        thr = choose_thresholds([recs[i] for i in train], [inner[i] for i in train])
        m = fit(train)
        test = [i for i, r in enumerate(recs) if r.folder == held_out]
        trs = [recs[i] for i in test]
        _, ale, comb, _ = record_alerts(trs, _predict(m, trs), thr)
        out[held_out] = (tally(trs, comb), tally(trs, ale))
    return out


def cv_alerts(
    recs: list[Record], probs: list[FloatArray], thr: list[Thresholds], rf: list[int]
) -> tuple[list[list[float]], list[list[float]], list[list[float]], list[list[float]]]:
    """``record_alerts`` of each record under its own test fold's thresholds."""
    out: tuple[list[list[float]], ...] = ([], [], [], [])
    for rec, p, k in zip(recs, probs, rf, strict=True):
        for acc, got in zip(out, record_alerts([rec], [p], thr[k]), strict=True):
            acc += got
    return out[0], out[1], out[2], out[3]


# Plausible ranges (hand-set, not from the data) for synthetic feature rows whose sklearn
# probabilities are stored with the model, so a test can check the numpy inference on them.
SYNTH_RANGES = {
    "wrist": (0.0, 1.0),
    "peak_g": (1.6, 8.0),
    "impulse_ms": (0.0, 8.0),
    "impact_mean_g": (1.0, 6.0),
    "rise_g": (0.0, 6.0),
    "width_s": (0.0, 1.0),
    "freefall_g": (0.0, 1.2),
    "dip_g": (0.1, 1.2),
    "drop_ms": (0.0, 3.0),
    "weightless_s": (0.0, 0.5),
    "angle_deg": (0.0, 180.0),
    "ref_angle_deg": (0.0, 180.0),
    "turn_s": (0.0, 3.0),
    "post_motion_g": (0.0, 1.5),
    "post_still_frac": (0.0, 1.0),
    "post_g": (0.7, 1.3),
    "post_peak_ratio": (0.1, 1.5),
    "settle_g": (0.0, 1.0),
    "pre_motion_g": (0.0, 1.5),
    "pre_range_g": (0.0, 0.8),
    "pre_peak_ratio": (0.0, 1.5),
    "hi_s": (0.0, 1.0),
    "hi_full_s": (0.0, 0.5),
    "repeats": (0.0, 8.0),
}


def synthetic_rows(n: int = 64) -> FloatArray:
    rng = np.random.default_rng(SEED)
    lo, hi = np.array([SYNTH_RANGES[f] for f in FF.FEATURES]).T
    x: FloatArray = rng.uniform(lo, hi, size=(n, len(FF.FEATURES)))
    x[:, 0] = np.round(x[:, 0])
    x[:, -1] = np.round(x[:, -1])
    return x


# ---- export --------------------------------------------------------------------------------
def export(kind: str, model: Any, thr: Thresholds, meta: dict[str, Any]) -> dict[str, Any]:
    """The fitted model as JSON for :class:`detectors.fall_features.FallModel`."""
    d: dict[str, Any] = {"kind": kind, "features": list(FF.FEATURES)}
    if kind == "logistic":
        sc, lr = model.steps[0][1], model.steps[-1][1]
        d.update(
            mean=sc.mean_.tolist(),
            scale=sc.scale_.tolist(),
            coef=lr.coef_[0].tolist(),
            intercept=float(lr.intercept_[0]),
        )
    else:
        d["kind"] = "trees"
        d["baseline"] = float(np.ravel(model._baseline_prediction)[0])
        trees = []
        for (pred,) in model._predictors:
            n = pred.nodes
            trees.append(
                {
                    "feature": n["feature_idx"].tolist(),
                    "threshold": [float(v) for v in n["num_threshold"]],
                    "left": n["left"].tolist(),
                    "right": n["right"].tolist(),
                    "missing_left": [bool(v) for v in n["missing_go_to_left"]],
                    "leaf": [bool(v) for v in n["is_leaf"]],
                    "value": [float(v) for v in n["value"]],
                }
            )
        d["trees"] = trees
    xs = synthetic_rows()
    d["check"] = {"x": xs.round(6).tolist(), "p": model.predict_proba(xs.round(6))[:, 1].tolist()}
    d.update(
        suspect_p=NOMINAL[0],
        silent_p=NOMINAL[1],
        alert_p=NOMINAL[2],
        calibration={g: [FF.logit(v) for v in t] for g, t in thr.items()},
        meta=meta,
    )
    return d


# ---- report --------------------------------------------------------------------------------
def _row(name: str, t: dict[str, Tally]) -> str:
    cells = [f"{name:<34}"]
    for f in FOLDERS:
        x = t.get(f, Tally())
        cells.append(f"{x.sens:6.3f} {x.spec:6.3f} ({x.fn:2d} FN {x.fp:2d} FP)")
    r = t.get("realwear", Tally())
    cells.append(f"{r.real_alerts:4d} = {r.per_day:7.1f}/day")
    return " | ".join(cells)


def _header() -> str:
    cells = [f"{'detector':<34}"] + [f"{f:<27}" for f in FOLDERS] + ["realwear (1.73 h)"]
    sub = [" " * 34] + [f"{'sens':>6} {'spec':>6}{'':15}" for _ in FOLDERS] + ["alerts"]
    return " | ".join(cells) + "\n" + " | ".join(sub)


def up_and_about_report(
    recs: list[Record], probs: list[FloatArray], thr: list[Thresholds], rf: list[int]
) -> str:
    """How often ``up_and_about`` says "up" after falls, and after ADL / realwear suspicions."""
    lines = []
    falls = [r for r in recs if r.fall]
    up_f = []
    for r in falls:
        assert r.start is not None
        i0 = round((r.start - r.t0) * r.rate)
        up_f.append(FF.up_and_about(r.placement, r.rate, r.samples[i0:]))
    post = [(r.seconds - ((r.start or 0) - r.t0)) for r in falls]
    lines.append(
        f"falls: up_and_about True in {sum(up_f)}/{len(up_f)} "
        f"(post-impact data median {np.median(post):.1f} s, min {min(post):.1f} s)"
    )
    for label, sel in (
        ("ADL trials", lambda r: not r.fall and r.folder != "realwear"),
        ("realwear", lambda r: r.folder == "realwear"),
    ):
        n = up = 0
        n60 = up60 = 0
        for r, p, k in zip(recs, probs, rf, strict=True):
            if not sel(r):
                continue
            for j in emitted(r, p, thr[k][group_of(r)][0]):
                i0 = round((r.cand_ts[j] - r.t0) * r.rate)
                seg = r.samples[i0 : i0 + int(60 * r.rate)]
                n += 1
                up += FF.up_and_about(r.placement, r.rate, seg)
                if seg.shape[0] >= 60 * r.rate - 1:
                    n60 += 1
                    up60 += FF.up_and_about(r.placement, r.rate, seg)
        lines.append(
            f"{label}: suspicions (cross-validated p >= SUSPECT_P) {n}, up_and_about True "
            f"within 60 s after {up}"
            + (f" ({up60}/{n60} of those with a full 60 s)" if n60 else "")
        )
    # every ADL trial's most fall-like candidate, whatever its probability: more cases
    n = up = 0
    for r, p in zip(recs, probs, strict=True):
        if r.fall or r.folder == "realwear" or not len(p):
            continue
        i0 = round((r.cand_ts[int(np.argmax(p))] - r.t0) * r.rate)
        n += 1
        up += FF.up_and_about(r.placement, r.rate, r.samples[i0:])
    lines.append(f"ADL trials, most fall-like candidate of each: up_and_about True after {up}/{n}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=FF.MODEL_PATH)
    ap.add_argument("--low-out", type=Path, default=FF.LOW_RATE_MODEL_PATH)
    ap.add_argument("--clip2-out", type=Path, default=FF.CLIP2_MODEL_PATH)
    ap.add_argument("--kinds", default="logistic,trees", help="model kinds to compare")
    ap.add_argument(
        "--augment",
        default=",".join(AUGMENT),
        help="training copies as other devices: clipN (per-axis +-N g), rN (N Hz), comma list",
    )
    ap.add_argument("--aug-weight", type=float, default=AUG_WEIGHT, help="weight of a copy")
    ap.add_argument("--aug-folders", default=",".join(AUG_FOLDERS), help="folders to augment")
    ap.add_argument("--lodo", action="store_true", help="also leave one dataset out")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    recs = load_records(args.data)
    baseline = load_baseline()
    for r in recs:
        replay(r, baseline)
    ncand = sum(len(r.cand_ts) for r in recs)
    print(f"{len(recs)} records, {ncand} candidates ({time.monotonic() - t0:.0f} s)")
    cand_recall = [
        any(abs(c - (r.start or 0)) <= POS_WINDOW_S for c in r.cand_ts) for r in recs if r.fall
    ]
    print(f"candidate-stage recall: {sum(cand_recall)}/{len(cand_recall)} falls")
    variants = [v for v in args.augment.split(",") if v]
    aug_folders = set(args.aug_folders.split(","))
    copies = augment(recs, variants)
    copies = [c if r.folder in aug_folders else [] for r, c in zip(recs, copies, strict=True)]
    n_copies = {
        f: sum(len(c) for r, c in zip(recs, copies, strict=True) if r.folder == f)
        for f in (*FOLDERS, "realwear")
    }
    print(
        f"augmentation {variants or 'none'} (weight {args.aug_weight:g}), training copies: "
        f"{n_copies} ({time.monotonic() - t0:.0f} s)"
    )
    fold = folds_of(recs)
    # every recording as devices sampling below LOW_RATE_HZ would have sent it (FALL_MODEL.md,
    # device rate): scored against the model of the recordings' own rate, and the data of the
    # low-rate model
    low_copies = augment(recs, [f"r{r:g}" for r in LOW_RATES])
    # ... and as a device clipping at +-2 g (a recording that never reaches 2 g is its own)
    clip_copies = [c[0] if c else r for r, c in zip(recs, augment(recs, ["clip2"]), strict=True)]
    low_seen: dict[str, tuple[list[FloatArray], list[int]]] = {}
    print(_header())
    if baseline is not None:
        old = [[at for _, at in r.old] for r in recs]
        print(_row(f"old hand-set ({BASELINE_REV})", tally(recs, old)))
    results = {}
    for kind in args.kinds.split(","):
        seen = [[*lc, cc] for lc, cc in zip(low_copies, clip_copies, strict=True)]
        probs, thr, rf = cross_validate(kind, recs, fold, copies, args.aug_weight, seen)
        low_seen[kind] = (probs[len(recs) :], rf[len(recs) :])
        probs, rf = probs[: len(recs)], rf[: len(recs)]
        sus, ale, comb, sil = cv_alerts(recs, probs, thr, rf)
        ta, ts, tc = tally(recs, ale), tally(recs, sus), tally(recs, comb)
        print(_row(f"{kind}: alerts, combined rule", tc))
        print(_row(f"{kind}: alerts (p>=ALERT_P only)", ta))
        print(_row(f"{kind}: suspicions (prompts)", ts))
        n_sil = {
            f: sum(len(x) for r, x in zip(recs, sil, strict=True) if r.folder == f)
            for f in (*FOLDERS, "realwear")
        }
        print(f"  alerts by the silence path: {n_sil}")
        for g in GROUPS:
            print(
                f"  {g} fold thresholds (suspect, silent, alert): "
                + ", ".join(f"({t[g][0]:.3f}, {t[g][1]:.3f}, {t[g][2]:.4f})" for t in thr)
            )
        ok = all(tc[f].sens >= 0.95 and tc[f].spec >= 0.99 for f in FOLDERS)
        score = (ok, ta["realwear"].per_day <= 0.2, sum(ta[f].sens + ta[f].spec for f in FOLDERS))
        results[kind] = (score, probs, ta, thr, rf, tc)
    best = max(results, key=lambda k: results[k][0])
    _, probs, _, thr, rf, _ = results[best]
    final = choose_thresholds(recs, probs)
    print(
        f"chosen: {best}; operating points from its cross-validated predictions (raw p): "
        + ", ".join(
            f"{g} suspect {s:.4f} silent {m:.4f} alert {a:.4f}" for g, (s, m, a) in final.items()
        )
        + f"; mapped onto SUSPECT_P={NOMINAL[0]} SILENT_P={NOMINAL[1]} ALERT_P={NOMINAL[2]}"
    )
    print(up_and_about_report(recs, probs, thr, rf))
    if args.lodo:
        print("leave one dataset out (train on the other two and realwear, test on this one):")
        for f, (tc, ta) in leave_one_dataset_out(best, recs, fold, copies, args.aug_weight).items():
            print(
                f"  {f:<9} combined rule {tc[f].sens:.3f} / {tc[f].spec:.3f} "
                f"({tc[f].fn} FN {tc[f].fp} FP); ALERT_P only {ta[f].sens:.3f} / {ta[f].spec:.3f}"
            )
    model = _fit(
        best,
        *_xyw([x for r, c in zip(recs, copies, strict=True) for x in (r, *c)], args.aug_weight),
    )

    def cv_meta(t: dict[str, Tally]) -> dict[str, Any]:
        return {
            f: {"sens": round(x.sens, 4), "spec": round(x.spec, 4)}
            for f, x in t.items()
            if f != "realwear"
        } | {"realwear_alerts_per_day": round(t["realwear"].per_day, 3)}

    meta = {
        "trained_on": [*FOLDERS, "realwear"],
        "records": len(recs),
        "candidates": ncand,
        "cv": cv_meta(results[best][2]),
        "cv_combined": cv_meta(results[best][5]),
    }
    if variants:
        meta["augment"] = {
            "variants": variants,
            "weight": args.aug_weight,
            "folders": sorted(aug_folders),
        }
    d = export(best, model, final, meta)
    _write(args.out, d, model, recs)
    print(f"wrote {args.out} ({time.monotonic() - t0:.0f} s)")

    # the low-rate model: trained and chosen on the copies at LOW_RATES alone, by the same
    # protocol (a copy is its recording's subject: nested subject-wise CV)
    flat = [c for cs in low_copies for c in cs]
    print(f"device rate: {len(flat)} copies at {', '.join(f'{r:g}' for r in LOW_RATES)} Hz")
    seen_all, seen_rf_all = low_seen[best]
    # each record's scored copies in order: its low-rate copies (a rate not below the
    # recording's own makes none), then its clip2 copy
    ends = list(itertools.accumulate(len(lc) + 1 for lc in low_copies))
    low_at = [
        j
        for end, lc in zip(ends, low_copies, strict=True)
        for j in range(end - 1 - len(lc), end - 1)
    ]
    seen_p, seen_rf = [seen_all[i] for i in low_at], [seen_rf_all[i] for i in low_at]
    clip_seen = [seen_all[end - 1] for end in ends]
    low_p, low_thr, low_rf = cross_validate(best, flat, fold)
    low_rows: dict[str, dict[str, Tally]] = {}
    for rate in LOW_RATES:
        sel = [i for i, c in enumerate(flat) if c.rate == rate]
        sub = [flat[i] for i in sel]
        for label, p, thr_k, rf_k in (
            ("the recordings' model", seen_p, thr, seen_rf),
            ("low-rate model", low_p, low_thr, low_rf),
        ):
            _, ale, comb, _ = cv_alerts(sub, [p[i] for i in sel], thr_k, [rf_k[i] for i in sel])
            print(_row(f"{rate:g} Hz, {label}, combined", tally(sub, comb)))
            print(_row(f"{rate:g} Hz, {label}, ALERT_P", tally(sub, ale)))
        low_rows[f"{rate:g}"] = tally(sub, comb)
    low_meta = {
        "rates_hz": list(LOW_RATES),
        "used_below_hz": FF.LOW_RATE_HZ,
        "cv_combined": {rate: cv_meta(t) for rate, t in low_rows.items()},
    }
    _fit_and_write("low-rate", best, flat, low_p, low_meta, args.low_out)
    print(f"({time.monotonic() - t0:.0f} s)")

    # the +-2 g model: trained and chosen on every recording as a +-2 g device sends it; it
    # judges the wrist candidates of a device whose readings say it clips at 2 g
    print("device range: every recording as a device clipping each axis at +-2 g")
    cp, cthr, _ = cross_validate(best, clip_copies, fold, scored=[[r] for r in recs])
    clip_p, clip_on_rec = cp[: len(recs)], cp[len(recs) :]
    nominal = [dict.fromkeys(GROUPS, NOMINAL)] * N_FOLDS
    clip_rows: dict[str, dict[str, Tally]] = {}
    for label, rs, p_rec, p_clip in (
        ("+-2 g copies", clip_copies, clip_seen, clip_p),
        ("the recordings", recs, probs, clip_on_rec),
    ):
        routed = [
            routed_scale(r, pr, pc, thr[k], cthr[k])
            for r, pr, pc, k in zip(rs, p_rec, p_clip, rf, strict=True)
        ]
        for name, ps in (
            (
                "the recordings' model",
                [on_scale(r, p, thr[k]) for r, p, k in zip(rs, p_rec, rf, strict=True)],
            ),
            ("+-2 g model at a 2 g wrist", routed),
        ):
            _, ale, comb, _ = cv_alerts(rs, ps, nominal, rf)
            print(_row(f"{label}, {name}, combined", tally(rs, comb)))
            print(_row(f"{label}, {name}, ALERT_P", tally(rs, ale)))
            clip_rows[f"{label}, {name}"] = tally(rs, comb)
    clip_meta = {
        "device": "each axis clipped at +-2 g",
        "used_for": "wrist devices whose largest reading on an axis lies within RAIL2_MG",
        "rail2_mg": list(FF.RAIL2_MG),
        "cv_combined": {k: cv_meta(t) for k, t in clip_rows.items()},
    }
    _fit_and_write("+-2 g", best, clip_copies, clip_p, clip_meta, args.clip2_out)
    print(f"({time.monotonic() - t0:.0f} s)")
    return 0


def _fit_and_write(
    name: str,
    kind: str,
    recs: list[Record],
    probs: list[FloatArray],
    meta: dict[str, Any],
    path: Path,
) -> None:
    """A device model's final fit on all of ``recs`` (copies of every recording), its
    operating points chosen by the same rule on their cross-validated ``probs``."""
    final = choose_thresholds(recs, probs)
    print(
        f"{name} operating points (raw p): "
        + ", ".join(f"{g} {s:.4f} {m:.4f} {a:.4f}" for g, (s, m, a) in final.items())
    )
    model = _fit(kind, *_xyw(recs))
    meta = {"trained_on": [*FOLDERS, "realwear"], "records": len(recs), **meta}
    _write(path, export(kind, model, final, meta), model, recs)
    print(f"wrote {path}")


def on_scale(rec: Record, p: FloatArray, thr: Thresholds) -> FloatArray:
    """Raw probabilities of one model put on the common scale by its operating points (as
    ``FallModel.probability`` does with its calibration anchors), so candidates judged by
    different models compare."""
    s, m, a = (FF.logit(v) for v in thr[group_of(rec)])
    z = np.array([FF.logit(float(v)) for v in p])
    return np.where(p <= 0.0, 0.0, FF.on_common_scale(z, (s, m, a), NOMINAL))


def routed_scale(
    rec: Record, p_rec: FloatArray, p_clip: FloatArray, thr: Thresholds, clip_thr: Thresholds
) -> FloatArray:
    """Each candidate on the common scale from the model the detector would use for it: the
    +-2 g model where the device's readings said "clips at 2 g" (``cand_clip2``)."""
    if not len(p_rec):
        return p_rec
    mine, clip = on_scale(rec, p_rec, thr), on_scale(rec, p_clip, clip_thr)
    return np.where(np.array(rec.cand_clip2, dtype=bool), clip, mine)


def _write(path: Path, d: dict[str, Any], model: Any, recs: list[Record]) -> None:
    """Write an exported model after checking it reproduces scikit-learn's probabilities."""
    fm = FF.FallModel.from_dict(d)
    x = np.array([x for r in recs for x in r.cand_x])
    err = float(np.abs(fm.raw_probability(x) - model.predict_proba(x)[:, 1]).max())
    print(f"exported model max |p - sklearn p| = {err:.2e}")
    if err > 1e-6:
        raise SystemExit("export mismatch")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(d, separators=(",", ":")) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
