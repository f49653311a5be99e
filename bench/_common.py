"""Shared helpers of the bench scripts (not a package: each script puts the repo on sys.path)."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> dict[str, Any]:
    """Cores, memory, load: printed beside every figure (absolute numbers drift on shared hosts)."""
    mem_gib = None
    try:
        import psutil

        mem_gib = psutil.virtual_memory().total / 2**30
    except ImportError:
        pass
    load = os.getloadavg()
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1) if mem_gib else None,
        "load_1_5_15": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine_line(tag: str) -> str:
    m = machine()
    return (
        f"# machine {tag}: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, "
        f"load {m['load_1_5_15'][0]} / {m['load_1_5_15'][1]} / {m['load_1_5_15'][2]} (1/5/15 min)"
    )


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100.0 * len(s) + 0.5) - 1))
    return s[k]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "MISSED")


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


class Timer:
    """Wall and this-process CPU time of a block (CPU time is robust on a loaded machine)."""

    def __enter__(self) -> Timer:
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0
