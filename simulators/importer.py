"""``anxin scenario import-csv``: a recorded accelerometer CSV (+ labels) into a scenario folder.

So that public fall datasets (SisFall, UMAFall, FallAllD, ...) can be evaluated with
``anxin evaluate`` without code: one CSV is one recording of one wearer. The format is in
``simulators/README.md``. Samples are resampled to a uniform ``rate`` by linear interpolation
(devices send evenly spaced samples, telemetry v1), a gap longer than ``MAX_GAP_S`` starts a new
run instead of being bridged, and each second becomes one telemetry message, as a streaming
wearable sends it.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml

G = 9.80665
DEFAULT_T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC, for recordings with relative times
MAX_GAP_S = 0.5
ARRIVAL_DELAY_S = 0.2


class CsvImportError(ValueError):
    """A CSV that cannot be read as time, x, y, z."""


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    low = [h.strip().lower() for h in header]
    for n in names:
        if n in low:
            return low.index(n)
    return None


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(times, N x 3 samples) from a CSV with a header naming time, x, y, z (any order)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise CsvImportError(f"{path}: empty file")
    header = rows[0]
    cols = [
        _column(header, n)
        for n in (
            ("time", "t", "timestamp", "ts"),
            ("x", "ax", "acc_x"),
            ("y", "ay", "acc_y"),
            ("z", "az", "acc_z"),
        )
    ]
    if any(c is None for c in cols):
        raise CsvImportError(f"{path}: the header must name time, x, y and z columns, got {header}")
    idx = [int(c) for c in cols if c is not None]
    data = []
    for n, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        try:
            data.append([float(row[i]) for i in idx])
        except (ValueError, IndexError):
            raise CsvImportError(f"{path}:{n}: not a number in {row}") from None
    if len(data) < 2:
        raise CsvImportError(f"{path}: fewer than two samples")
    arr = np.asarray(data, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise CsvImportError(f"{path}: NaN or infinite values")
    order = np.argsort(arr[:, 0], kind="stable")
    arr = arr[order]
    keep = np.concatenate([[True], np.diff(arr[:, 0]) > 0])  # duplicate stamps: first wins
    return arr[keep, 0], arr[keep, 1:]


def read_labels_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of ``kind,start[,deadline]`` (same time base as the recording)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    out = []
    for n, row in enumerate(rows, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        try:
            start = float(row["start"])
            deadline = float(row["deadline"]) if row.get("deadline") else None
        except (KeyError, ValueError):
            raise CsvImportError(f"{path}:{n}: needs a numeric 'start' column") from None
        out.append({"kind": row.get("kind") or "fall", "start": start, "deadline": deadline})
    return out


def import_csv(
    csv_path: Path,
    out_dir: Path,
    rate: float,
    placement: str,
    units: str = "g",
    labels_path: Path | None = None,
    resident: str = "R001",
    device: str = "D001",
    t0: float = DEFAULT_T0,
    deadline_s: float = 30.0,
) -> dict[str, Any]:
    """Write a scenario folder (registry, messages, labels) for one recording."""
    if placement not in ("wrist", "waist", "pendant"):
        raise CsvImportError("placement must be wrist, waist or pendant")
    if units not in ("g", "ms2"):
        raise CsvImportError("units must be g or ms2")
    if not 20 <= rate <= 200:
        raise CsvImportError("rate must be 20..200 Hz")
    times, xyz = read_csv(csv_path)
    if units == "ms2":
        xyz = xyz / G
    # Relative times (seconds from the start, or since boot) get a real epoch.
    offset = t0 - float(times[0]) if times[0] < 946_684_800.0 else 0.0
    times = times + offset
    # Uniform resampling per run (a long gap is kept as a gap, not interpolated across).
    breaks = np.flatnonzero(np.diff(times) > MAX_GAP_S) + 1
    messages: list[bytes] = []
    seq = 0
    step = 1.0 / rate
    per_msg = round(rate)
    for a, b in zip(
        np.concatenate([[0], breaks]), np.concatenate([breaks, [len(times)]]), strict=True
    ):
        ts, vs = times[a:b], xyz[a:b]
        if len(ts) < 2:
            continue
        grid = ts[0] + np.arange(0, math.floor((ts[-1] - ts[0]) / step) + 1) * step
        g = np.column_stack([np.interp(grid, ts, vs[:, k]) for k in range(3)])
        g = np.round(g, 3)
        for k in range(0, len(grid), per_msg):
            chunk = g[k : k + per_msg]
            first = float(grid[k])
            payload = {
                "ts": round(first, 3),
                "seq": seq,
                "worn": True,
                "accel": {"rate": rate, "g": chunk},
            }
            seq += 1
            t = round(first + len(chunk) / rate + ARRIVAL_DELAY_S, 3)
            messages.append(
                orjson.dumps(
                    {"t": t, "topic": f"anxin/v1/devices/{device}/telemetry", "payload": payload},
                    option=orjson.OPT_SERIALIZE_NUMPY,
                )
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    registry = {
        "residents": {
            resident: {
                "name": f"Imported {csv_path.stem}",
                "timezone": "UTC",
                "language": "en-US",
                "devices": {device: {"placement": placement}},
                "family": [{"name": "Family", "phone": "+15550000001", "relation": "son"}],
                "escalation": "default",
            }
        }
    }
    (out_dir / "registry.yaml").write_text(
        f"# imported from {csv_path.name} by `anxin scenario import-csv`\n"
        + yaml.safe_dump(registry, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    (out_dir / "messages.jsonl").write_bytes(b"\n".join(messages) + b"\n")
    labels = []
    if labels_path is not None:
        for lab in read_labels_csv(labels_path):
            start = lab["start"] + offset
            deadline = (
                lab["deadline"] + offset if lab["deadline"] is not None else (start + deadline_s)
            )
            labels.append(
                {
                    "resident": resident,
                    "kind": lab["kind"],
                    "start": round(start, 3),
                    "deadline": round(deadline, 3),
                }
            )
    (out_dir / "labels.jsonl").write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in labels))
    return {
        "messages": len(messages),
        "labels": len(labels),
        "samples": len(times),
        "offset_s": offset,
    }
