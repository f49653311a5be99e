"""``anxin history``: a resident's vitals over a window, as tables and as a chart.

Reads only through ``storage.readers.Reader``, so it works on either store. Shows ids, never names:
its output may be pasted into tickets.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from storage.readers import ACVPU_LETTERS, AlertMark, Reader, Sample

LABELS = {
    "hr": ("Pulse", "beats/min"),
    "spo2": ("SpO₂", "%"),
    "rr": ("Respiration", "breaths/min"),
    "temp": ("Temperature", "°C"),
    "sbp": ("Systolic BP", "mmHg"),
    "dbp": ("Diastolic BP", "mmHg"),
    "o2": ("On oxygen", ""),
    "acvpu": ("Consciousness", "ACVPU"),
}
# The NEWS2 score-0 bands, shaded on the chart so a nurse sees "normal" at a glance.
NORMAL = {
    "hr": (51, 90),
    "spo2": (96, 100),
    "rr": (12, 20),
    "temp": (36.1, 38.0),
    "sbp": (111, 219),
}
SEVERITY_COLOURS = {"critical": "#d62728", "warning": "#ff7f0e"}


@dataclass
class History:
    resident_id: str
    start: float
    end: float
    tz: tzinfo
    latest: dict[str, Sample]
    series: dict[str, list[Sample]]
    alerts: list[AlertMark]


def load_history(reader: Reader, resident_id: str, start: float, end: float, tz: tzinfo) -> History:
    return History(
        resident_id,
        start,
        end,
        tz,
        reader.latest_vitals(resident_id),
        reader.vitals_series(resident_id, start, end),
        reader.alert_marks(resident_id, start, end),
    )


def _fmt(param: str, value: float) -> str:
    if param == "acvpu":
        return ACVPU_LETTERS.get(int(value), "?")
    if param == "o2":
        return "yes" if value else "no"
    if param == "temp":
        return f"{value:.1f}"
    return f"{value:.0f}"


def print_history(console: Console, h: History, bucket_s: float = 3600) -> None:
    """Latest values, a summary row per time bucket, and the alerts of the window."""

    def when(ts: float, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        return datetime.fromtimestamp(ts, h.tz).strftime(fmt)

    console.print(
        f"[bold]Resident {h.resident_id}[/]: vitals {when(h.start, '%Y-%m-%d %H:%M')} – "
        f"{when(h.end, '%Y-%m-%d %H:%M')} ({h.tz})"
    )
    latest = Table("parameter", "latest", "unit", "at", "device", title="Latest")
    for param, (label, unit) in LABELS.items():
        s = h.latest.get(param)
        if s is not None:
            latest.add_row(label, _fmt(param, s.value), unit, when(s.ts), s.device)
    console.print(latest if latest.row_count else "[yellow]no vitals in the look-back window")

    buckets: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for param, samples in h.series.items():
        for s in samples:
            buckets[int(s.ts // bucket_s)][param].append(s.value)
    alerts_in: dict[int, int] = defaultdict(int)
    for a in h.alerts:
        alerts_in[int(a.ts // bucket_s)] += 1
    table = Table(
        "from",
        "pulse mean (min–max)",
        "SpO₂ min",
        "resp. mean",
        "temp. max",
        "BP last",
        "readings",
        "alerts",
        title=f"Per {bucket_s / 60:g} min",
    )

    def stat(values: list[float], how: str) -> str:
        if not values:
            return "–"
        if how == "range":
            return f"{statistics.fmean(values):.0f} ({min(values):.0f}–{max(values):.0f})"
        if how == "min":
            return f"{min(values):.0f}"
        if how == "max":
            return f"{max(values):.1f}"
        return f"{statistics.fmean(values):.0f}"

    for key in sorted(set(buckets) | set(alerts_in)):
        b = buckets[key]
        bp = f"{b['sbp'][-1]:.0f}/{b['dbp'][-1]:.0f}" if b["sbp"] and b["dbp"] else "–"
        n = max((len(v) for v in b.values()), default=0)
        table.add_row(
            when(key * bucket_s, "%m-%d %H:%M"),
            stat(b["hr"], "range"),
            stat(b["spo2"], "min"),
            stat(b["rr"], "mean"),
            stat(b["temp"], "max"),
            bp,
            str(n),
            str(alerts_in.get(key, 0) or ""),
        )
    if table.row_count:
        console.print(table)
    if h.alerts:
        alerts = Table("at", "kind", "severity", "device", title="Alerts")
        for a in h.alerts:
            alerts.add_row(when(a.ts), a.kind, a.severity, a.device)
        console.print(alerts)


def plot_history(h: History, path: Path) -> Path:
    """Five stacked panels (pulse, SpO₂, respiration, temperature, blood pressure) with the
    NEWS2 normal bands shaded and a vertical mark per alert; written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    panels = [("hr",), ("spo2",), ("rr",), ("temp",), ("sbp", "dbp")]
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 12), sharex=True, constrained_layout=True)

    def times(samples: list[Sample]) -> list[datetime]:
        return [datetime.fromtimestamp(s.ts, h.tz) for s in samples]

    for ax, params in zip(axes, panels, strict=True):
        label, unit = LABELS[params[0]]
        if params == ("sbp", "dbp"):
            label = "Blood pressure"
        for param in params:
            samples = h.series.get(param, [])
            if samples:
                style = "-" if len(samples) > 1 else "o"
                ax.plot(
                    times(samples),
                    [s.value for s in samples],
                    style,
                    lw=1.2,
                    ms=3,
                    label=LABELS[param][0],
                )
        band = NORMAL.get(params[0])
        if band:
            ax.axhspan(*band, color="#2ca02c", alpha=0.08, lw=0)
        if len(params) > 1:
            ax.legend(loc="upper left", fontsize=8)
        if not any(h.series.get(p) for p in params):
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="grey")
        ax.set_ylabel(f"{label}\n({unit})")
        ax.grid(True, alpha=0.3)
        for a in h.alerts:
            ax.axvline(
                datetime.fromtimestamp(a.ts, h.tz),
                color=SEVERITY_COLOURS.get(a.severity, "grey"),
                alpha=0.7,
                lw=1,
                ls="--",
            )
    top = axes[0]
    for a in h.alerts:
        top.annotate(
            a.kind,
            (datetime.fromtimestamp(a.ts, h.tz), 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, 2),
            textcoords="offset points",
            fontsize=7,
            rotation=60,
            color=SEVERITY_COLOURS.get(a.severity, "grey"),
        )
    axes[-1].set_xlim(datetime.fromtimestamp(h.start, h.tz), datetime.fromtimestamp(h.end, h.tz))
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=h.tz))
    axes[-1].set_xlabel(f"time ({h.tz})")
    fig.suptitle(
        f"Resident {h.resident_id}: vitals "
        f"{(h.end - h.start) / 3600:g} h, {len(h.alerts)} alert(s) marked"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
    return path


def resident_timezone(registry_path: Path, resident_id: str) -> tzinfo:
    """The resident's time zone from the registry; UTC when the registry is not at hand."""
    try:
        from anxin.core.registry import load_registry

        resident = load_registry(registry_path).residents.get(resident_id)
        if resident is not None:
            return ZoneInfo(resident.timezone)
    except Exception:  # the registry is optional for reading history
        pass
    return ZoneInfo("UTC")
