"""How hard is a day of wear? Statistics of an accelerometer stream, per hour.

Pure numpy on samples in g: peaks of |a| above 2 g and 3 g, the distribution of jerk
(|Δa|/Δt between consecutive samples, g/s), hard movements (jerk above ``HARD_JERK_GS``),
orientation changes (the gravity direction turning more than 45° and staying there for more
than 1 s) and the fraction of still time. :class:`StreamStats` takes a device's chunks one at a
time (each with its timestamp and rate), so a whole scenario folder is read line by line
(:func:`folder_stats`); ``python -m simulators.wearstats DIR [DIR...]`` prints a table.

Two denominators: hours of *streamed* accelerometer data (the samples actually there) and hours
of *wear* (the time a worn device was reporting: gaps between its accel messages count up to
``WEAR_GAP_S``). A recording streams all the time, so both are the same; a generated scenario
streams activities plus a short quiet chunk per report, so per streamed hour its figures are
those of its activities and per hour of wear those of a whole day.

Falls are left out: accel in ``[start - 15 s, start + 60 s]`` of a ``fall`` label of the
device's resident is skipped (with ``exclude_falls``), so a fall-trial folder leaves only its
daily-living trials and a generated day only its daily living.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import orjson
import yaml

Arr = npt.NDArray[np.float64]

PEAK_G = (2.0, 3.0)  # |a| thresholds for peaks
PEAK_GAP_S = 0.5  # a rising crossing within this of the last counted one is the same peak
HARD_JERK_GS = 50.0  # g/s: a hand stopped on a table, a clap, a hard wave (one event per 0.5 s)
ORIENT_DEG = 45.0  # a change of the gravity direction by more than this...
ORIENT_HOLD_S = 1.0  # ...that stays (within ORIENT_TOL_DEG) for more than this
ORIENT_TOL_DEG = 30.0
ORIENT_BLOCK_S = 0.5  # gravity direction: mean of a over blocks this long (a knock barely moves it)
STILL_STD_G = 0.013  # a 1 s window whose every axis moves less than this (sd) is still
WEAR_GAP_S = 130.0  # longer gaps between a worn device's messages are not wear
BOUT_MIN_S = 5.0  # --bouts: contiguous runs at least this long
FALL_WINDOW_S = (15.0, 60.0)  # before / after a fall label's start: not daily living
JERK_BINS = np.concatenate([[0.0], np.geomspace(0.01, 1e4, 601)])  # g/s histogram edges
JERK_PCTS = (50.0, 90.0, 99.0, 99.9)


@dataclass
class StreamStats:
    """Running statistics of one device's accelerometer stream (feed chunks in time order)."""

    samples: int = 0
    streamed_s: float = 0.0
    wear_s: float = 0.0
    peaks: dict[float, int] = field(default_factory=lambda: dict.fromkeys(PEAK_G, 0))
    hard_jerks: int = 0
    orient_changes: int = 0
    still_s: float = 0.0
    windows_s: float = 0.0
    jerk_hist: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(JERK_BINS.size - 1, dtype=np.int64)
    )
    rates: set[float] = field(default_factory=set)
    # stream state
    _last_event: dict[tuple[str, float], float] = field(default_factory=dict)
    _hard_prev: bool = False
    _prev: Arr | None = None  # last sample of the previous chunk
    _prev_end: float = -math.inf  # time one sample after it
    _prev_ts: float | None = None
    _ref: tuple[float, float, float] | None = None
    _cand: tuple[float, float, float] | None = None
    _cand_t: float = 0.0

    def add(self, ts: float, rate: float, g: Arr) -> None:
        """One chunk: ``g`` N x 3 (g) at ``rate`` Hz, first sample at ``ts`` (epoch s)."""
        g = np.asarray(g, dtype=np.float64).reshape(-1, 3)
        n = g.shape[0]
        if n == 0:
            return
        dt = 1.0 / rate
        t: Arr = ts + np.arange(n, dtype=np.float64) * dt
        self.samples += n
        self.streamed_s += n * dt
        self.rates.add(float(rate))
        if self._prev_ts is not None:
            self.wear_s += min(max(0.0, ts - self._prev_ts), WEAR_GAP_S)
        self._prev_ts = ts
        contiguous = self._prev is not None and abs(ts - self._prev_end) <= 1.5 * dt
        mag = np.linalg.norm(g, axis=1)
        prev_mag = (
            float(np.linalg.norm(self._prev)) if contiguous and self._prev is not None else 0.0
        )
        for thr in PEAK_G:
            self.peaks[thr] += self._events(("peak", thr), t, mag > thr, prev_mag > thr)
        x = np.vstack([self._prev, g]) if contiguous and self._prev is not None else g
        if x.shape[0] >= 2:
            jerk = np.linalg.norm(np.diff(x, axis=0), axis=1) * rate
            self.jerk_hist += np.histogram(np.clip(jerk, 0.0, JERK_BINS[-1]), JERK_BINS)[0]
            hard = jerk > HARD_JERK_GS
            self.hard_jerks += self._events(
                ("jerk", 0.0), t[n - jerk.size :], hard, self._hard_prev and contiguous
            )
            self._hard_prev = bool(hard[-1])
        self._prev, self._prev_end = g[-1].copy(), float(t[-1] + dt)
        self._still(g, rate)
        self._orientation(g, t, rate)

    def _events(
        self, key: tuple[str, float], t: Arr, above: npt.NDArray[np.bool_], was_above: bool
    ) -> int:
        """Rising crossings of a threshold, at most one per ``PEAK_GAP_S`` (a run of steps in
        a jog is a peak per step; one impact ringing around the threshold is one peak)."""
        rise = above & ~np.concatenate([[was_above], above[:-1]])
        tr = t[rise]
        if tr.size == 0:
            return 0
        count, last = 0, self._last_event.get(key, -math.inf)
        for x in tr.tolist():
            if x - last > PEAK_GAP_S:
                count += 1
                last = x
        self._last_event[key] = last
        return count

    def _still(self, g: Arr, rate: float) -> None:
        w = max(1, round(rate))
        for k in range(0, g.shape[0], w):
            win = g[k : k + w]
            if win.shape[0] < max(2, w // 2):
                continue
            span = win.shape[0] / rate
            self.windows_s += span
            if float(win.std(axis=0).max()) < STILL_STD_G:
                self.still_s += span

    def _orientation(self, g: Arr, t: Arr, rate: float) -> None:
        b = max(1, round(ORIENT_BLOCK_S * rate))
        nb = g.shape[0] // b
        if nb == 0:
            return
        mean = g[: nb * b].reshape(nb, b, 3).mean(axis=1)
        norm = np.linalg.norm(mean, axis=1)
        ok = (norm > 0.6) & (norm < 1.4)  # a gravity estimate, not a swing
        unit = mean / np.maximum(norm, 1e-9)[:, None]
        tb = t[b - 1 : nb * b : b]
        cos_turn, cos_tol = (
            math.cos(math.radians(ORIENT_DEG)),
            math.cos(math.radians(ORIENT_TOL_DEG)),
        )
        for i in np.flatnonzero(ok):
            d = (float(unit[i, 0]), float(unit[i, 1]), float(unit[i, 2]))
            ti = float(tb[i])
            if self._ref is None:
                self._ref = d
                continue
            if _dot(d, self._ref) >= cos_turn:
                self._cand = None
                continue
            if self._cand is None or _dot(d, self._cand) < cos_tol:
                self._cand, self._cand_t = d, ti - ORIENT_BLOCK_S
            elif ti - self._cand_t > ORIENT_HOLD_S:
                self.orient_changes += 1
                self._ref, self._cand = d, None

    def finish(self, last_chunk_s: float = 0.0) -> None:
        """Count the last message's own span as wear (call once, after the last chunk)."""
        self.wear_s += last_chunk_s

    def merge(self, other: StreamStats) -> None:
        """Add another device's totals (for a group row)."""
        self.samples += other.samples
        self.streamed_s += other.streamed_s
        self.wear_s += other.wear_s
        for thr in PEAK_G:
            self.peaks[thr] += other.peaks[thr]
        self.hard_jerks += other.hard_jerks
        self.orient_changes += other.orient_changes
        self.still_s += other.still_s
        self.windows_s += other.windows_s
        self.jerk_hist += other.jerk_hist
        self.rates |= other.rates

    def jerk_percentiles(self) -> dict[float, float]:
        """Percentiles (g/s) of jerk from the histogram (log-interpolated within a bin)."""
        total = int(self.jerk_hist.sum())
        if total == 0:
            return {p: float("nan") for p in JERK_PCTS}
        cum = np.cumsum(self.jerk_hist)
        out = {}
        for p in JERK_PCTS:
            k = p / 100.0 * total
            i = int(np.searchsorted(cum, k))
            lo, hi = JERK_BINS[i], JERK_BINS[i + 1]
            below = cum[i - 1] if i > 0 else 0
            frac = (k - below) / max(1, int(self.jerk_hist[i]))
            out[p] = float(lo + (hi - lo) * frac) if lo == 0 else float(lo * (hi / lo) ** frac)
        return out

    def summary(self) -> dict[str, float]:
        """Per-hour figures (``_sh`` per streamed hour, ``_wh`` per hour of wear)."""
        sh, wh = self.streamed_s / 3600.0, self.wear_s / 3600.0
        out: dict[str, float] = {"streamed_h": sh, "wear_h": wh}
        for name, n in (
            ("peaks2", self.peaks[2.0]),
            ("peaks3", self.peaks[3.0]),
            ("hard", self.hard_jerks),
            ("orient", self.orient_changes),
        ):
            out[f"{name}_sh"] = n / sh if sh > 0 else float("nan")
            out[f"{name}_wh"] = n / wh if wh > 0 else float("nan")
        for p, v in self.jerk_percentiles().items():
            out[f"jerk_p{p:g}"] = v
        out["still"] = self.still_s / self.windows_s if self.windows_s > 0 else float("nan")
        return out


def _dot(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def stream_stats(g: Arr, rate: float, ts: float = 0.0, chunk_s: float = 1.0) -> StreamStats:
    """Statistics of one continuous recording (fed in ``chunk_s`` chunks, as a device sends)."""
    s = StreamStats()
    n = max(1, round(chunk_s * rate))
    for k in range(0, g.shape[0], n):
        s.add(ts + k / rate, rate, g[k : k + n])
    s.finish(min(n, g.shape[0] - (g.shape[0] - 1) // n * n) / rate if g.shape[0] else 0.0)
    return s


# -- scenario folders -----------------------------------------------------------------------


@dataclass
class DeviceStats:
    device: str
    resident: str
    placement: str
    stats: StreamStats


def _devices(folder: Path) -> dict[str, tuple[str, str, str]]:
    """device id -> (resident, placement, timezone) from registry.yaml (monitors left out)."""
    reg = yaml.safe_load((folder / "registry.yaml").read_text(encoding="utf-8")) or {}
    out: dict[str, tuple[str, str, str]] = {}
    for rid, res in (reg.get("residents") or {}).items():
        tz = str((res or {}).get("timezone") or "UTC")
        for dev, spec in ((res or {}).get("devices") or {}).items():
            spec = spec or {}
            if spec.get("type") != "monitor":
                out[str(dev)] = (str(rid), str(spec.get("placement", "?")), tz)
    return out


class _LocalHours:
    """Is an epoch time inside a daily local window (``"07:00-22:00"``) of a timezone?"""

    def __init__(self, window: str) -> None:
        a, b = window.split("-")
        self.a, self.b = _minutes(a), _minutes(b)
        self._offsets: dict[tuple[str, int], float] = {}

    def inside(self, tz: str, ts: float) -> bool:
        key = (tz, int(ts // 3600))
        off = self._offsets.get(key)
        if off is None:
            when = datetime.fromtimestamp(key[1] * 3600, ZoneInfo(tz))
            off = self._offsets[key] = (when.utcoffset() or timedelta(0)).total_seconds()
        minute = ((ts + off) % 86400.0) / 60.0
        return self.a <= minute < self.b if self.a <= self.b else not self.b <= minute < self.a


def _minutes(hhmm: str) -> float:
    h, m = hhmm.strip().split(":")
    return int(h) * 60.0 + int(m)


def _fall_windows(folder: Path) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    path = folder / "labels.jsonl"
    if not path.exists():
        return out
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                lab = orjson.loads(line)
                if lab.get("kind") == "fall":
                    s = float(lab["start"])
                    out.setdefault(str(lab["resident"]), []).append(
                        (s - FALL_WINDOW_S[0], s + FALL_WINDOW_S[1])
                    )
    return out


def _telemetry(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(device, payload) of each telemetry message carrying accel, line by line."""
    with path.open("rb") as f:
        for line in f:
            if b'"accel"' not in line:
                continue
            m = orjson.loads(line)
            topic = str(m.get("topic", ""))
            if not topic.endswith("/telemetry"):
                continue
            yield topic.split("/")[-2], m.get("payload") or {}


def folder_stats(
    folder: Path,
    exclude_falls: bool = True,
    local_hours: str | None = None,
    bouts: bool = False,
) -> list[DeviceStats]:
    """Per-device statistics of a scenario folder's worn accelerometer data, streamed.

    ``local_hours`` (``"07:00-22:00"``): only what lies in that daily window of each resident's
    timezone (the generator's waking hours) counts, wear time included. ``bouts``: only runs of
    contiguous chunks lasting ``BOUT_MIN_S`` or more count (a generated scenario's activities
    without its lone quiet chunks; every trial of a recording), and wear time is that time.
    """
    devices = _devices(folder)
    window = _LocalHours(local_hours) if local_hours else None
    falls = _fall_windows(folder) if exclude_falls else {}
    out: dict[str, DeviceStats] = {}
    last_span: dict[str, float] = {}
    runs: dict[str, list[tuple[float, float, Arr]]] = {}

    def feed(dev: str, chunks: list[tuple[float, float, Arr]]) -> None:
        rid, placement, _tz = devices.get(dev, ("?", "?", "UTC"))
        ds = out.get(dev)
        if ds is None:
            ds = out[dev] = DeviceStats(dev, rid, placement, StreamStats())
        for ts, rate, g in chunks:
            ds.stats.add(ts, rate, g)
            last_span[dev] = g.shape[0] / rate

    def flush(dev: str) -> None:
        run = runs.pop(dev, [])
        if run and run[-1][0] + run[-1][2].shape[0] / run[-1][1] - run[0][0] >= BOUT_MIN_S:
            feed(dev, run)

    for dev, p in _telemetry(folder / "messages.jsonl"):
        acc = p.get("accel") or {}
        rate, g = float(acc.get("rate") or 0.0), acc.get("g")
        if rate <= 0 or not g or p.get("worn") is False:
            continue
        rid, _placement, tz = devices.get(dev, ("?", "?", "UTC"))
        ts = float(p["ts"])
        if window is not None and not window.inside(tz, ts):
            continue
        span = len(g) / rate
        if any(a < ts + span and ts < b for a, b in falls.get(rid, ())):
            continue
        chunk = (ts, rate, np.asarray(g, dtype=np.float64).reshape(-1, 3))
        if not bouts:
            feed(dev, [chunk])
            continue
        run = runs.get(dev)
        if run and abs(ts - (run[-1][0] + run[-1][2].shape[0] / run[-1][1])) > 1.5 / rate:
            flush(dev)
        runs.setdefault(dev, []).append(chunk)
    for dev in list(runs):
        flush(dev)
    for dev, ds in out.items():
        ds.stats.finish(last_span[dev])
        if bouts:
            ds.stats.wear_s = ds.stats.streamed_s
    return sorted(out.values(), key=lambda d: d.device)


def group(rows: Iterable[DeviceStats]) -> dict[str, StreamStats]:
    """Totals per placement."""
    out: dict[str, StreamStats] = {}
    for d in rows:
        out.setdefault(d.placement, StreamStats()).merge(d.stats)
    return out


# -- the table ------------------------------------------------------------------------------

COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("streamed_h", "str h", "{:.2f}"),
    ("wear_h", "wear h", "{:.2f}"),
    ("peaks2_sh", ">2g/sh", "{:.1f}"),
    ("peaks2_wh", ">2g/wh", "{:.1f}"),
    ("peaks3_sh", ">3g/sh", "{:.1f}"),
    ("peaks3_wh", ">3g/wh", "{:.1f}"),
    ("jerk_p50", "jerk p50", "{:.2f}"),
    ("jerk_p99", "p99", "{:.1f}"),
    ("jerk_p99.9", "p99.9", "{:.0f}"),
    ("hard_sh", "hard/sh", "{:.1f}"),
    ("hard_wh", "hard/wh", "{:.1f}"),
    ("orient_sh", "turn/sh", "{:.1f}"),
    ("orient_wh", "turn/wh", "{:.1f}"),
    ("still", "still", "{:.0%}"),
)


def table(rows: Sequence[tuple[str, int, str, StreamStats]]) -> str:
    """A plain (markdown) table: one line per (source, devices, rates, stats)."""
    head = ["source", "dev", "Hz", *(h for _k, h, _f in COLUMNS)]
    lines = [head, ["---"] * len(head)]
    for name, n, rates, st in rows:
        s = st.summary()
        cells = [f.format(s[k]) if not math.isnan(s[k]) else "-" for k, _h, f in COLUMNS]
        lines.append([name, str(n), rates, *cells])
    return "\n".join("| " + " | ".join(r) + " |" for r in lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m simulators.wearstats",
        description="Compare the wear in scenario folders: peaks, jerk, turns, still time.",
    )
    ap.add_argument("dirs", nargs="+", type=Path, help="scenario folders")
    ap.add_argument("--by-device", action="store_true", help="a line per device too")
    ap.add_argument("--with-falls", action="store_true", help="keep accel around fall labels")
    ap.add_argument(
        "--local-hours",
        action="append",
        default=[],
        metavar="DIR=HH:MM-HH:MM",
        help="count only this daily window of local time in DIR (e.g. the generator's waking"
        " hours, 07:00-22:00); repeatable",
    )
    ap.add_argument(
        "--bouts",
        action="store_true",
        help=f"only contiguous runs of {BOUT_MIN_S:g} s or more (activities, trials); wear h ="
        " their time",
    )
    a = ap.parse_args(argv)
    windows = dict(x.rsplit("=", 1) for x in a.local_hours)
    rows: list[tuple[str, int, str, StreamStats]] = []
    for d in a.dirs:
        win = windows.get(str(d))
        devs = folder_stats(d, exclude_falls=not a.with_falls, local_hours=win, bouts=a.bouts)
        for placement, st in sorted(group(devs).items()):
            n = sum(1 for x in devs if x.placement == placement)
            rates = "/".join(f"{r:g}" for r in sorted(st.rates))
            name = f"{d.name or d} {placement}" + (f" {win}" if win else "")
            rows.append((name, n, rates, st))
            if a.by_device:
                for x in devs:
                    if x.placement == placement:
                        r = "/".join(f"{v:g}" for v in sorted(x.stats.rates))
                        rows.append((f"  {x.device}", 1, r, x.stats))
    print(table(rows))
    print(
        "\nper sh = per hour of streamed accel; per wh = per hour of wear; jerk in g/s;"
        f" hard = jerk > {HARD_JERK_GS:g} g/s; turn = gravity direction moved > {ORIENT_DEG:g}°"
        f" and held > {ORIENT_HOLD_S:g} s; still = 1 s windows with every axis sd <"
        f" {STILL_STD_G * 1000:g} mg (of streamed time); falls excluded"
        + (" (no: --with-falls)" if a.with_falls else "")
        + (f"; only runs of {BOUT_MIN_S:g} s or more (--bouts)" if a.bouts else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
